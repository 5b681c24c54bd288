using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace ModelRoute.Server.Providers;

/// <summary>
/// What the synchronous adapters (OpenAI, Anthropic, Gemini) share: the answer is the reply to one POST, so there is
/// nothing to poll, cancel or call back. A subclass builds the request, names its error table and reads a 2xx body;
/// this class sends the request under the dispatcher's token and maps any other status (docs/architecture.md, Providers).
/// </summary>
public abstract partial class SyncProviderAdapter(
    string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger logger) : IProviderAdapter
{
    /// <summary>The provider's configured name, as failures report it.</summary>
    protected string Name => name;

    protected ProviderOptions Options => options;

    /// <summary>The failure a poll gets: nothing was ever accepted for later.</summary>
    protected abstract string NoPollMessage { get; }

    /// <summary>The failure a callback gets: the provider never calls back.</summary>
    protected abstract string NoCallbackMessage { get; }

    /// <summary>
    /// POSTs what <see cref="Prepare"/> builds; a non-2xx answer goes through the provider's error table, a 2xx body to
    /// <see cref="ReadAnswer"/>. Connection failures (<see cref="HttpRequestException"/>) and cancellation propagate:
    /// the dispatcher maps them.
    /// </summary>
    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var input = doc.RootElement;
        var prepared = Prepare(call, input);
        if (prepared.Refusal is { } refusal)
        {
            return refusal;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, prepared.Url)
        {
            Content = new StringContent(prepared.Payload!.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        AddHeaders(request.Headers);
        Operations.TraceContext.Propagate(request.Headers, call.Execution.TraceParent);
        var client = httpClients.CreateClient($"provider:{name}");

        // The dispatcher's token carries the deadline (the provider's Timeout or the execution's, whichever is
        // sooner); HttpClient's own 100 s default would cut long generations short.
        client.Timeout = Timeout.InfiniteTimeSpan;
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var status = (int)response.StatusCode;
        if (status is < 200 or > 299)
        {
            var failed = MapError(status, body, response.Headers, time.GetUtcNow());
            LogFailure(call, status, failed.Error.Code);
            return failed;
        }

        return ReadAnswer(call, input, body);
    }

    /// <summary>Never: the answer is the reply to the call.</summary>
    public bool MayCallBack(ProviderCall call) => false;

    /// <summary>Nothing is ever accepted for later, so there is nothing to poll.</summary>
    public Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken) =>
        Task.FromResult<ProviderOutcome>(Fail(ExecutionErrorCodes.ProviderError, NoPollMessage));

    /// <summary>A synchronous call is cancelled by cancelling its request (the dispatcher's token).</summary>
    public Task CancelAsync(ProviderCall call, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The provider never calls back, so no callback can be genuine.</summary>
    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => false;

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback) => Fail(ExecutionErrorCodes.ProviderError, NoCallbackMessage);

    /// <summary>The request for <paramref name="call"/> (its canonical <paramref name="input"/> given), or why there is none.</summary>
    protected abstract SyncRequest Prepare(ProviderCall call, JsonElement input);

    /// <summary>The provider's credentials and protocol headers.</summary>
    protected abstract void AddHeaders(HttpRequestHeaders headers);

    /// <summary>A non-2xx answer through the provider's one error table.</summary>
    protected abstract ProviderOutcome.Failed MapError(int status, string body, HttpResponseHeaders headers, DateTimeOffset now);

    /// <summary>A 2xx body as the canonical outcome.</summary>
    protected abstract ProviderOutcome ReadAnswer(ProviderCall call, JsonElement input, string body);

    protected ProviderOutcome.Failed Fail(string code, string message) => new(new ExecutionError(code, message, false, name));

    protected void LogFailure(ProviderCall call, int status, string code) => LogFailed(logger, name, status, call.Execution.Id, code);

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider {Provider} answered {StatusCode} for {ExecutionId}: {Code}")]
    private static partial void LogFailed(ILogger logger, string provider, int statusCode, string executionId, string code);

    /// <summary>Where to POST what, or the failure that makes the call pointless.</summary>
    protected readonly record struct SyncRequest(Uri? Url, JsonObject? Payload, ProviderOutcome.Failed? Refusal)
    {
        public static SyncRequest Post(Uri url, JsonObject payload) => new(url, payload, null);

        public static SyncRequest Refuse(ProviderOutcome.Failed refusal) => new(null, null, refusal);
    }
}
