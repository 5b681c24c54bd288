using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.OpenAI;

public sealed class OpenAIAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.OpenAI;

    public IReadOnlySet<Modality> Modalities { get; } = new HashSet<Modality> { Modality.Text, Modality.Image, Modality.Embedding };

    public IProviderAdapter Create(string name, ProviderOptions options)
    {
        var client = httpClients.CreateClient($"provider:{name}");

        // The dispatcher's token carries the deadline (the provider's Timeout or the execution's, whichever
        // is sooner); HttpClient's own 100 s default would cut long generations short.
        client.Timeout = Timeout.InfiniteTimeSpan;
        return new OpenAIAdapter(name, options, client, time, loggers.CreateLogger<OpenAIAdapter>());
    }
}

/// <summary>
/// OpenAI's REST API (and every server that speaks it: vLLM, Ollama, Together, Groq, …): chat
/// completions for text, image generations, embeddings. Synchronous: every answer is final, so
/// there is nothing to poll, cancel or call back. Translation and error table: docs/providers/openai.md.
/// </summary>
public sealed partial class OpenAIAdapter(string name, ProviderOptions options, HttpClient http, TimeProvider time, ILogger<OpenAIAdapter> logger) : IProviderAdapter
{
    public const string DefaultBaseUrl = "https://api.openai.com/v1";

    /// <summary>Canonical parameters a text input may carry that mean the same thing to OpenAI.</summary>
    private static readonly string[] TextParameters = ["max_tokens", "temperature", "top_p", "stop"];

    /// <summary>Payload members <c>provider_options</c> may not replace: the route decides the model, and a stream could not be read.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "model", "stream" };

