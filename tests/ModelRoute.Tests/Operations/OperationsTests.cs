namespace ModelRoute.Tests.Operations;

/// <summary>docs/api.md#endpoints: health, readiness, metrics, the OpenAPI document, and problems for unknown routes.</summary>
public sealed class OperationsTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/readyz")]
    public async Task Health_and_readiness_answer_200_without_a_key(string path)
    {
        using var client = _gateway.Anonymous();

        var response = await client.GetApiAsync(path);

        response.Status.ShouldBe(200, response.Body);
        response.Json.GetProperty("status").GetString().ShouldNotBeNullOrEmpty();
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_and_count_submissions_per_model()
    {
        using var client = _gateway.Anonymous();
        using var account = await _gateway.CreateAccountAsync();
        var before = Submitted((await client.GetApiAsync("/metrics")).Body, "sim/text");

        (await account.Client.SubmitTextAsync()).Status.ShouldBe(202);
        (await account.Client.SubmitTextAsync(extra: ",\"timeout_seconds\":0")).Status.ShouldBe(400);
        var metrics = await client.GetApiAsync("/metrics");

        metrics.Status.ShouldBe(200);
        metrics.Message.Content.Headers.ContentType!.MediaType.ShouldBe("text/plain");
        metrics.Body.ShouldContain("# TYPE modelroute_executions_submitted_total counter");
        Submitted(metrics.Body, "sim/text").ShouldBe(before + 1);
        PrometheusText.Samples(metrics.Body, "modelroute_executions_submitted_total")
            .ShouldAllBe(s => s.Labels.Contains("otel_scope_name=\"ModelRoute\"") && s.Labels.Contains("model=\""));
    }

    [Fact]
    public async Task Submission_latency_is_a_histogram_by_outcome_and_only_created_ones_count_as_submitted()
    {
        using var client = _gateway.Anonymous();
        using var account = await _gateway.CreateAccountAsync();
        using var broke = await _gateway.CreateAccountAsync(creditUsd: "0");
        var before = (await client.GetApiAsync("/metrics")).Body;

        (await account.Client.SubmitTextAsync(key: "once")).Status.ShouldBe(202);
        (await account.Client.SubmitTextAsync(key: "once")).Status.ShouldBe(200);
        (await broke.Client.SubmitTextAsync()).Status.ShouldBe(402);
        var after = (await client.GetApiAsync("/metrics")).Body;

        after.ShouldContain("# TYPE modelroute_submit_duration_seconds histogram");
        after.ShouldContain("modelroute_submit_duration_seconds_bucket{otel_scope_name=\"ModelRoute\",outcome=\"refused\",le=\"+Inf\"}");
        foreach (var outcome in new[] { "created", "replayed", "refused" })
        {
            SubmitCount(after, outcome).ShouldBe(SubmitCount(before, outcome) + 1, outcome);
        }

        PrometheusText.Sum(after, "modelroute_executions_submitted_total").ShouldBe(PrometheusText.Sum(before, "modelroute_executions_submitted_total") + 1);
    }

    [Fact]
    public async Task Two_gateways_in_one_process_each_count_their_own_and_one_stopping_leaves_the_other_whole()
    {
        await using var other = new GatewayFactory();
        using var otherAccount = await other.CreateAccountAsync();
        using var account = await _gateway.CreateAccountAsync();
        using var client = _gateway.Anonymous();
        var before = PrometheusText.Sum((await client.GetApiAsync("/metrics")).Body, "modelroute_executions_submitted_total");

        (await otherAccount.Client.SubmitTextAsync()).Status.ShouldBe(202);
        (await otherAccount.Client.SubmitTextAsync()).Status.ShouldBe(202);
        (await account.Client.SubmitTextAsync()).Status.ShouldBe(202);
        using (var otherClient = other.Anonymous())
        {
            PrometheusText.Sum((await otherClient.GetApiAsync("/metrics")).Body, "modelroute_executions_submitted_total").ShouldBe(2);
        }

        PrometheusText.Sum((await client.GetApiAsync("/metrics")).Body, "modelroute_executions_submitted_total").ShouldBe(before + 1);
        otherAccount.Dispose();
        await other.DisposeAsync();
        (await account.Client.SubmitTextAsync()).Status.ShouldBe(202);
        var after = (await client.GetApiAsync("/metrics")).Body;
        PrometheusText.Sum(after, "modelroute_executions_submitted_total").ShouldBe(before + 2);
        after.ShouldContain("http_server_request_duration_seconds_count{");
    }

    [Fact]
    public async Task The_openapi_document_is_json_and_lists_every_endpoint()
    {
        using var client = _gateway.Anonymous();

        var response = await client.GetApiAsync("/openapi/v1.json");

        response.Status.ShouldBe(200, response.Body);
        using var document = JsonDocument.Parse(response.Body);
        document.RootElement.GetProperty("openapi").GetString()!.ShouldStartWith("3.");
        var paths = document.RootElement.GetProperty("paths").EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var expected = new Dictionary<string, string[]>
        {
            ["/v1/executions"] = ["get", "post"],
            ["/v1/executions/batch"] = ["post"],
            ["/v1/executions/{id}"] = ["get"],
            ["/v1/executions/{id}/cancel"] = ["post"],
            ["/v1/executions/{id}/events"] = ["get"],
            ["/v1/executions/{id}/artifacts/{name}"] = ["get"],
            ["/v1/models"] = ["get"],
            ["/v1/balance"] = ["get"],
            ["/v1/ledger"] = ["get"],
            ["/v1/provider-callbacks/{provider}/{executionId}"] = ["post"],
            ["/v1/admin/accounts"] = ["post"],
            ["/v1/admin/accounts/{id}"] = ["get"],
            ["/v1/admin/accounts/{id}/api-keys"] = ["post"],
            ["/v1/admin/accounts/{id}/credits"] = ["post"],
            ["/healthz"] = ["get"],
            ["/readyz"] = ["get"],
            ["/metrics"] = ["get"],
        };

        var missing = expected.Keys.Where(path => !paths.ContainsKey(path)).ToList();
        missing.ShouldBeEmpty($"documented paths: {string.Join(", ", paths.Keys.Order(StringComparer.Ordinal))}");
        foreach (var (path, methods) in expected)
        {
            paths[path].EnumerateObject().Select(m => m.Name).ShouldBeSubsetOf(["get", "post", "put", "delete", "patch", "parameters"]);
            foreach (var method in methods)
            {
                paths[path].TryGetProperty(method, out _).ShouldBeTrue($"{method.ToUpperInvariant()} {path}");
            }
        }
    }

    [Theory]
    [InlineData("/nope")]
    [InlineData("/v1/nope")]
    [InlineData("/v2/executions")]
    [InlineData("/v1/executions/exe_1/nope")]
    public async Task An_unknown_path_is_a_404_problem_with_code_not_found(string path)
    {
        using var account = await _gateway.CreateAccountAsync();
        using var anonymous = _gateway.Anonymous();

        foreach (var client in new[] { account.Client, anonymous })
        {
            var response = await client.GetApiAsync(path);

            response.Status.ShouldBe(404, response.Body);
            response.ProblemCode.ShouldBe("NOT_FOUND");
        }
    }

    [Theory]
    [InlineData("DELETE", "/v1/executions", "GET")]
    [InlineData("PUT", "/v1/executions", "POST")]
    [InlineData("DELETE", "/v1/balance", "GET")]
    [InlineData("POST", "/v1/models", "GET")]
    [InlineData("DELETE", "/v1/admin/accounts", "POST")]
    public async Task A_wrong_method_is_a_405_problem_with_a_code_and_an_allow_header(string method, string path, string allowed)
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await account.Client.SendRawAsync(new HttpMethod(method), path);

        response.Status.ShouldBe(405, response.Body);
        response.ProblemCode.ShouldBe("METHOD_NOT_ALLOWED");
        response.Message.Content.Headers.Allow.ShouldContain(allowed);
    }

    [Fact]
    public async Task A_wrong_method_does_not_change_anything()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""")).Json.GetProperty("id").GetString()!;

        var response = await account.Client.SendRawAsync(HttpMethod.Delete, $"/v1/executions/{id}");

        response.Status.ShouldBe(405, response.Body);
        response.ProblemCode.ShouldBe("METHOD_NOT_ALLOWED");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBeOneOf("PENDING", "PROCESSING");
    }

    private static double Submitted(string metrics, string model) =>
        PrometheusText.Samples(metrics, "modelroute_executions_submitted_total").Where(s => s.Labels.Contains($"model=\"{model}\"")).Sum(s => s.Value);

    private static double SubmitCount(string metrics, string outcome) =>
        PrometheusText.Samples(metrics, "modelroute_submit_duration_seconds_count").Where(s => s.Labels.Contains($"outcome=\"{outcome}\"")).Sum(s => s.Value);
}
