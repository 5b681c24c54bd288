using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
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
public sealed partial class AnthropicAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<AnthropicAdapter> logger) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://api.anthropic.com";
    public const string ApiVersion = "2023-06-01";

    /// <summary>provider_options may add or replace any member except these: the route decides the model, and streaming is not spoken here.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "model", "stream" };

    private readonly Uri _endpoint = new((options.BaseUrl is { Length: > 0 } b ? b : DefaultBaseUrl).TrimEnd('/') + "/v1/messages");

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        if (call.Model.Modality != Modality.Text)
        {
            return Fail(ExecutionErrorCodes.InvalidInput, $"The Anthropic adapter speaks text only, not {call.Model.Modality}.");
        }

        JsonObject payload;
        using (var input = JsonDocument.Parse(call.Execution.Input))
        {
            var (body, problem) = BuildPayload(input.RootElement, call.Route.ProviderModel, call.Model.DefaultMaxOutputTokens);
            if (problem is not null)
            {
                return Fail(ExecutionErrorCodes.InvalidInput, problem);
            }

            payload = body!;
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint)
        {
            Content = new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("x-api-key", options.ApiKey);
        request.Headers.TryAddWithoutValidation("anthropic-version", ApiVersion);

        var client = httpClients.CreateClient($"provider:{name}");
        client.Timeout = Timeout.InfiniteTimeSpan; // The dispatcher's token carries the deadline.
        using var response = await client.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var status = (int)response.StatusCode;
        if (!response.IsSuccessStatusCode)
        {
            var failed = AnthropicErrors.Map(name, status, text, response.Headers, options.ApiKey, time.GetUtcNow());
            LogFailed(logger, call.Execution.Id, status, failed.Error.Code);
            return failed;
        }

        return ReadResponse(name, text);
    }

    /// <summary>Never: the answer is the reply to the call.</summary>
    public bool MayCallBack(ProviderCall call) => false;

    public Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken) =>
        Task.FromResult<ProviderOutcome>(Fail(ExecutionErrorCodes.ProviderError, "Anthropic answers synchronously; there is no job to poll."));

    public Task CancelAsync(ProviderCall call, CancellationToken cancellationToken) => Task.CompletedTask;

    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => false;

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback) =>
        Fail(ExecutionErrorCodes.ProviderError, "Anthropic does not call back.");

    /// <summary>The canonical text input as a Messages API body, or why it cannot be one.</summary>
    public static (JsonObject? Body, string? Problem) BuildPayload(JsonElement input, string providerModel, int defaultMaxTokens)
    {
        var system = new List<string>();
        if (input.TryGetProperty("system", out var topSystem) && topSystem.ValueKind == JsonValueKind.String && topSystem.GetString() is { Length: > 0 } s)
        {
            system.Add(s);
        }

        var messages = new JsonArray();
        foreach (var message in input.GetProperty("messages").EnumerateArray())
        {
            var role = message.GetProperty("role").GetString();
            var content = message.GetProperty("content");
            if (role is "system" or "developer")
            {
                system.Add(CanonicalJson.TextOf(content));
                continue;
            }

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
        if (input.TryGetProperty("stop", out var stop))
        {
            if (stop.ValueKind == JsonValueKind.String)
            {
                body["stop_sequences"] = new JsonArray(stop.GetString());
            }
            else if (stop.ValueKind == JsonValueKind.Array)
            {
                body["stop_sequences"] = JsonNode.Parse(stop.GetRawText());
            }
        }

        if (input.TryGetProperty("provider_options", out var providerOptions) && providerOptions.ValueKind == JsonValueKind.Object)
        {
            foreach (var option in providerOptions.EnumerateObject().Where(o => !Reserved.Contains(o.Name)))
            {
                body[option.Name] = JsonNode.Parse(option.Value.GetRawText());
            }
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
                    toolCalls.Add(new()
                    {
                        ["id"] = block.TryGetProperty("id", out var id) ? id.GetString() : null,
                        ["name"] = block.TryGetProperty("name", out var n) ? n.GetString() : null,
                        ["arguments"] = block.TryGetProperty("input", out var args) ? args.Clone() : null,
                    });
                }
            }

            var finish = stopReason switch
            {
                "max_tokens" or "model_context_window_exceeded" => "length",
                "tool_use" => "tool_calls",
                _ => "stop", // end_turn, stop_sequence, pause_turn
            };
            var output = new Dictionary<string, object> { ["text"] = reply.ToString(), ["finish_reason"] = finish };
            if (toolCalls.Count > 0)
            {
                output["tool_calls"] = toolCalls;
            }

            var normalized = new Usage(
                InputTokens: inputTokens + (CanonicalJson.Long(usage, "cache_creation_input_tokens") ?? 0),
                OutputTokens: outputTokens,
                CachedInputTokens: CanonicalJson.Long(usage, "cache_read_input_tokens") ?? 0);
            return new ProviderOutcome.Completed(JsonSerializer.Serialize(output), normalized, []);
        }
        catch (JsonException)
        {
            return Malformed(provider, "not JSON");
        }
    }

    private static ProviderOutcome.Failed Malformed(string provider, string what) =>
        new(new ExecutionError(ExecutionErrorCodes.ProviderError, $"Anthropic answered 200 with a malformed message ({what}).", false, provider, 200));

    private ProviderOutcome.Failed Fail(string code, string message) => new(new ExecutionError(code, message, false, name));

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Anthropic answered {Status} for {ExecutionId} ({Code})")]
    private static partial void LogFailed(ILogger logger, string executionId, int status, string code);
}