    private readonly string _baseUrl = (string.IsNullOrWhiteSpace(options.BaseUrl) ? DefaultBaseUrl : options.BaseUrl).TrimEnd('/');

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var input = doc.RootElement;
        return call.Model.Modality switch
        {
            Modality.Text => await ChatAsync(call, input, cancellationToken),
            Modality.Image => await ImagesAsync(call, input, cancellationToken),
            Modality.Embedding => await EmbeddingsAsync(call, input, cancellationToken),
            _ => new ProviderOutcome.Failed(new ExecutionError(
                ExecutionErrorCodes.InvalidInput, $"The openai provider does not serve {call.Model.Modality.ToString().ToLowerInvariant()} models.", false, name)),
        };
    }

    /// <summary>Never: the answer is the reply to the call.</summary>
    public bool MayCallBack(ProviderCall call) => false;

    /// <summary>Nothing is ever accepted for later, so there is nothing to poll.</summary>
    public Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken) =>
        Task.FromResult<ProviderOutcome>(new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "The openai provider has no jobs to poll.", false, name)));

    /// <summary>A synchronous call is cancelled by cancelling its request (the dispatcher's token).</summary>
    public Task CancelAsync(ProviderCall call, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>OpenAI never calls back, so no callback can be genuine.</summary>
    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => false;

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback) =>
        new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "The openai provider does not call back.", false, name));

    private async Task<ProviderOutcome> ChatAsync(ProviderCall call, JsonElement input, CancellationToken cancellationToken)
    {
        var payload = new JsonObject { ["model"] = call.Route.ProviderModel };
        var messages = (JsonArray)JsonNode.Parse(input.GetProperty("messages").GetRawText())!;
        if (input.TryGetProperty("system", out var system) && system.ValueKind == JsonValueKind.String)
        {
            // A canonical top-level system prompt is, in OpenAI's terms, the first message.
            messages.Insert(0, new JsonObject { ["role"] = "system", ["content"] = system.GetString() });
        }

        payload["messages"] = messages;
        foreach (var parameter in TextParameters)
        {
            if (input.TryGetProperty(parameter, out var value) && value.ValueKind != JsonValueKind.Null)
            {
                payload[parameter] = JsonNode.Parse(value.GetRawText());
            }
        }

        MergeProviderOptions(payload, input);
        var (answer, failure) = await PostAsync(call, "/chat/completions", payload, cancellationToken);
        if (failure is not null)
        {
            return failure;
        }

        using (answer)
        {
            var root = answer!.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0
                || choices[0].ValueKind != JsonValueKind.Object
                || !choices[0].TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.Object)
            {
                return OpenAIErrors.Malformed(name, "a chat completion needs choices[0].message");
            }

            var choice = choices[0];
            var finish = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            var content = message.TryGetProperty("content", out var c) ? c : default;
            if (content.ValueKind is not (JsonValueKind.String or JsonValueKind.Null or JsonValueKind.Undefined))
            {
                return OpenAIErrors.Malformed(name, "choices[0].message.content is neither text nor null");
            }

            if (content.ValueKind != JsonValueKind.String && finish == "content_filter")
            {
                return new ProviderOutcome.Failed(new ExecutionError(
                    ExecutionErrorCodes.ContentPolicyViolation, "The provider's content filter withheld the reply.", false, name, 200));
            }

            var output = new JsonObject
            {
                ["text"] = content.ValueKind == JsonValueKind.String ? content.GetString() : null,
                ["finish_reason"] = finish,
            };
            if (message.TryGetProperty("tool_calls", out var toolCalls) && toolCalls.ValueKind == JsonValueKind.Array)
            {
                output["tool_calls"] = JsonNode.Parse(toolCalls.GetRawText());
            }

            if (message.TryGetProperty("refusal", out var refusal) && refusal.ValueKind == JsonValueKind.String)
            {
                output["refusal"] = refusal.GetString();
            }

            var usage = ChatUsage(root, input, content);
            return new ProviderOutcome.Completed(output.ToJsonString(), usage, []);
        }
    }

    private async Task<ProviderOutcome> ImagesAsync(ProviderCall call, JsonElement input, CancellationToken cancellationToken)
    {
        var payload = new JsonObject
        {
            ["model"] = call.Route.ProviderModel,
            ["prompt"] = input.GetProperty("prompt").GetString(),
            ["n"] = input.TryGetProperty("n", out var n) && n.TryGetInt32(out var count) ? count : 1,
        };
        if (input.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.String)
        {
            payload["size"] = size.GetString();
        }

        // Bytes in the answer need no second fetch from a URL that expires. gpt-image-1 refuses the
        // parameter (it always answers b64_json): provider_options {"response_format": null} drops it.
        payload["response_format"] = "b64_json";
        MergeProviderOptions(payload, input);
        var (answer, failure) = await PostAsync(call, "/images/generations", payload, cancellationToken);
        if (failure is not null)
        {
            return failure;
        }

        using (answer)
        {
            var root = answer!.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0)
            {
                return OpenAIErrors.Malformed(name, "an image generation needs a non-empty data array");
            }

            var artifacts = new List<ArtifactContent>();
            var images = new JsonArray();
            var i = 0;
            foreach (var item in data.EnumerateArray())
            {
                var artifact = $"image-{i}.png";
                if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("b64_json", out var b64) && b64.ValueKind == JsonValueKind.String)
                {
                    byte[] bytes;
                    try
                    {
                        bytes = Convert.FromBase64String(b64.GetString()!);
                    }
                    catch (FormatException)
                    {
                        return OpenAIErrors.Malformed(name, $"data[{i}].b64_json is not base64");
                    }

                    var (type, extension) = Sniff(bytes);
                    artifact = $"image-{i}.{extension}";
                    artifacts.Add(new ArtifactContent(artifact, type, bytes));
                }
                else if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("url", out var url) && url.ValueKind == JsonValueKind.String
                    && Uri.TryCreate(url.GetString(), UriKind.Absolute, out var source) && source.Scheme is "https" or "http")
                {
                    // The gateway copies it into its store before completing: provider URLs expire within the hour.
                    artifacts.Add(new ArtifactContent(artifact, null, null, source));
                }
                else
                {
                    return OpenAIErrors.Malformed(name, $"data[{i}] has neither b64_json nor an http(s) url");
                }

                var image = new JsonObject { ["artifact"] = artifact, ["url"] = $"/v1/executions/{call.Execution.Id}/artifacts/{artifact}" };
                if (item.TryGetProperty("revised_prompt", out var revised) && revised.ValueKind == JsonValueKind.String)
                {
                    image["revised_prompt"] = revised.GetString();
                }

                images.Add(image);
                i++;
            }

            var output = new JsonObject { ["images"] = images };
            return new ProviderOutcome.Completed(output.ToJsonString(), new Usage(Images: artifacts.Count), artifacts);
        }
    }

    private async Task<ProviderOutcome> EmbeddingsAsync(ProviderCall call, JsonElement input, CancellationToken cancellationToken)
    {
        var payload = new JsonObject
        {
            ["model"] = call.Route.ProviderModel,
            ["input"] = JsonNode.Parse(input.GetProperty("input").GetRawText()),
        };
        MergeProviderOptions(payload, input);
        var (answer, failure) = await PostAsync(call, "/embeddings", payload, cancellationToken);
        if (failure is not null)
        {
            return failure;
        }

        using (answer)
        {
            var root = answer!.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0)
            {
                return OpenAIErrors.Malformed(name, "an embedding answer needs a non-empty data array");
            }

            var vectors = new SortedDictionary<int, JsonNode>();
            var position = 0;
            foreach (var item in data.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("embedding", out var embedding))
                {
                    return OpenAIErrors.Malformed(name, $"data[{position}] has no embedding");
                }

                var index = item.TryGetProperty("index", out var ix) && ix.TryGetInt32(out var v) ? v : position;
                var vector = Vector(embedding);
                if (vector is null || !vectors.TryAdd(index, vector))
                {
                    return OpenAIErrors.Malformed(name, $"data[{position}].embedding is not a vector, or its index repeats");
                }

                position++;
            }

            var output = new JsonObject { ["embeddings"] = new JsonArray([.. vectors.Values]) };
            var tokens = Long(root, "usage", "prompt_tokens")
                ?? CostEstimator.TokensFor(input.GetProperty("input").ValueKind == JsonValueKind.String ? input.GetProperty("input").GetString()!.Length : input.GetProperty("input").GetRawText().Length);
            return new ProviderOutcome.Completed(output.ToJsonString(), new Usage(InputTokens: tokens), []);
        }
    }

    /// <summary>
    /// POSTs the payload; returns the parsed 2xx body, or the normalized failure. Connection failures
    /// (<see cref="HttpRequestException"/>) and cancellation propagate: the dispatcher maps them.
    /// </summary>
    private async Task<(JsonDocument? Answer, ProviderOutcome.Failed? Failure)> PostAsync(ProviderCall call, string path, JsonObject payload, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, _baseUrl + path)
        {
            Content = new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        var status = (int)response.StatusCode;
        if (status is < 200 or > 299)
        {
            var failure = OpenAIErrors.Map(name, status, body, response.Headers, time.GetUtcNow(), options.ApiKey);
            LogFailed(logger, call.Execution.Id, name, status, failure.Error.Code);
            return (null, failure);
        }

        try
        {
            return (JsonDocument.Parse(body), null);
        }
        catch (JsonException)
        {
            LogFailed(logger, call.Execution.Id, name, status, ExecutionErrorCodes.ProviderError);
            return (null, OpenAIErrors.Malformed(name, "the body is not JSON"));
        }
    }

    /// <summary>
    /// <c>provider_options</c> go into the payload as given, replacing canonical parameters of the same
    /// name; a null removes one (e.g. <c>max_tokens</c> for models that only take <c>max_completion_tokens</c>).
    /// </summary>
    private static void MergeProviderOptions(JsonObject payload, JsonElement input)
    {
        if (!input.TryGetProperty("provider_options", out var providerOptions) || providerOptions.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (var option in providerOptions.EnumerateObject())
        {
            if (Reserved.Contains(option.Name))
            {
                continue;
            }

            if (option.Value.ValueKind == JsonValueKind.Null)
            {
                payload.Remove(option.Name);
            }
            else
            {
                payload[option.Name] = JsonNode.Parse(option.Value.GetRawText());
            }
        }
    }

    /// <summary>
    /// OpenAI counts cached prompt tokens inside <c>prompt_tokens</c>; the gateway's usage keeps them
    /// apart so that they are billed at the cached price. Servers that report no usage are estimated.
    /// </summary>
    private static Usage ChatUsage(JsonElement root, JsonElement input, JsonElement content)
    {
        var prompt = Long(root, "usage", "prompt_tokens");
        var completion = Long(root, "usage", "completion_tokens");
        var cached = root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object
            ? Long(usage, "prompt_tokens_details", "cached_tokens") ?? 0
            : 0;
        prompt ??= CostEstimator.TokensFor(CostEstimator.CountMessageCharacters(input));
        completion ??= CostEstimator.TokensFor(content.ValueKind == JsonValueKind.String ? content.GetString()!.Length : 0);
        cached = Math.Clamp(cached, 0, prompt.Value);
        return new Usage(InputTokens: prompt.Value - cached, OutputTokens: completion.Value, CachedInputTokens: cached);
    }

    private static long? Long(JsonElement e, string parent, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(parent, out var p) && p.ValueKind == JsonValueKind.Object
            && p.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) && l >= 0
            ? l
            : null;

    /// <summary>An embedding as numbers: a JSON array as given, or <c>encoding_format: base64</c>'s little-endian float32s.</summary>
    private static JsonNode? Vector(JsonElement embedding)
    {
        if (embedding.ValueKind == JsonValueKind.Array && embedding.EnumerateArray().All(x => x.ValueKind == JsonValueKind.Number))
        {
            return JsonNode.Parse(embedding.GetRawText());
        }

        if (embedding.ValueKind == JsonValueKind.String)
        {
            try
            {
                var bytes = Convert.FromBase64String(embedding.GetString()!);
                if (bytes.Length % 4 != 0)
                {
                    return null;
                }

                var vector = new JsonArray();
                for (var i = 0; i < bytes.Length; i += 4)
                {
                    vector.Add(JsonValue.Create(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i))));
                }

                return vector;
            }
            catch (FormatException)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>gpt-image-1 may answer JPEG or WebP when asked (<c>output_format</c>); the bytes say which.</summary>
    private static (string ContentType, string Extension) Sniff(byte[] bytes) =>
        bytes switch
        {
            [0xFF, 0xD8, 0xFF, ..] => ("image/jpeg", "jpg"),
            [0x52, 0x49, 0x46, 0x46, _, _, _, _, 0x57, 0x45, 0x42, 0x50, ..] => ("image/webp", "webp"),
            _ => ("image/png", "png"),
        };

    [LoggerMessage(Level = LogLevel.Information, Message = "Provider {Provider} answered {StatusCode} for {ExecutionId}: {Code}")]
    private static partial void LogFailed(ILogger logger, string executionId, string provider, int statusCode, string code);
}
