using System.Collections.Concurrent;
using System.Net;

namespace ModelRoute.Tests.Operations;

/// <summary>docs/observability.md: with OTEL_EXPORTER_OTLP_ENDPOINT set, traces and metrics go out by OTLP; without it, none.</summary>
[Collection(ProcessTests.Name)]
public sealed class OtlpExportTests : IDisposable
{
    private readonly string _dataDirectory = TestPaths.NewTempDirectory("otlp");

    [Fact]
    public async Task With_an_otlp_endpoint_the_submitters_trace_and_the_gateways_metrics_are_exported()
    {
        using var collector = new OtlpCollector();
        await using var gateway = await GatewayProcess.StartAsync(_dataDirectory, new Dictionary<string, string>
        {
            ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
        });
        var key = await gateway.CreateFundedKeyAsync();
        using var client = gateway.Client(key);
        var traceId = System.Diagnostics.ActivityTraceId.CreateRandom();
        using var submit = new HttpRequestMessage(HttpMethod.Post, "/v1/executions")
        {
            Content = new StringContent("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}]},"idempotency_key":"otlp-1"}""", Encoding.UTF8, "application/json"),
        };
        submit.Headers.Add("traceparent", $"00-{traceId}-{System.Diagnostics.ActivitySpanId.CreateRandom()}-01");
        var accepted = await client.SendAsync(submit);
        accepted.StatusCode.ShouldBe(HttpStatusCode.Accepted, await accepted.Content.ReadAsStringAsync());
        var id = JsonDocument.Parse(await accepted.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;
        await client.WaitForTerminalAsync(id);

        // Trace ids travel as 16 raw bytes in OTLP's protobuf; metric names as UTF-8 strings.
        var traceBytes = Convert.FromHexString(traceId.ToHexString());
        await Eventually.HoldsAsync(() => collector.Received("/v1/traces").Any(body => body.AsSpan().IndexOf(traceBytes) >= 0), "a span of the submitter's trace exported");
        await Eventually.HoldsAsync(
            () => collector.Received("/v1/metrics").Any(body => body.AsSpan().IndexOf("modelroute.executions.submitted"u8) >= 0), "the ModelRoute metrics exported");
    }

    [Fact]
    public async Task A_webhook_send_is_exported_as_one_span_and_the_receiver_gets_its_id()
    {
        using var collector = new OtlpCollector();
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var gateway = await GatewayProcess.StartAsync(_dataDirectory, new Dictionary<string, string>
        {
            ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
            ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "true",
            ["ModelRoute:Webhooks:AllowHttp"] = "true",
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.Endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        });
        var key = await gateway.CreateFundedKeyAsync();
        using var client = gateway.Client(key);
        using var accepted = await client.PostAsync("/v1/executions", new StringContent(
            $$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}]},"webhook_url":"{{receiver.Url()}}","idempotency_key":"otlp-webhook"}""", Encoding.UTF8, "application/json"));
        accepted.StatusCode.ShouldBe(HttpStatusCode.Accepted, await accepted.Content.ReadAsStringAsync());
        await Eventually.HoldsAsync(() => !receiver.Received.IsEmpty, "the webhook arrived");

        var spanId = receiver.Received.Single().Headers["traceparent"].Split('-')[2];
        await Eventually.HoldsAsync(() => OtlpSpan.All(collector.Received("/v1/traces")).Any(s => s.SpanId == spanId), "the span the receiver was handed is exported");
        var spans = OtlpSpan.All(collector.Received("/v1/traces")).ToList();
        spans.Single(s => s.SpanId == spanId).Name.ShouldBe("modelroute.webhook.delivery", "the receiver is handed the delivery's span");
        spans.ShouldNotContain(s => s.ParentSpanId == spanId, "HttpClient makes no span of its own under a delivery");
    }

    [Fact]
    public async Task Without_an_otlp_endpoint_no_tracer_is_registered()
    {
        await using var factory = new GatewayFactory();
        factory.Services.GetService<OpenTelemetry.Trace.TracerProvider>().ShouldBeNull();
    }

    public void Dispose() => TestPaths.TryDelete(_dataDirectory);

    /// <summary>An OTLP/HTTP receiver that keeps every export's body by path.</summary>
    private sealed class OtlpCollector : IDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly ConcurrentQueue<(string Path, byte[] Body)> _received = new();

        public OtlpCollector()
        {
            Endpoint = $"http://127.0.0.1:{GatewayProcess.FreePort()}";
            _listener.Prefixes.Add(Endpoint + "/");
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        public string Endpoint { get; }

        public IEnumerable<byte[]> Received(string path) => _received.Where(r => r.Path == path).Select(r => r.Body);

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                try
                {
                    var context = await _listener.GetContextAsync();
                    using var body = new MemoryStream();
                    await context.Request.InputStream.CopyToAsync(body);
                    _received.Enqueue((context.Request.Url!.AbsolutePath, body.ToArray()));
                    context.Response.StatusCode = 200;
                    context.Response.ContentType = "application/x-protobuf";
                    context.Response.Close();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
            }
        }

        public void Dispose() => _listener.Close();
    }
}
