using Microsoft.Extensions.Logging;
using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Operations;

/// <summary>docs/observability.md#logs: what is logged while an execution runs, or its webhook is sent, carries its ids and trace id.</summary>
[Collection(TracingCollection.Name)]
public sealed class TracingLogScopeTests : IAsyncLifetime
{
    private const string Chat = "openai/gpt-4o-mini";
    private readonly ScopedLogs _logs = new();
    private OpenAIFake _fake = null!;
    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync()
    {
        _fake = await OpenAIFake.StartAsync();
        _receiver = await WebhookReceiver.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _receiver.DisposeAsync();
        await _fake.DisposeAsync();
    }

    [Fact]
    public async Task A_provider_failure_and_a_failed_webhook_send_are_logged_with_the_executions_ids_and_trace_id_in_scope()
    {
        await using var gateway = new GatewayFactory(
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
                ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
                ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
            },
            services => services.AddSingleton<ILoggerProvider>(_logs));
        using var account = await gateway.CreateAccountAsync();
        _fake.FailNext(1, 500, OpenAIFake.ErrorJson("The server had an error.", "server_error"));
        _receiver.Answer = (n, _) => n == 0 ? new ReceiverAnswer(500) : ReceiverAnswer.Ok;
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitAsync(
            account.Client, traceParent, Chat, """{"messages":[{"role":"user","content":"Say hello."}]}""", $",\"webhook_url\":\"{_receiver.Url()}\"");
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Eventually.HoldsAsync(() => _receiver.Received.Count == 2, "the webhook was sent again after its failure");
        await Eventually.HoldsAsync(() => _logs.Lines.Any(l => l.Message.StartsWith("Webhook delivery", StringComparison.Ordinal)), "the failed send was logged");

        var providerFailure = _logs.Lines.Single(l => l.Message.StartsWith("Provider oai answered 500", StringComparison.Ordinal));
        providerFailure.Scope["ExecutionId"].ShouldBe(id);
        providerFailure.Scope["TraceId"].ShouldBe(traceId);
        var sendFailure = _logs.Lines.Single(l => l.Message.StartsWith("Webhook delivery", StringComparison.Ordinal));
        sendFailure.Scope["DeliveryId"].ShouldNotBeNull().ShouldStartWith("whd_");
        sendFailure.Scope["ExecutionId"].ShouldBe(id);
        sendFailure.Scope["TraceId"].ShouldBe(traceId);
    }

    /// <summary>A log line and the values of every scope around it.</summary>
    private sealed record ScopedLine(string Category, string Message, IReadOnlyDictionary<string, string?> Scope);

    /// <summary>Log lines with their scopes, as a logger that shows scopes (e.g. the JSON console formatter) gets them.</summary>
    private sealed class ScopedLogs : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

        public ConcurrentQueue<ScopedLine> Lines { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, this);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ScopedLogs logs) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => logs._scopes.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scope = new Dictionary<string, string?>();
                logs._scopes.ForEachScope(
                    (value, values) =>
                    {
                        if (value is IEnumerable<KeyValuePair<string, object?>> pairs)
                        {
                            foreach (var (key, item) in pairs)
                            {
                                values[key] = item?.ToString();
                            }
                        }
                    },
                    scope);
                logs.Lines.Enqueue(new ScopedLine(category, formatter(state, exception), scope));
            }
        }
    }
}
