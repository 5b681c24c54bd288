using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Anthropic;

public sealed class AnthropicAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.Anthropic;

    public IReadOnlySet<Modality> Modalities { get; } = ProviderKinds.TextOnly;

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new AnthropicAdapter(name, options, httpClients, time, loggers.CreateLogger<AnthropicAdapter>());
}

/// <summary>
/// Anthropic's Messages API (<c>POST /v1/messages</c>), text only and synchronous: the answer comes
/// back on the request, so there is no callback, poll or cancel. Translation and the error table
/// are in docs/providers/anthropic.md.
/// </summary>
public sealed class AnthropicAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<AnthropicAdapter> logger)
    : SyncProviderAdapter(name, options, httpClients, time, logger)
{
    public const string DefaultBaseUrl = "https://api.anthropic.com";
    public const string ApiVersion = "2023-06-01";

    /// <summary>provider_options may add or replace any member except these: the route decides the model, and streaming is not spoken here.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "model", "stream" };

    private readonly Uri _endpoint = new((options.BaseUrl is { Length: > 0 } b ? b : DefaultBaseUrl).TrimEnd('/') + "/v1/messages");

    protected override string NoPollMessage => "Anthropic answers synchronously; there is no job to poll.";

    protected override string NoCallbackMessage => "Anthropic does not call back.";

    protected override SyncRequest Prepare(ProviderCall call, JsonElement input)
    {
        if (call.Model.Modality != Modality.Text)
        {
            return SyncRequest.Refuse(Fail(ExecutionErrorCodes.InvalidInput, $"The Anthropic adapter speaks text only, not {call.Model.Modality}."));
        }

        var (body, problem) = BuildPayload(input, call.Route.ProviderModel, call.Model.DefaultMaxOutputTokens);
        return problem is not null ? SyncRequest.Refuse(Fail(ExecutionErrorCodes.InvalidInput, problem)) : SyncRequest.Post(_endpoint, body!);
    }

    protected override void AddHeaders(HttpRequestHeaders headers)
    {
        headers.TryAddWithoutValidation("x-api-key", Options.ApiKey);
        headers.TryAddWithoutValidation("anthropic-version", ApiVersion);
    }

    protected override ProviderOutcome.Failed MapError(int status, string body, HttpResponseHeaders headers, DateTimeOffset now) =>
        AnthropicErrors.Map(Name, status, body, headers, Options.ApiKey, now);

    protected override ProviderOutcome ReadAnswer(ProviderCall call, JsonElement input, string body) => ReadResponse(Name, body);

    /// <summary>The canonical text input as a Messages API body, or why it cannot be one.</summary>
    public static (JsonObject? Body, string? Problem) BuildPayload(JsonElement input, string providerModel, int defaultMaxTokens)
    {
        var (system, turns) = CanonicalJson.Conversation(input);
        var messages = new JsonArray();
        foreach (var (role, content) in turns)
        {
            // Anthropic has no tool role without tool_use ids; a canonical tool message travels as user text.
            messages.Add(new JsonObject
            {
                ["role"] = role == "assistant" ? "assistant" : "user",
                ["content"] = Content(content),
            });
        }

        if (messages.Count == 0)
        {
            return (null, "Anthropic needs at least one user or assistant message besides the system prompt.");
        }

        var body = new JsonObject
        {
            ["model"] = providerModel,
            ["max_tokens"] = input.TryGetProperty("max_tokens", out var max) && max.ValueKind == JsonValueKind.Number ? max.GetInt32() : defaultMaxTokens,
        };
        if (system.Count > 0)
        {
            body["system"] = string.Join("\n\n", system);
        }

        body["messages"] = messages;
        CanonicalJson.CopyNumber(input, "temperature", body, "temperature");
        CanonicalJson.CopyNumber(input, "top_p", body, "top_p");
        if (CanonicalJson.StopSequences(input) is { } stop)
        {
            body["stop_sequences"] = stop;
        }

        foreach (var option in CanonicalJson.ProviderOptions(input).Where(o => !Reserved.Contains(o.Name)))
        {
            body[option.Name] = JsonNode.Parse(option.Value.GetRawText());
        }

        return (body, null);
    }

    /// <summary>A Messages API answer as the canonical text output and usage.</summary>
    public static ProviderOutcome ReadResponse(string provider, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.Array
                || !root.TryGetProperty("usage", out var usage) || usage.ValueKind != JsonValueKind.Object
                || CanonicalJson.Long(usage, "input_tokens") is not { } inputTokens || CanonicalJson.Long(usage, "output_tokens") is not { } outputTokens)
            {
                return Malformed(provider, "no content or usage");
            }

            var stopReason = root.TryGetProperty("stop_reason", out var sr) && sr.ValueKind == JsonValueKind.String ? sr.GetString() : null;
            if (stopReason == "refusal")
            {
                return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, "Anthropic refused the request (stop_reason refusal).", false, provider, 200));
            }

            var (reply, toolCalls) = ReadBlocks(content);
            var finish = stopReason switch
            {
                "max_tokens" or "model_context_window_exceeded" => "length",
                "tool_use" => "tool_calls",
                _ => "stop", // end_turn, stop_sequence, pause_turn
            };
            var normalized = new Usage(
                InputTokens: inputTokens + (CanonicalJson.Long(usage, "cache_creation_input_tokens") ?? 0),
                OutputTokens: outputTokens,
                CachedInputTokens: CanonicalJson.Long(usage, "cache_read_input_tokens") ?? 0);
            return new ProviderOutcome.Completed(CanonicalJson.TextOutput(reply, finish, toolCalls), normalized, []);
        }
        catch (JsonException)
        {
            return Malformed(provider, "not JSON");
        }
    }

    /// <summary>The text blocks joined, and the tool_use blocks as canonical tool calls.</summary>
    private static (string Reply, List<Dictionary<string, object?>> ToolCalls) ReadBlocks(JsonElement content)
    {
        var reply = new StringBuilder();
        var toolCalls = new List<Dictionary<string, object?>>();
        foreach (var block in content.EnumerateArray())
        {
            var type = block.ValueKind == JsonValueKind.Object && block.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type == "text" && block.TryGetProperty("text", out var blockText) && blockText.ValueKind == JsonValueKind.String)
            {
                reply.Append(blockText.GetString());
            }
            else if (type == "tool_use")
            {
                toolCalls.Add(CanonicalJson.ToolCall(block, "input"));
            }
        }

        return (reply.ToString(), toolCalls);
    }

    private static ProviderOutcome.Failed Malformed(string provider, string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"Anthropic answered 200 with a malformed message ({what}).", false, provider, 200));

    private static JsonNode Content(JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return JsonValue.Create(content.GetString())!;
        }

        var blocks = new JsonArray();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var type) && type.GetString() == "text")
            {
                blocks.Add(new JsonObject { ["type"] = "text", ["text"] = part.TryGetProperty("text", out var t) ? t.GetString() : "" });
            }
            else
            {
                blocks.Add(JsonNode.Parse(part.GetRawText())); // Anthropic's own blocks (images, say) go through as they are.
            }
        }

        return blocks;
    }
}
