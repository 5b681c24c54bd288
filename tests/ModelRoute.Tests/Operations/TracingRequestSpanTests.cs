using System.Diagnostics;
using OpenTelemetry.Trace;
using ModelRoute.Server.Operations;
using ModelRoute.Tests.Mcp;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#traces with ASP.NET Core's requests recorded too (as the OTLP export records them): a submission
/// is recorded on its request's span and a settlement on its run's, while a batch's items and MCP's submit_execution
/// keep a submit span each.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingRequestSpanTests : IAsyncLifetime
{
    private readonly TracingCapture _spans = new();
    private readonly GatewayFactory _gateway;
    private WebhookReceiver _receiver = null!;

    public TracingRequestSpanTests() => _gateway = new GatewayFactory(services: services => services.AddOpenTelemetry()
        .WithTracing(tracing => tracing.AddSource("ModelRoute").AddAspNetCoreInstrumentation().AddInMemoryExporter(_spans)));

    public async Task InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task A_submission_is_recorded_on_its_requests_span_and_its_settlement_on_its_runs_span()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (traceParent, traceId, submitterSpanId) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"latency_ms":0}""", _receiver.Url());
        var done = await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => _spans.Of(id).Any(s => s.OperationName == "modelroute.webhook.delivery"), "the delivery's span ended");

        done.GetProperty("trace_id").GetString().ShouldBe(traceId);
        var spans = _spans.Of(id);
        spans.ShouldNotContain(s => s.OperationName == "modelroute.submit" || s.OperationName == "modelroute.execution.settle");
        var request = spans.Where(s => s.Kind == ActivityKind.Server).ShouldHaveSingleItem();
        request.Source.Name.ShouldBe("Microsoft.AspNetCore");
        request.ParentSpanId.ToHexString().ShouldBe(submitterSpanId);
        request.GetTagItem("modelroute.outcome").ShouldBe("created");
        request.GetTagItem("modelroute.model").ShouldBe("sim/text");

        var run = spans.Where(s => s.OperationName == TraceContext.RunSpan).ShouldHaveSingleItem();
        run.ParentSpanId.ShouldBe(request.SpanId, "the stored trace context names the request's span");
        run.GetTagItem("modelroute.execution.status").ShouldBe("COMPLETED");
        spans.Where(s => s.OperationName == "modelroute.provider.attempt").ShouldHaveSingleItem().ParentSpanId.ShouldBe(run.SpanId);

        var delivery = spans.Where(s => s.OperationName == "modelroute.webhook.delivery").ShouldHaveSingleItem();
        _receiver.Received.ShouldHaveSingleItem().Headers["traceparent"].ShouldBe($"00-{traceId}-{delivery.SpanId.ToHexString()}-01");
    }

    [Fact]
    public async Task Each_item_of_a_batch_is_a_submit_span_of_its_own_under_the_requests_span()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();
        const string Item = """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}]},"idempotency_key":"KEY"}""";
        using var batch = new HttpRequestMessage(HttpMethod.Post, "/v1/executions/batch")
        {
            Content = new StringContent($$"""{"executions":[{{Item.Replace("KEY", "t-0")}},{{Item.Replace("KEY", "t-1")}}]}""", Encoding.UTF8, "application/json"),
        };
        batch.Headers.Add("traceparent", traceParent);

        using var response = await account.Client.SendAsync(batch);
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(200, body);
        var ids = JsonDocument.Parse(body).RootElement.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("execution").GetProperty("id").GetString()!).ToList();
        ids.Count.ShouldBe(2);
        bool IsRequest(Activity s) => s.Kind == ActivityKind.Server && s.TraceId.ToHexString() == traceId && s.Source.Name == "Microsoft.AspNetCore";

        // The request's span ends after its answer is sent, so it may be exported after the runs' spans.
        await Eventually.HoldsAsync(
            () => ids.All(id => TracingCapture.Settlements(_spans.Of(id)).Count > 0) && _spans.Any(IsRequest), "both runs' spans and the request's span ended");

        var request = _spans.Where(IsRequest).ShouldHaveSingleItem();
        request.GetTagItem("modelroute.execution.id").ShouldBeNull("a batch's request span names no one execution");
        foreach (var id in ids)
        {
            var submit = _spans.Of(id).Where(s => s.OperationName == "modelroute.submit").ShouldHaveSingleItem();
            submit.ParentSpanId.ShouldBe(request.SpanId);
            _spans.Of(id).Where(s => s.OperationName == TraceContext.RunSpan).ShouldHaveSingleItem().ParentSpanId.ShouldBe(submit.SpanId);
        }
    }

    [Fact]
    public async Task An_mcp_submit_execution_is_a_submit_span_of_its_own_rather_than_the_mcp_requests_span()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);
        var submission = new
        {
            model = "sim/text",
            input = new { messages = new[] { new { role = "user", content = "hello" } }, simulate = new { latency_ms = 0 } },
            idempotency_key = $"mcp-{Guid.NewGuid()}",
        };

        var id = (await client.CallAsync("submit_execution", submission)).Structured().GetProperty("id").GetString()!;
        await Eventually.HoldsAsync(() => TracingCapture.Settlements(_spans.Of(id)).Count > 0, "the run's span ended");

        var spans = _spans.Of(id);
        spans.ShouldNotContain(s => s.Kind == ActivityKind.Server, "an MCP request's span is not the submission's");
        var submit = spans.Where(s => s.OperationName == "modelroute.submit").ShouldHaveSingleItem();
        submit.Kind.ShouldBe(ActivityKind.Internal);
        submit.GetTagItem("modelroute.outcome").ShouldBe("created");
        submit.GetTagItem("modelroute.model").ShouldBe("sim/text");
        spans.Where(s => s.OperationName == TraceContext.RunSpan).ShouldHaveSingleItem().ParentSpanId.ShouldBe(submit.SpanId);
        await Eventually.HoldsAsync(
            () => _spans.Any(s => s.SpanId == submit.ParentSpanId && s.Kind == ActivityKind.Server && s.Source.Name == "Microsoft.AspNetCore"),
            "the submit span is under the MCP request's span");
    }
}
