using System.Text.Json.Nodes;
using ModelRoute.Server.Providers.Replicate;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Fal;

public sealed class FalAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.Fal;

    public IReadOnlySet<Modality> Modalities { get; } = ProviderKinds.AllModalities;

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new FalAdapter(name, options, httpClients, time, loggers.CreateLogger<FalAdapter>());
}

/// <summary>
/// fal's queue API (async): submit with <c>fal_webhook</c>, read the result from the webhook or,
/// when it is late, from the request's status and result; cancel on request. A webhook needs both
/// the per-attempt token in its URL and fal's ED25519 signature under a key of fal's JWKS
/// (<see cref="FalWebhookVerifier"/>, docs/providers/fal.md).
/// </summary>
public sealed partial class FalAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<FalAdapter> logger) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://queue.fal.run";
    public const string HttpClientName = "fal";

    private static readonly string[] Namespaces = ["workflows", "comfy"];

    private readonly AsyncJobClient _api = new(
        httpClients, HttpClientName, (string.IsNullOrWhiteSpace(options.BaseUrl) ? DefaultBaseUrl : options.BaseUrl).TrimEnd('/'), "Key", options.ApiKey);

    private readonly FalWebhookVerifier _webhooks = new(
        string.IsNullOrWhiteSpace(options.WebhookJwksUrl) ? FalWebhookVerifier.DefaultJwksUrl : options.WebhookJwksUrl, httpClients, time, logger);

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.CallbackUrl is null)
        {
            return AsyncJobClient.NoCallbackAddress(name);
        }

        var path = "/" + string.Join('/', call.Route.ProviderModel.Trim('/').Split('/').Select(Uri.EscapeDataString));
        var url = $"{path}?fal_webhook={Uri.EscapeDataString(call.CallbackUrl.AbsoluteUri)}";
        using var response = await _api.SendAsync(HttpMethod.Post, url, Input(call).ToJsonString(), call, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var failed = FalErrors.FromHttp(name, (int)response.StatusCode, _api.Redact(text), ReplicateErrors.RetryAfter(response, time.GetUtcNow()));
            LogSubmitFailed(logger, call.Execution.Id, (int)response.StatusCode, failed.Error.Code);
            return failed;
        }

        if (AsyncJobClient.Object(text) is not { } queued || !queued.TryGetProperty("request_id", out var id) || id.ValueKind != JsonValueKind.String || id.GetString() is not { Length: > 0 } requestId)
        {
            return Malformed("the queued request has no request_id");
        }

        LogSubmitted(logger, call.Execution.Id, requestId);
        return new ProviderOutcome.Accepted(requestId);
    }

    public async Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Execution.ProviderJobId is not { Length: > 0 } requestId)
        {
            return Malformed("the execution has no request id");
        }

        var requests = $"{AppPath(call.Route.ProviderModel)}/requests/{Uri.EscapeDataString(requestId)}";
        using (var response = await _api.SendAsync(HttpMethod.Get, requests + "/status", null, call, cancellationToken))
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return Deferred(call, FalErrors.FromHttp(name, (int)response.StatusCode, _api.Redact(text), null), (int)response.StatusCode);
            }

            var status = AsyncJobClient.Object(text) is { } s && s.TryGetProperty("status", out var st) && st.ValueKind == JsonValueKind.String ? st.GetString() : null;
            switch (status)
            {
                case "IN_QUEUE" or "IN_PROGRESS":
                    return new ProviderOutcome.Running();
                case "COMPLETED":
                    break;
                default:
                    return Malformed($"the request's status '{status}' is unknown");
            }
        }

        using var result = await _api.SendAsync(HttpMethod.Get, requests, null, call, cancellationToken);
        var body = await result.Content.ReadAsStringAsync(cancellationToken);
        if (!result.IsSuccessStatusCode)
        {
            // A completed request whose result is an error: the app's own answer, mapped like a submit's.
            var failed = FalErrors.FromHttp(name, (int)result.StatusCode, _api.Redact(body), null);
            return failed.Error.Code is ExecutionErrorCodes.ProviderRateLimited ? Deferred(call, failed, (int)result.StatusCode) : failed;
        }

        return AsyncJobClient.Object(body) is { } payload ? Completed(call, payload) : Malformed("the result is not a JSON object");
    }

    public async Task CancelAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Execution.ProviderJobId is not { Length: > 0 } requestId)
        {
            return;
        }

        using var response = await _api.SendAsync(HttpMethod.Put, $"{AppPath(call.Route.ProviderModel)}/requests/{Uri.EscapeDataString(requestId)}/cancel", null, call, cancellationToken);
        LogCancelled(logger, call.Execution.Id, (int)response.StatusCode);
    }

    /// <summary>fal's signature needs its key set, fetched over the network: see <see cref="VerifyCallbackAsync"/>.</summary>
    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => false;

    /// <summary>The signature is checked after the URL's per-attempt token (the endpoint's check): both are needed.</summary>
    public async Task<bool> VerifyCallbackAsync(ProviderCall call, ProviderCallback callback, CancellationToken cancellationToken)
    {
        if (await _webhooks.VerifyAsync(callback.Headers, callback.RawBody, cancellationToken))
        {
            return true;
        }

        LogSignatureRejected(logger, call.Execution.Id);
        return false;
    }

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback)
    {
        var body = callback.Body;
        if (body.ValueKind != JsonValueKind.Object)
        {
            return Malformed("the webhook body is not an object");
        }

        var status = body.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        var payload = body.TryGetProperty("payload", out var p) ? p : default;
        switch (status)
        {
            case "OK" when payload.ValueKind == JsonValueKind.Object:
                return Completed(call, payload);
            case "OK" or "ERROR" when body.TryGetProperty("payload_error", out var pe) && pe.ValueKind == JsonValueKind.String:
                // fal could not put the result in the webhook: it stays readable, so the next poll fetches it.
                LogPayloadMissing(logger, call.Execution.Id);
                return new ProviderOutcome.Running();
            case "ERROR":
                var error = body.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String ? e.GetString() : null;
                return FalErrors.FromWebhook(name, error is null ? null : _api.Redact(error), payload);
            default:
                return Malformed($"the webhook's status '{status}' is unknown");
        }
    }

    /// <summary>
    /// The app part of a model id, under which fal keeps its requests: <c>owner/alias</c> (plus a
    /// namespace such as <c>workflows/</c>); <c>fal-ai/flux/dev</c> → <c>/fal-ai/flux</c>.
    /// </summary>
    public static string AppPath(string modelId)
    {
        var parts = modelId.Trim('/').Split('/');
        var take = parts.Length > 2 && Namespaces.Contains(parts[0]) ? 3 : Math.Min(2, parts.Length);
        return "/" + string.Join('/', parts.Take(take).Select(Uri.EscapeDataString));
    }

    /// <summary>The request body: the canonical fields translated, then <c>provider_options</c> over them.</summary>
    public static JsonObject Input(ProviderCall call) => CanonicalJson.TranslateInput(call, Translate);

    private static void Translate(Modality modality, JsonElement input, JsonObject result)
    {
        switch (modality)
        {
            case Modality.Text:
                TextInput(input, result);
                break;
            case Modality.Image:
                CanonicalJson.Copy(input, result, "prompt", "prompt");
                CanonicalJson.Copy(input, result, "n", "num_images");
                if (input.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.String)
                {
                    var wh = size.GetString()!.Split('x', 'X', '×');
                    if (wh.Length == 2 && int.TryParse(wh[0], CultureInfo.InvariantCulture, out var w) && int.TryParse(wh[1], CultureInfo.InvariantCulture, out var h))
                    {
                        result["image_size"] = new JsonObject { ["width"] = w, ["height"] = h };
                    }
                }

                break;
            case Modality.Video:
            case Modality.Audio:
                CanonicalJson.Copy(input, result, "prompt", "prompt");
                CanonicalJson.Copy(input, result, "text", "text");
                if (input.TryGetProperty("duration_seconds", out var d) && d.ValueKind == JsonValueKind.Number)
                {
                    // fal's video apps (Kling, Wan, …) take the duration as a string enum such as "5".
                    result["duration"] = d.GetRawText();
                }

                break;
            case Modality.Embedding:
                CanonicalJson.Copy(input, result, "input", "input");
                break;
        }
    }

    /// <summary>fal's LLM apps take one prompt and a system prompt: the messages' texts, each kind joined by newlines.</summary>
    private static void TextInput(JsonElement input, JsonObject result)
    {
        var system = new StringBuilder();
        var prompt = new StringBuilder();
        if (input.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : "user";
                var content = message.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : "";
                (role == "system" ? system : prompt).Append(system.Length > 0 && role == "system" ? "\n" : "").Append(role == "system" ? content : (prompt.Length > 0 ? "\n" : "") + content);
            }
        }

        result["prompt"] = prompt.ToString();
        if (system.Length > 0)
        {
            result["system_prompt"] = system.ToString();
        }

        CanonicalJson.Copy(input, result, "max_tokens", "max_tokens");
        CanonicalJson.Copy(input, result, "temperature", "temperature");
    }

    private ProviderOutcome Completed(ProviderCall call, JsonElement payload)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var input = doc.RootElement;
        return call.Model.Modality switch
        {
            Modality.Image => ImagesCompleted(call, payload),
            Modality.Video or Modality.Audio => MediaCompleted(call, payload, input),
            Modality.Text => TextCompleted(payload, input),
            _ => EmbeddingsCompleted(payload, input),
        };
    }

    private ProviderOutcome ImagesCompleted(ProviderCall call, JsonElement payload)
    {
        var files = new List<JsonElement>();
        if (payload.TryGetProperty("images", out var images) && images.ValueKind == JsonValueKind.Array)
        {
            files.AddRange(images.EnumerateArray().Where(i => i.ValueKind == JsonValueKind.Object));
        }
        else if (payload.TryGetProperty("image", out var image) && image.ValueKind == JsonValueKind.Object)
        {
            files.Add(image);
        }

        var artifacts = new List<ArtifactContent>();
        foreach (var (file, i) in files.Select((f, i) => (f, i)))
        {
            if (File(file, $"image-{i}", ".png") is not { } artifact)
            {
                return Malformed("an image has no url");
            }

            artifacts.Add(artifact);
        }

        return artifacts.Count == 0
            ? Malformed("the result holds no images")
            : new ProviderOutcome.Completed(FileOutputs.Images(artifacts, call.Execution.Id), new Usage(Images: artifacts.Count), artifacts);
    }

    private ProviderOutcome MediaCompleted(ProviderCall call, JsonElement payload, JsonElement input)
    {
        var video = call.Model.Modality == Modality.Video;
        var key = video ? "video" : payload.TryGetProperty("audio", out _) ? "audio" : "audio_file";
        if (!payload.TryGetProperty(key, out var file) || File(file, video ? "video" : "audio", video ? ".mp4" : ".wav") is not { } artifact)
        {
            return Malformed($"the result has no {key}.url");
        }

        var seconds = input.TryGetProperty("duration_seconds", out var ds) && ds.TryGetInt32(out var n) ? n : call.Model.DefaultDurationSeconds;
        return new ProviderOutcome.Completed(FileOutputs.Media(video, artifact, call.Execution.Id, seconds), new Usage(DurationMilliseconds: seconds * 1000L), [artifact]);
    }

    private ProviderOutcome TextCompleted(JsonElement payload, JsonElement input)
    {
        var text = payload.TryGetProperty("output", out var o) && o.ValueKind == JsonValueKind.String ? o.GetString()
            : payload.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (text is null)
        {
            return Malformed("the result has no output text");
        }

        var usage = new Usage(InputTokens: CostEstimator.TokensFor(CostEstimator.CountMessageCharacters(input)), OutputTokens: CostEstimator.TokensFor(text.Length));
        return new ProviderOutcome.Completed(JsonSerializer.Serialize(new Dictionary<string, object> { ["text"] = text, ["finish_reason"] = "stop" }), usage, []);
    }

    private ProviderOutcome EmbeddingsCompleted(JsonElement payload, JsonElement input)
    {
        if (!payload.TryGetProperty("embeddings", out var embeddings) || embeddings.ValueKind != JsonValueKind.Array)
        {
            return Malformed("the result has no embeddings");
        }

        var text = input.TryGetProperty("input", out var v) ? v.GetRawText() : "";
        return new ProviderOutcome.Completed(new JsonObject { ["embeddings"] = JsonNode.Parse(embeddings.GetRawText()) }.ToJsonString(), new Usage(InputTokens: CostEstimator.TokensFor(text.Length)), []);
    }

    /// <summary>A fal File object <c>{url, content_type, file_name, …}</c> as an artifact copied from its URL.</summary>
    private static ArtifactContent? File(JsonElement file, string stem, string defaultExtension)
    {
        if (file.ValueKind != JsonValueKind.Object || !file.TryGetProperty("url", out var u) || u.ValueKind != JsonValueKind.String
            || u.GetString() is not { } url || !(url.StartsWith("data:", StringComparison.OrdinalIgnoreCase) || Uri.TryCreate(url, UriKind.Absolute, out _)))
        {
            return null;
        }

        var artifact = FileOutputs.Artifact(stem, url, defaultExtension);
        return file.TryGetProperty("content_type", out var ct) && ct.ValueKind == JsonValueKind.String && ct.GetString() is { Length: > 0 } type && artifact.Data is null
            ? artifact with { ContentType = type }
            : artifact;
    }

    private ProviderOutcome Deferred(ProviderCall call, ProviderOutcome.Failed failed, int statusCode)
    {
        if (!failed.Error.Retryable)
        {
            return statusCode == 404
                ? new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "fal no longer knows the request.", false, name, 404))
                : failed;
        }

        // A busy or unwell API says nothing about the request: ask again on the next poll.
        LogPollDeferred(logger, call.Execution.Id, statusCode);
        return new ProviderOutcome.Running();
    }

    private ProviderOutcome.Failed Malformed(string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"fal answered something unexpected: {what}.", false, name));

    [LoggerMessage(Level = LogLevel.Information, Message = "fal request {RequestId} queued for {ExecutionId}")]
    private static partial void LogSubmitted(ILogger logger, string executionId, string requestId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "fal refused the request for {ExecutionId}: {StatusCode} ({Code})")]
    private static partial void LogSubmitFailed(ILogger logger, string executionId, int statusCode, string code);

    [LoggerMessage(Level = LogLevel.Information, Message = "Polling fal for {ExecutionId} answered {StatusCode}; will ask again")]
    private static partial void LogPollDeferred(ILogger logger, string executionId, int statusCode);

    [LoggerMessage(Level = LogLevel.Information, Message = "Asked fal to cancel the request of {ExecutionId}: {StatusCode}")]
    private static partial void LogCancelled(ILogger logger, string executionId, int statusCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "fal's webhook for {ExecutionId} carried no payload; the result will be polled")]
    private static partial void LogPayloadMissing(ILogger logger, string executionId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a fal webhook for {ExecutionId}: its signature is missing, stale or not made by a key of fal's key set")]
    private static partial void LogSignatureRejected(ILogger logger, string executionId);
}
