using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.OpenAI;

public sealed class OpenAIAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.OpenAI;

    public IReadOnlySet<Modality> Modalities { get; } = new HashSet<Modality> { Modality.Text, Modality.Image, Modality.Embedding };

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new OpenAIAdapter(name, options, httpClients, time, loggers.CreateLogger<OpenAIAdapter>());
}

/// <summary>
/// OpenAI's REST API (and every server that speaks it: vLLM, Ollama, Together, Groq, …): chat
/// completions for text, image generations, embeddings. Synchronous: every answer is final, so
/// there is nothing to poll, cancel or call back. Translation and error table: docs/providers/openai.md.
/// </summary>
public sealed class OpenAIAdapter(string name, ProviderOptions options, IHttpClientFactory httpClients, TimeProvider time, ILogger<OpenAIAdapter> logger)
    : SyncProviderAdapter(name, options, httpClients, time, logger)
{
    public const string DefaultBaseUrl = "https://api.openai.com/v1";

    /// <summary>Canonical parameters a text input may carry that mean the same thing to OpenAI.</summary>
    private static readonly string[] TextParameters = ["max_tokens", "temperature", "top_p", "stop"];

    /// <summary>Payload members <c>provider_options</c> may not replace: the route decides the model, and a stream could not be read.</summary>
    private static readonly HashSet<string> Reserved = new(StringComparer.Ordinal) { "model", "stream" };

    private readonly string _baseUrl = (string.IsNullOrWhiteSpace(options.BaseUrl) ? DefaultBaseUrl : options.BaseUrl).TrimEnd('/');

    protected override string NoPollMessage => "The openai provider has no jobs to poll.";

    protected override string NoCallbackMessage => "The openai provider does not call back.";

    protected override SyncRequest Prepare(ProviderCall call, JsonElement input)
    {
        var (path, payload) = call.Model.Modality switch
        {
            Modality.Text => ("/chat/completions", ChatPayload(call, input)),
            Modality.Image => ("/images/generations", ImagePayload(call, input)),
            Modality.Embedding => ("/embeddings", EmbeddingPayload(call, input)),
            _ => ("", (JsonObject?)null),
        };
        if (payload is null)
        {
            return SyncRequest.Refuse(Fail(
                ExecutionErrorCodes.InvalidInput, $"The openai provider does not serve {call.Model.Modality.ToString().ToLowerInvariant()} models."));
        }

        MergeProviderOptions(payload, input);
        return SyncRequest.Post(new Uri(_baseUrl + path), payload);
    }

    protected override void AddHeaders(HttpRequestHeaders headers)
    {
        headers.Authorization = new AuthenticationHeaderValue("Bearer", Options.ApiKey);
        headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
    }

    protected override ProviderOutcome.Failed MapError(int status, string body, HttpResponseHeaders headers, DateTimeOffset now) =>
        OpenAIErrors.Map(Name, status, body, headers, now, Options.ApiKey);

    protected override ProviderOutcome ReadAnswer(ProviderCall call, JsonElement input, string body)
    {
        JsonDocument answer;
        try
        {
            answer = JsonDocument.Parse(body);
        }
        catch (JsonException)
        {
            LogFailure(call, 200, ExecutionErrorCodes.ProviderError);
            return OpenAIErrors.Malformed(Name, "the body is not JSON");
        }

        using (answer)
        {
            return call.Model.Modality switch
            {
                Modality.Text => ReadChat(answer.RootElement, input),
                Modality.Image => ReadImages(call, answer.RootElement),
                _ => ReadEmbeddings(answer.RootElement, input),
            };
        }
    }

    private static JsonObject ChatPayload(ProviderCall call, JsonElement input)
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

        return payload;
    }

    private static JsonObject ImagePayload(ProviderCall call, JsonElement input)
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
        return payload;
    }

    private static JsonObject EmbeddingPayload(ProviderCall call, JsonElement input) => new()
    {
        ["model"] = call.Route.ProviderModel,
        ["input"] = JsonNode.Parse(input.GetProperty("input").GetRawText()),
    };

    private ProviderOutcome ReadChat(JsonElement root, JsonElement input)
    {
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("choices", out var choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0
            || choices[0].ValueKind != JsonValueKind.Object
            || !choices[0].TryGetProperty("message", out var message) || message.ValueKind != JsonValueKind.Object)
        {
            return OpenAIErrors.Malformed(Name, "a chat completion needs choices[0].message");
        }

        var choice = choices[0];
        var finish = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
        var content = message.TryGetProperty("content", out var c) ? c : default;
        if (content.ValueKind is not (JsonValueKind.String or JsonValueKind.Null or JsonValueKind.Undefined))
        {
            return OpenAIErrors.Malformed(Name, "choices[0].message.content is neither text nor null");
        }

        if (content.ValueKind != JsonValueKind.String && finish == "content_filter")
        {
            return new ProviderOutcome.Failed(new ExecutionError(
                ExecutionErrorCodes.ContentPolicyViolation, "The provider's content filter withheld the reply.", false, Name, 200));
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

        return new ProviderOutcome.Completed(output.ToJsonString(), ChatUsage(root, input, content), []);
    }

    private ProviderOutcome ReadImages(ProviderCall call, JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0)
        {
            return OpenAIErrors.Malformed(Name, "an image generation needs a non-empty data array");
        }

        var artifacts = new List<ArtifactContent>();
        var images = new JsonArray();
        var i = 0;
        foreach (var item in data.EnumerateArray())
        {
            if (ReadImage(item, i) is not { } artifact)
            {
                return OpenAIErrors.Malformed(Name, item.ValueKind == JsonValueKind.Object && item.TryGetProperty("b64_json", out var b) && b.ValueKind == JsonValueKind.String
                    ? $"data[{i}].b64_json is not base64"
                    : $"data[{i}] has neither b64_json nor an http(s) url");
            }

            artifacts.Add(artifact);
            var image = new JsonObject { ["artifact"] = artifact.Name, ["url"] = $"/v1/executions/{call.Execution.Id}/artifacts/{artifact.Name}" };
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

    /// <summary>Image <paramref name="i"/> as an artifact: its base64 bytes, or the http(s) URL to copy; null when it is neither.</summary>
    private static ArtifactContent? ReadImage(JsonElement item, int i)
    {
        if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("b64_json", out var b64) && b64.ValueKind == JsonValueKind.String)
        {
            byte[] bytes;
            try
            {
                bytes = Convert.FromBase64String(b64.GetString()!);
            }
            catch (FormatException)
            {
                return null;
            }

            var (type, extension) = Sniff(bytes);
            return new ArtifactContent($"image-{i}.{extension}", type, bytes);
        }

        // The gateway copies a URL into its store before completing: provider URLs expire within the hour.
        return item.ValueKind == JsonValueKind.Object && item.TryGetProperty("url", out var url) && url.ValueKind == JsonValueKind.String
            && Uri.TryCreate(url.GetString(), UriKind.Absolute, out var source) && source.Scheme is "https" or "http"
            ? new ArtifactContent($"image-{i}.png", null, null, source)
            : null;
    }

    private ProviderOutcome ReadEmbeddings(JsonElement root, JsonElement input)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array || data.GetArrayLength() == 0)
        {
            return OpenAIErrors.Malformed(Name, "an embedding answer needs a non-empty data array");
        }

        var vectors = new SortedDictionary<int, JsonNode>();
        var position = 0;
        foreach (var item in data.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("embedding", out var embedding))
            {
                return OpenAIErrors.Malformed(Name, $"data[{position}] has no embedding");
            }

            var index = item.TryGetProperty("index", out var ix) && ix.TryGetInt32(out var v) ? v : position;
            var vector = Vector(embedding);
            if (vector is null || !vectors.TryAdd(index, vector))
            {
                return OpenAIErrors.Malformed(Name, $"data[{position}].embedding is not a vector, or its index repeats");
            }

            position++;
        }

        var output = new JsonObject { ["embeddings"] = new JsonArray([.. vectors.Values]) };
        var tokens = Long(root, "usage", "prompt_tokens")
            ?? CostEstimator.TokensFor(input.GetProperty("input").ValueKind == JsonValueKind.String ? input.GetProperty("input").GetString()!.Length : input.GetProperty("input").GetRawText().Length);
        return new ProviderOutcome.Completed(output.ToJsonString(), new Usage(InputTokens: tokens), []);
    }

    /// <summary>
    /// <c>provider_options</c> go into the payload as given, replacing canonical parameters of the same
    /// name; a null removes one (e.g. <c>max_tokens</c> for models that only take <c>max_completion_tokens</c>).
    /// </summary>
    private static void MergeProviderOptions(JsonObject payload, JsonElement input)
    {
        foreach (var option in CanonicalJson.ProviderOptions(input).Where(o => !Reserved.Contains(o.Name)))
        {
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
}
