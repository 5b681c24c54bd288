using System.Diagnostics;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#traces: one trace follows an execution from the submitter's <c>traceparent</c> through its
/// runs, provider attempts (a retry included) and settlements to its webhook delivery, on the store the run uses.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingTests : IAsyncLifetime
{
    private readonly TracingCapture _spans = new();
    private readonly GatewayFactory _gateway;
    private WebhookReceiver _receiver = null!;

    public TracingTests() => _gateway = new GatewayFactory(services: _spans.Services);

    public async Task InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task One_trace_follows_an_execution_from_the_submitters_traceparent_through_a_retry_and_its_settlement_to_its_webhook()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"fail":"server_error","fail_times":1,"latency_ms":0}""", _receiver.Url());
        var done = await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => _spans.Of(id).Any(s => s.OperationName == "modelroute.webhook.delivery"), "the delivery's span ended");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        done.GetProperty("trace_id").GetString().ShouldBe(traceId);
        var spans = _spans.Of(id);
        spans.ShouldAllBe(s => s.TraceId.ToHexString() == traceId, "every span of the execution is in the submitter's trace");
        var submit = spans.Where(s => s.OperationName == "modelroute.submit").ShouldHaveSingleItem();
        submit.GetTagItem("modelroute.outcome").ShouldBe("created");

        var runs = spans.Where(s => s.OperationName == "modelroute.execution.run").ToList();
        runs.Count.ShouldBeGreaterThanOrEqualTo(2, "a run for the first attempt and one for the retry");
        runs.ShouldAllBe(r => r.ParentSpanId != default && r.GetTagItem("modelroute.node") != null);

        var attempts = spans.Where(s => s.OperationName == "modelroute.provider.attempt").OrderBy(s => s.StartTimeUtc).ToList();
        attempts.Count.ShouldBe(2);
        attempts.ShouldAllBe(a => a.Kind == ActivityKind.Client && runs.Any(r => r.SpanId == a.ParentSpanId));
        attempts.Select(a => a.GetTagItem("modelroute.attempt")).ShouldBe([1, 2]);
        attempts.ShouldAllBe(a => (string?)a.GetTagItem("modelroute.provider") == "sim" && (string?)a.GetTagItem("modelroute.model") == "sim/text");
        attempts[0].Status.ShouldBe(ActivityStatusCode.Error);
        attempts[0].GetTagItem("error.type").ShouldBe("provider_unavailable");
        attempts[1].Status.ShouldNotBe(ActivityStatusCode.Error);
        attempts[1].GetTagItem("modelroute.outcome").ShouldBe("succeeded");

        spans.ShouldNotContain(s => s.OperationName == "modelroute.execution.settle", "a settlement within a run is recorded on the run's span");
        var settlements = TracingCapture.Settlements(runs);
        settlements.Select(s => s.GetTagItem("modelroute.execution.status")).ShouldBe(["PENDING", "COMPLETED"]);
        settlements[1].GetTagItem("modelroute.execution.charged_micros").ShouldBe(HttpExtensions.Micros(done.GetProperty("cost").GetProperty("actual")));

        var delivery = spans.Where(s => s.OperationName == "modelroute.webhook.delivery").ShouldHaveSingleItem();
        delivery.GetTagItem("modelroute.webhook.event_type").ShouldBe("execution.completed");
        delivery.GetTagItem("modelroute.outcome").ShouldBe("succeeded");
        delivery.GetTagItem("http.response.status_code").ShouldBe(200);
        var webhook = _receiver.Received.ShouldHaveSingleItem();
        webhook.Headers["traceparent"].ShouldBe($"00-{traceId}-{delivery.SpanId.ToHexString()}-01", "the receiver is handed the delivery's span");
    }

    [Fact]
    public async Task A_submission_without_traceparent_starts_a_trace_of_its_own_that_its_spans_share()
    {
        using var account = await _gateway.CreateAccountAsync();

        var id = await TracingCapture.SubmitTextAsync(account.Client, null, """{"latency_ms":0}""");
        var done = await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => TracingCapture.Settlements(_spans.Of(id)).Count > 0, "the settling run's span ended");

        var traceId = done.GetProperty("trace_id").GetString().ShouldNotBeNull();
        traceId.ShouldMatch("^[0-9a-f]{32}$");
        var spans = _spans.Of(id);
        spans.Select(s => s.OperationName).ShouldBeSubsetOf(["modelroute.submit", "modelroute.execution.run", "modelroute.provider.attempt"]);
        spans.Count.ShouldBeGreaterThanOrEqualTo(3);
        spans.ShouldAllBe(s => s.TraceId.ToHexString() == traceId);
    }
}
