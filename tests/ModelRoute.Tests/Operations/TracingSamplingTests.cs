using OpenTelemetry.Trace;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#otlp: with a sampler that keeps no new trace (as <c>OTEL_TRACES_SAMPLER</c> may say), an
/// execution submitted without <c>traceparent</c> records none of its spans, yet keeps its trace id.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingSamplingTests : IAsyncLifetime
{
    private readonly TracingCapture _spans = new();
    private readonly GatewayFactory _gateway;

    public TracingSamplingTests() => _gateway = new GatewayFactory(services: services => services.AddOpenTelemetry().WithTracing(tracing => tracing
        .SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(0)))
        .AddAspNetCoreInstrumentation()
        .AddSource("ModelRoute")
        .AddInMemoryExporter(_spans)));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_trace_the_sampler_drops_at_the_request_records_no_span_of_its_execution()
    {
        using var account = await _gateway.CreateAccountAsync();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent: null, """{"latency_ms":0}""");
        var done = await account.Client.WaitForTerminalAsync(id);
        await Task.Delay(300); // spans end just after the commit that the wait saw

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        done.GetProperty("trace_id").GetString().ShouldNotBeNull().Length.ShouldBe(32);
        _spans.Of(id).ShouldBeEmpty("the sampler dropped the trace at its root, so none of its spans is recorded");
    }

    [Fact]
    public async Task A_submitters_sampled_traceparent_is_followed_over_the_samplers_ratio()
    {
        using var account = await _gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"latency_ms":0}""");
        await account.Client.WaitForTerminalAsync(id);

        await Eventually.HoldsAsync(() => TracingCapture.Settlements(_spans.Of(id)).Count > 0, "the settling run's span ended");
        _spans.Of(id).ShouldAllBe(s => s.TraceId.ToHexString() == traceId);
    }
}
