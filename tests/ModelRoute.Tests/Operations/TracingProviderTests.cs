using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Operations;

/// <summary>docs/observability.md#traces: a provider call carries the execution's <c>traceparent</c>, whether or not a tracer listens.</summary>
[Collection(TracingCollection.Name)]
public sealed class TracingProviderTests : IAsyncLifetime
{
    private const string Chat = "openai/gpt-4o-mini";
    private const string Input = """{"messages":[{"role":"user","content":"Say hello."}]}""";
    private OpenAIFake _fake = null!;

    public async Task InitializeAsync() => _fake = await OpenAIFake.StartAsync();

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private GatewayFactory Gateway(Action<IServiceCollection>? services = null) => new(
        new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:oai:Kind"] = "openai",
            ["ModelRoute:Providers:oai:BaseUrl"] = _fake.V1,
            ["ModelRoute:Providers:oai:ApiKey"] = _fake.ApiKey,
            [$"ModelRoute:Models:{Chat}:Modality"] = "text",
            [$"ModelRoute:Models:{Chat}:Pricing:InputPerMTok"] = "0.15",
            [$"ModelRoute:Models:{Chat}:Pricing:OutputPerMTok"] = "0.60",
            [$"ModelRoute:Models:{Chat}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{Chat}:Routes:0:Model"] = "gpt-4o-mini",
        },
        services);

    [Fact]
    public async Task A_provider_call_carries_the_attempt_span_of_the_submitters_trace()
    {
        var spans = new TracingCapture();
        await using var gateway = Gateway(spans.Services);
        using var account = await gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitAsync(account.Client, traceParent, Chat, Input);
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Eventually.HoldsAsync(() => spans.Of(id).Any(s => s.OperationName == "modelroute.provider.attempt"), "the attempt's span ended");

        var attempt = spans.Of(id).Single(s => s.OperationName == "modelroute.provider.attempt");
        attempt.GetTagItem("modelroute.provider").ShouldBe("oai");
        attempt.GetTagItem("modelroute.provider_model").ShouldBe("gpt-4o-mini");
        var call = _fake.Requests.ShouldHaveSingleItem();
        call.Headers["traceparent"].ShouldBe($"00-{traceId}-{attempt.SpanId.ToHexString()}-01");
    }

    [Fact]
    public async Task A_provider_call_carries_the_stored_trace_context_when_no_tracer_listens()
    {
        await using var gateway = Gateway();
        using var account = await gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitAsync(account.Client, traceParent, Chat, Input);
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("trace_id").GetString().ShouldBe(traceId);
        _fake.Requests.ShouldHaveSingleItem().Headers["traceparent"].ShouldMatch($"^00-{traceId}-[0-9a-f]{{16}}-01$");
    }
}
