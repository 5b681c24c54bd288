using System.Security.Cryptography;
using System.Text.Json.Nodes;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Providers.Replicate;

public sealed class ReplicateAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.Replicate;

    public IReadOnlySet<Modality> Modalities { get; } = ProviderKinds.AllModalities;

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new ReplicateAdapter(name, options, httpClients, time, loggers.CreateLogger<ReplicateAdapter>());
}

/// <summary>
/// Replicate predictions (async): create with a webhook for <c>completed</c>, read the prediction
/// from the webhook or a poll, cancel on request. Webhooks are checked with Standard Webhooks
/// signatures when <see cref="ProviderOptions.WebhookSecret"/> is set (docs/providers/replicate.md).
/// </summary>
public sealed partial class ReplicateAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<ReplicateAdapter> logger) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://api.replicate.com";
    public const string HttpClientName = "replicate";

    /// <summary>How far a webhook's timestamp may be from now (Standard Webhooks' replay window).</summary>
    public static readonly TimeSpan SignatureTolerance = TimeSpan.FromMinutes(5);

    private readonly AsyncJobClient _api = new(
        httpClients, HttpClientName, (string.IsNullOrWhiteSpace(options.BaseUrl) ? DefaultBaseUrl : options.BaseUrl).TrimEnd('/'), "Bearer", options.ApiKey);

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.CallbackUrl is null)
        {
            return AsyncJobClient.NoCallbackAddress(name);
        }

        var body = new JsonObject
        {
            ["input"] = ReplicateTranslation.Input(call),
            ["webhook"] = call.CallbackUrl.AbsoluteUri,
            ["webhook_events_filter"] = new JsonArray("completed"),
        };
        string path;
        var model = call.Route.ProviderModel;
        var colon = model.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            // owner/name:version — the version id goes in the body of the generic endpoint.
            body["version"] = model[(colon + 1)..];
            path = "/v1/predictions";
        }
        else
        {
            // owner/name — an official model, run at its latest version.
            var slash = model.IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || slash == model.Length - 1)
            {
                return new ProviderOutcome.Failed(new ExecutionError(
                    ExecutionErrorCodes.ProviderError, $"The route's model '{model}' is not 'owner/name' or 'owner/name:version'.", false, name));
            }

            path = $"/v1/models/{Uri.EscapeDataString(model[..slash])}/{Uri.EscapeDataString(model[(slash + 1)..])}/predictions";
        }

        using var response = await _api.SendAsync(HttpMethod.Post, path, body.ToJsonString(), call, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var failed = ReplicateErrors.FromHttp(name, (int)response.StatusCode, _api.Redact(text), ReplicateErrors.RetryAfter(response, time.GetUtcNow()));
            LogCreateFailed(logger, call.Execution.Id, (int)response.StatusCode, failed.Error.Code);
            return failed;
        }

        if (AsyncJobClient.Object(text) is not { } prediction || !prediction.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 } jobId)
        {
            return Malformed("the created prediction has no id");
        }

        LogCreated(logger, call.Execution.Id, jobId);
        return new ProviderOutcome.Accepted(jobId);
    }

    public async Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Execution.ProviderJobId is not { Length: > 0 } jobId)
        {
            return Malformed("the execution has no prediction id");
        }

        using var response = await _api.SendAsync(HttpMethod.Get, $"/v1/predictions/{Uri.EscapeDataString(jobId)}", null, call, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var failed = ReplicateErrors.FromHttp(name, (int)response.StatusCode, _api.Redact(text), null);
            if (failed.Error.Retryable)
            {
                // A busy or unwell API says nothing about the prediction: ask again on the next poll.
                LogPollDeferred(logger, call.Execution.Id, (int)response.StatusCode);
                return new ProviderOutcome.Running();
            }

            return (int)response.StatusCode == 404
                ? new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "Replicate no longer knows the prediction.", false, name, 404))
                : failed;
        }

        return AsyncJobClient.Object(text) is { } prediction ? Read(call, prediction) : Malformed("the prediction is not a JSON object");
    }

    public async Task CancelAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Execution.ProviderJobId is not { Length: > 0 } jobId)
        {
            return;
        }

        using var response = await _api.SendAsync(HttpMethod.Post, $"/v1/predictions/{Uri.EscapeDataString(jobId)}/cancel", null, call, cancellationToken);
        LogCancelled(logger, call.Execution.Id, (int)response.StatusCode);
    }

    public bool VerifyCallback(ProviderCall call, ProviderCallback callback)
    {
        if (string.IsNullOrEmpty(options.WebhookSecret))
        {
            return true; // The per-attempt token in the callback URL is the check.
        }

        var verified = Verify(options.WebhookSecret, callback.Headers, callback.RawBody, time.GetUtcNow());
        if (!verified)
        {
            LogSignatureRejected(logger, call.Execution.Id);
        }

        return verified;
    }

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback) =>
        callback.Body.ValueKind == JsonValueKind.Object ? Read(call, callback.Body) : Malformed("the webhook body is not a prediction");

    /// <summary>
    /// Standard Webhooks: <c>webhook-signature</c> holds one or more <c>v1,{base64}</c> of
    /// HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}"); the timestamp must be recent.
    /// </summary>
    public static bool Verify(string secret, IReadOnlyDictionary<string, string> headers, string body, DateTimeOffset now)
    {
        if (!headers.TryGetValue("webhook-id", out var id) || string.IsNullOrEmpty(id)
            || !headers.TryGetValue("webhook-timestamp", out var stamp) || !long.TryParse(stamp, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp)
            || !headers.TryGetValue("webhook-signature", out var signatures) || string.IsNullOrEmpty(signatures))
        {
            return false;
        }

        if (Math.Abs(now.ToUnixTimeSeconds() - timestamp) > SignatureTolerance.TotalSeconds)
        {
            return false;
        }

        string expected;
        try
        {
            expected = WebhookSigner.Sign(secret, id, timestamp, body);
        }
        catch (FormatException)
        {
            return false; // A secret that is not whsec_ + base64 verifies nothing.
        }

        var expectedBytes = Encoding.ASCII.GetBytes(expected);
        var match = false;
        foreach (var candidate in signatures.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            match |= CryptographicOperations.FixedTimeEquals(expectedBytes, Encoding.ASCII.GetBytes(candidate));
        }

        return match;
    }

    private ProviderOutcome Read(ProviderCall call, JsonElement prediction)
    {
        var status = prediction.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        switch (status)
        {
            case "starting" or "processing":
                return new ProviderOutcome.Running();
            case "succeeded":
                return ReplicateTranslation.Completed(name, call, prediction);
            case "failed":
                var error = prediction.TryGetProperty("error", out var e) ? (e.ValueKind == JsonValueKind.String ? e.GetString() : e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined ? null : e.GetRawText()) : null;
                return ReplicateErrors.FromPrediction(name, error is null ? null : _api.Redact(error));
            case "canceled" or "aborted":
                return ReplicateErrors.Canceled(name, status);
            default:
                return Malformed($"the prediction's status '{status}' is unknown");
        }
    }

    private ProviderOutcome.Failed Malformed(string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"Replicate answered something unexpected: {what}.", false, name));

    [LoggerMessage(Level = LogLevel.Information, Message = "Replicate prediction {PredictionId} created for {ExecutionId}")]
    private static partial void LogCreated(ILogger logger, string executionId, string predictionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Replicate refused the prediction for {ExecutionId}: {StatusCode} ({Code})")]
    private static partial void LogCreateFailed(ILogger logger, string executionId, int statusCode, string code);

    [LoggerMessage(Level = LogLevel.Information, Message = "Polling Replicate for {ExecutionId} answered {StatusCode}; will ask again")]
    private static partial void LogPollDeferred(ILogger logger, string executionId, int statusCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Asked Replicate to cancel the prediction of {ExecutionId}: {StatusCode}")]
    private static partial void LogCancelled(ILogger logger, string executionId, int statusCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A Replicate webhook for {ExecutionId} failed its signature check")]
    private static partial void LogSignatureRejected(ILogger logger, string executionId);
}
