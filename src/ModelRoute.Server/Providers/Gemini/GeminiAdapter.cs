using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Gemini;

public sealed class GeminiAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.Gemini;

    public IReadOnlySet<Modality> Modalities { get; } = ProviderKinds.TextOnly;

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new GeminiAdapter(name, options, httpClients, time, loggers.CreateLogger<GeminiAdapter>());
}

/// <summary>
/// The Gemini API's <c>models/{model}:generateContent</c>, text only and synchronous. Translation
/// and the error table are in docs/providers/gemini.md.
/// </summary>
public sealed partial class GeminiAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<GeminiAdapter> logger) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://generativelanguage.googleapis.com";

    /// <summary>Finish reasons that mean Google withheld the answer.</summary>
    private static readonly HashSet<string> Blocked = new(StringComparer.Ordinal)
    {
        "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    };

    private readonly string _baseUrl = (options.BaseUrl is { Length: > 0 } b ? b : DefaultBaseUrl).TrimEnd('/');

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Model.Modality != Modality.Text)
        {
            return Fail(ExecutionErrorCodes.InvalidInput, $"The Gemini adapter speaks text only, not {call.Model.Modality}.");
        }

        JsonObject payload;
        using (var input = JsonDocument.Parse(call.Execution.Input))
        {
            var (body, problem) = BuildPayload(input.RootElement, call.Model.DefaultMaxOutputTokens);
            if (problem is not null)
            {
                return Fail(ExecutionErrorCodes.InvalidInput, problem);
            }

            payload = body!;
        }

        var model = call.Route.ProviderModel.StartsWith("models/", StringComparison.Ordinal) ? call.Route.ProviderModel["models/".Length..] : call.Route.ProviderModel;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"{_baseUrl}/v1beta/models/{Uri.EscapeDataString(model)}:generateContent"))
        {
            Content = new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-goog-api-key", options.ApiKey);

        var client = httpClients.CreateClient($"provider:{name}");
        client.Timeout = Timeout.InfiniteTimeSpan; // The dispatcher's token carries the deadline.
        using var response = await client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var status = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode)
        {
            var failed = GeminiErrors.Map(name, status, text, response.Headers, options.ApiKey, time.GetUtcNow());
            LogFailed(logger, call.Execution.Id, status, failed.Error.Code);
            return failed;
        }

        return ReadResponse(name, text);
    }

    /// <summary>Never: the answer is the reply to the call.</summary>
    public bool MayCallBack(ProviderCall call) => false;

    public Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken) =>
        Task.FromResult<ProviderOutcome>(Fail(ExecutionErrorCodes.ProviderError, "Gemini answers synchronously; there is no job to poll."));

    public Task CancelAsync(ProviderCall call, CancellationToken cancellationToken) => Task.CompletedTask;

    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => false;

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback) =>
        Fail(ExecutionErrorCodes.ProviderError, "Gemini does not call back.");

    /// <summary>The canonical text input as a generateContent body, or why it cannot be one.</summary>
    public static (JsonObject? Body, string? Problem) BuildPayload(JsonElement input, int defaultMaxTokens)
    {
        var system = new List<string>();
        if (input.TryGetProperty("system", out var topSystem) && topSystem.ValueKind == JsonValueKind.String && topSystem.GetString() is { Length: > 0 } s)
        {
            system.Add(s);
        }

        var contents = new JsonArray();
        foreach (var message in input.GetProperty("messages").EnumerateArray())
        {
            var role = message.GetProperty("role").GetString();
            var content = message.GetProperty("content");
            if (role is "system" or "developer")
            {
                system.Add(CanonicalJson.TextOf(content));
                continue;
            }

            contents.Add(new JsonObject
            {
                ["role"] = role == "assistant" ? "model" : "user", // a canonical tool message travels as user text
                ["parts"] = Parts(content),
            });
        }

        if (contents.Count == 0)
        {
            return (null, "Gemini needs at least one user or assistant message besides the system prompt.");
        }

        var body = new JsonObject { ["contents"] = contents };
        if (system.Count > 0)
        {
            body["systemInstruction"] = new JsonObject { ["parts"] = new JsonArray(new JsonObject { ["text"] = string.Join("\n\n", system) }) };
        }

        var generation = new JsonObject
        {
            ["maxOutputTokens"] = input.TryGetProperty("max_tokens", out var max) && max.ValueKind == JsonValueKind.Number ? max.GetInt32() : defaultMaxTokens,
        };
        CanonicalJson.CopyNumber(input, "temperature", generation, "temperature");
        CanonicalJson.CopyNumber(input, "top_p", generation, "topP");
        if (input.TryGetProperty("stop", out var stop))
        {
            if (stop.ValueKind == JsonValueKind.String)
            {
                generation["stopSequences"] = new JsonArray(stop.GetString());
            }
            else if (stop.ValueKind == JsonValueKind.Array)
            {
                generation["stopSequences"] = JsonNode.Parse(stop.GetRawText());
            }
        }

        body["generationConfig"] = generation;

        if (input.TryGetProperty("provider_options", out var providerOptions) && providerOptions.ValueKind == JsonValueKind.Object)
        {
            foreach (var option in providerOptions.EnumerateObject())
            {
                var value = JsonNode.Parse(option.Value.GetRawText());
                if (body[option.Name] is JsonObject existing && value is JsonObject additions)
                {
                    // One level deep, so that provider_options.generationConfig.topK keeps maxOutputTokens.
                    foreach (var (key, node) in additions.ToList())
                    {
                        additions.Remove(key);
                        existing[key] = node;
                    }
                }
                else
                {
                    body[option.Name] = value;
                }
            }
        }

        return (body, null);
    }

    /// <summary>A generateContent answer as the canonical text output and usage.</summary>
    public static ProviderOutcome ReadResponse(string provider, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Malformed(provider, "not an object");
            }

            if (root.TryGetProperty("promptFeedback", out var feedback) && feedback.ValueKind == JsonValueKind.Object
                && feedback.TryGetProperty("blockReason", out var blockReason) && blockReason.ValueKind == JsonValueKind.String)
            {
                return Refused(provider, $"Gemini blocked the prompt (blockReason {blockReason.GetString()}).");
            }

            if (!root.TryGetProperty("candidates", out var candidates) || candidates.ValueKind != JsonValueKind.Array || candidates.GetArrayLength() == 0
                || candidates[0].ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("usageMetadata", out var usage) || usage.ValueKind != JsonValueKind.Object)
            {
                return Malformed(provider, "no candidates or usageMetadata");
            }

            var candidate = candidates[0];
            var finishReason = candidate.TryGetProperty("finishReason", out var fr) && fr.ValueKind == JsonValueKind.String ? fr.GetString()! : "";
            if (Blocked.Contains(finishReason))
            {
                return Refused(provider, $"Gemini withheld the answer (finishReason {finishReason}).");
            }

            var reply = new StringBuilder();
            var toolCalls = new List<Dictionary<string, object?>>();
            if (candidate.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.Object
                && content.TryGetProperty("parts", out var parts) && parts.ValueKind == JsonValueKind.Array)
            {
                foreach (var part in parts.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.Object))
                {
                    if (part.TryGetProperty("thought", out var thought) && thought.ValueKind == JsonValueKind.True)
                    {
                        continue; // thought summaries are not the answer
                    }

                    if (part.TryGetProperty("text", out var partText) && partText.ValueKind == JsonValueKind.String)
                    {
                        reply.Append(partText.GetString());
                    }
                    else if (part.TryGetProperty("functionCall", out var call) && call.ValueKind == JsonValueKind.Object)
                    {
                        toolCalls.Add(new()
                        {
                            ["id"] = call.TryGetProperty("id", out var id) ? id.GetString() : null,
                            ["name"] = call.TryGetProperty("name", out var n) ? n.GetString() : null,
                            ["arguments"] = call.TryGetProperty("args", out var args) ? args.Clone() : null,
                        });
                    }
                }
            }
            else if (finishReason is "" or "STOP")
            {
                return Malformed(provider, "a candidate without content");
            }

            var finish = toolCalls.Count > 0 ? "tool_calls" : finishReason == "MAX_TOKENS" ? "length" : "stop";
            var output = new Dictionary<string, object> { ["text"] = reply.ToString(), ["finish_reason"] = finish };
            if (toolCalls.Count > 0)
            {
                output["tool_calls"] = toolCalls;
            }

            var prompt = CanonicalJson.Long(usage, "promptTokenCount") ?? 0;
            var cached = Math.Min(CanonicalJson.Long(usage, "cachedContentTokenCount") ?? 0, prompt);
            var normalized = new Usage(
                InputTokens: prompt - cached,
                OutputTokens: (CanonicalJson.Long(usage, "candidatesTokenCount") ?? 0) + (CanonicalJson.Long(usage, "thoughtsTokenCount") ?? 0),
                CachedInputTokens: cached);
            return new ProviderOutcome.Completed(JsonSerializer.Serialize(output), normalized, []);
        }
        catch (JsonException)
        {
            return Malformed(provider, "not JSON");
        }
    }

    private static ProviderOutcome.Failed Refused(string provider, string message) =>
        new(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, message, false, provider, 200));

    private static ProviderOutcome.Failed Malformed(string provider, string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"Gemini answered 200 with a malformed response ({what}).", false, provider, 200));

    private ProviderOutcome.Failed Fail(string code, string message) => new(new ExecutionError(code, message, false, name));

    private static JsonArray Parts(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return [new JsonObject { ["text"] = content.GetString() }];
        }

        var parts = new JsonArray();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.GetString() == "text")
            {
                parts.Add(new JsonObject { ["text"] = part.TryGetProperty("text", out var t) ? t.GetString() : "" });
            }
            else
            {
                parts.Add(JsonNode.Parse(part.GetRawText())); // Gemini's own parts (inlineData, say) go through as they are.
            }
        }

        return parts;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Gemini answered {Status} for {ExecutionId} ({Code})")]
    private static partial void LogFailed(ILogger logger, string executionId, int status, string code);
}
