namespace ModelRoute.Tests.Http;

/// <summary>
/// docs/api.md#errors-you-will-meet: every problem carries <c>trace_id</c>, the 32-hex-digit id of the request's trace,
/// as an execution's <c>trace_id</c> does: the submitter's when its request carried <c>traceparent</c>.
/// </summary>
public sealed class ProblemTraceIdTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    public static TheoryData<string, string, string, bool> Requests => new()
    {
        // method, path, body, with the account's key
        { "POST", "/v1/executions", """{"model":"sim/text","input":{}}""", true }, // 400 from an endpoint
        { "POST", "/v1/executions", """{"model":"sim/text",""", true }, // 400, unreadable JSON
        { "GET", "/v1/executions/exe_unknown", "", true }, // 404
        { "GET", "/v1/executions", "", false }, // 401 from the authentication middleware
        { "DELETE", "/v1/models", "", true }, // 405
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task A_problem_names_the_submitters_trace_by_its_id(string method, string path, string body, bool withKey)
    {
        using var account = await _gateway.CreateAccountAsync();
        using var anonymous = _gateway.Anonymous();
        var (traceParent, traceId, _) = Operations.TracingCapture.NewSubmitterContext();
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body.Length > 0)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }

        request.Headers.Add("traceparent", traceParent);
        using var response = await (withKey ? account.Client : anonymous).SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        ((int)response.StatusCode).ShouldBeInRange(400, 499, text);
        response.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", text);
        JsonDocument.Parse(text).RootElement.GetProperty("trace_id").GetString().ShouldBe(traceId, text);
        text.Split("\"trace_id\"").Length.ShouldBe(2, "one trace_id: " + text);
        text.ShouldNotContain("traceId");
    }

    [Fact]
    public async Task A_problem_of_a_request_without_traceparent_has_a_trace_id_of_its_own()
    {
        using var account = await _gateway.CreateAccountAsync();

        using var response = await account.Client.GetAsync("/v1/executions/exe_unknown");
        var text = await response.Content.ReadAsStringAsync();

        response.StatusCode.ShouldBe(System.Net.HttpStatusCode.NotFound);
        JsonDocument.Parse(text).RootElement.GetProperty("trace_id").GetString()!.ShouldMatch("^[0-9a-f]{32}$", text);
    }
}
