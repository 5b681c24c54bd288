namespace ModelRoute.Tests.Operations;

/// <summary>docs/observability.md#the-metrics-token: <c>GET /metrics</c> behind <c>ModelRoute:Metrics:Token</c>.</summary>
public sealed class PrometheusTokenTests : IAsyncLifetime
{
    private const string Token = "metrics-token-0123456789abcdef";

    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?> { ["ModelRoute:Metrics:Token"] = Token });

    [Theory]
    [InlineData(null)]
    [InlineData("Bearer metrics-token-0123456789abcdeX")]
    [InlineData("Bearer metrics-token-0123456789abcde")]
    [InlineData("Basic bWV0cmljczptZXRyaWNzLXRva2VuLTAxMjM0NTY3ODlhYmNkZWY=")]
    [InlineData("Bearer " + GatewayFactory.AdminKey)]
    public async Task Without_the_right_bearer_token_metrics_are_a_401_problem(string? authorization)
    {
        using var client = _gateway.Anonymous();

        var response = await client.SendRawAsync(HttpMethod.Get, "/metrics", authorization: authorization);

        response.Status.ShouldBe(401, response.Body);
        response.ProblemCode.ShouldBe("UNAUTHENTICATED");
        response.Header("WWW-Authenticate").ShouldBe("Bearer");
        response.Body.ShouldNotContain("modelroute_");
        response.Body.ShouldNotContain(Token);
    }

    [Fact]
    public async Task With_the_metrics_token_metrics_are_served()
    {
        using var account = await _gateway.CreateAccountAsync();
        (await account.Client.SubmitTextAsync()).Status.ShouldBe(202);
        using var client = _gateway.WithBearer(Token);

        var response = await client.GetApiAsync("/metrics");

        response.Status.ShouldBe(200, response.Body);
        response.Message.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        PrometheusText.Sum(response.Body, "modelroute_executions_submitted_total").ShouldBe(1);
    }

    [Fact]
    public async Task The_token_guards_only_metrics()
    {
        using var client = _gateway.Anonymous();

        (await client.GetApiAsync("/healthz")).Status.ShouldBe(200);
        (await client.GetApiAsync("/readyz")).Status.ShouldBe(200);
        (await client.GetApiAsync("/openapi/v1.json")).Status.ShouldBe(200);
    }

    [Theory]
    [InlineData("--ModelRoute:Metrics:Token=short-token")]
    [InlineData("--ModelRoute:Metrics:Token=a token with spaces in it")]
    public async Task A_weak_metrics_token_stops_the_start_with_one_line_naming_the_setting(string setting)
    {
        var directory = TestPaths.NewTempDirectory("metrics-token");
        try
        {
            var (exitCode, errors) = await GatewayProcess.LaunchExpectingConfigurationErrorAsync(
                directory, [setting, "--urls", $"http://127.0.0.1:{GatewayProcess.FreePort()}"]);

            exitCode.ShouldBe(1);
            errors.ShouldStartWith("modelroute: configuration error:");
            errors.ShouldContain("ModelRoute:Metrics:Token");
            errors.Split('\n').Length.ShouldBe(1, errors);
            errors.ShouldNotContain(setting.Split('=')[1]);
        }
        finally
        {
            TestPaths.TryDelete(directory);
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();
}
