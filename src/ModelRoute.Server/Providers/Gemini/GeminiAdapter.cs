using System.Net.Http.Headers;
using System.Text.Json.Nodes;
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
public sealed class GeminiAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<GeminiAdapter> logger)
    : SyncProviderAdapter(name, options, httpClients, time, logger)
{
    public const string DefaultBaseUrl = "https://generativelanguage.googleapis.com";

    /// <summary>Finish reasons that mean Google withheld the answer.</summary>
    private static readonly HashSet<string> Blocked = new(StringComparer.Ordinal)
    {
        "SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    };

    private readonly string _baseUrl = (options.BaseUrl is { Length: > 0 } b ? b : DefaultBaseUrl).TrimEnd('/');

    protected override string NoPollMessage => "Gemini answers synchronously; there is no job to poll.";

    protected override string NoCallbackMessage => "Gemini does not call back.";

    protected override SyncRequest Prepare(ProviderCall call, JsonElement input)
    {
        if (call.Model.Modality != Modality.Text)
        {
            return SyncRequest.Refuse(Fail(ExecutionErrorCodes.InvalidInput, $"The Gemini adapter speaks text only, not {call.Model.Modality}."));
        }

        var (body, problem) = BuildPayload(input, call.Model.DefaultMaxOutputTokens);
        if (problem is not null)
        {
            return SyncRequest.Refuse(Fail(ExecutionErrorCodes.InvalidInput, problem));
        }

        var model = call.Route.ProviderModel.StartsWith("models/", StringComparison.Ordinal) ? call.Route.ProviderModel["models/".Length..] : call.Route.ProviderModel;
        return SyncRequest.Post(new Uri($"{_baseUrl}/v1beta/models/{Uri.EscapeDataString(model)}:generateContent"), body!);
    }

    protected override void AddHeaders(HttpRequestHeaders headers) => headers.TryAddWithoutValidation("x-goog-api-key", Options.ApiKey);

    protected override ProviderOutcome.Failed MapError(int status, string body, HttpResponseHeaders headers, DateTimeOffset now) =>
        GeminiErrors.Map(Name, status, body, headers, Options.ApiKey, now);

    protected override ProviderOutcome ReadAnswer(ProviderCall call, JsonElement input, string body) => ReadResponse(Name, body);

    /// <summary>The canonical text input as a generateContent body, or why it cannot be one.</summary>
    public static (JsonObject? Body, string? Problem) BuildPayload(JsonElement input, int defaultMaxTokens)
    {
        var (system, turns) = CanonicalJson.Conversation(input);
        var contents = new JsonArray();
        foreach (var (role, content) in turns)
        {
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

        body["generationConfig"] = GenerationConfig(input, defaultMaxTokens);
        foreach (var option in CanonicalJson.ProviderOptions(input))
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

            var parts = ReadParts(candidate);
            if (parts is null && finishReason is "" or "STOP")
            {
                return Malformed(provider, "a candidate without content");
            }

            var (reply, toolCalls) = parts ?? ("", new List<Dictionary<string, object?>>());

            var finish = toolCalls.Count > 0 ? "tool_calls" : finishReason == "MAX_TOKENS" ? "length" : "stop";
            return new ProviderOutcome.Completed(CanonicalJson.TextOutput(reply, finish, toolCalls), ReadUsage(usage), []);
        }
        catch (JsonException)
        {
            return Malformed(provider, "not JSON");
        }
    }

    /// <summary>The candidate's text parts joined (thoughts left out) and its function calls, or null when it has no content.</summary>
    private static (string Reply, List<Dictionary<string, object?>> ToolCalls)? ReadParts(JsonElement candidate)
    {
        if (!candidate.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Object
            || !content.TryGetProperty("parts", out var parts) || parts.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var reply = new StringBuilder();
        var toolCalls = new List<Dictionary<string, object?>>();
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
                toolCalls.Add(CanonicalJson.ToolCall(call, "args"));
            }
        }

        return (reply.ToString(), toolCalls);
    }

    /// <summary>Google counts cached tokens inside the prompt and thoughts apart from the candidates; the gateway bills thoughts as output.</summary>
    private static Usage ReadUsage(JsonElement usage)
    {
        var prompt = CanonicalJson.Long(usage, "promptTokenCount") ?? 0;
        var cached = Math.Min(CanonicalJson.Long(usage, "cachedContentTokenCount") ?? 0, prompt);
        return new Usage(
            InputTokens: prompt - cached,
            OutputTokens: (CanonicalJson.Long(usage, "candidatesTokenCount") ?? 0) + (CanonicalJson.Long(usage, "thoughtsTokenCount") ?? 0),
            CachedInputTokens: cached);
    }

    private static JsonObject GenerationConfig(JsonElement input, int defaultMaxTokens)
    {
        var generation = new JsonObject
        {
            ["maxOutputTokens"] = input.TryGetProperty("max_tokens", out var max) && max.ValueKind == JsonValueKind.Number ? max.GetInt32() : defaultMaxTokens,
        };
        CanonicalJson.CopyNumber(input, "temperature", generation, "temperature");
        CanonicalJson.CopyNumber(input, "top_p", generation, "topP");
        if (CanonicalJson.StopSequences(input) is { } stop)
        {
            generation["stopSequences"] = stop;
        }

        return generation;
    }

    private static ProviderOutcome.Failed Refused(string provider, string message) =>
        new(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, message, false, provider, 200));

    private static ProviderOutcome.Failed Malformed(string provider, string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"Gemini answered 200 with a malformed response ({what}).", false, provider, 200));

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
}
