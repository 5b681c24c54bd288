using System.Buffers.Binary;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRoute.Server.Providers.Simulator;

namespace ModelRoute.Tests.Providers.OpenAI;

/// <summary>A scripted answer to one API request: a status, a body, extra headers.</summary>
public sealed record OpenAIFakeAnswer(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null);

/// <summary>
/// OpenAI's public REST protocol on a loopback port, faithful enough for the official SDK:
/// <c>POST /v1/chat/completions</c>, <c>/v1/images/generations</c>, <c>/v1/embeddings</c>, bearer
/// keys checked (401 with OpenAI's error JSON), every request recorded, and scriptable failures,
/// delays, malformed answers and image URLs served from the fake itself (<c>GET /files/{name}</c>)
/// that can be switched off, as OpenAI's expire.
/// </summary>
public sealed class OpenAIFake : IAsyncDisposable
{
    private readonly ConcurrentQueue<OpenAIFakeAnswer> _script = new();
    private readonly ConcurrentDictionary<string, byte[]> _files = new(StringComparer.Ordinal);
    private int _ids;

    private FakeProviderServer _server = null!;

    private OpenAIFake()
    {
    }

    /// <summary>The key a request must carry as <c>Authorization: Bearer …</c>.</summary>
    public string ApiKey { get; set; } = "sk-test-secret-123";

    /// <summary>http://127.0.0.1:port, no trailing slash.</summary>
    public string BaseUrl => _server.BaseUrl;

    /// <summary>What the gateway's (or an SDK's) base URL should be.</summary>
    public string V1 => BaseUrl + "/v1";

    /// <summary>Every API request (not file downloads), in order.</summary>
    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>File downloads (<c>GET /files/…</c>), in order.</summary>
    public ConcurrentQueue<string> Downloads { get; } = new();

    /// <summary>Waited before every API answer (the client's cancellation ends the wait).</summary>
    public TimeSpan Delay { get; set; }

    public string ChatReply { get; set; } = "Hello from the fake.";

    /// <summary>Overrides the computed usage: prompt (cached included, as OpenAI counts), completion, cached.</summary>
    public (int Prompt, int Completion, int Cached)? ChatUsage { get; set; }

    /// <summary>Answer <c>finish_reason: content_filter</c> with null content, as Azure-style filters do.</summary>
    public bool FilterContent { get; set; }

    /// <summary>Images are answered as URLs on the fake (as <c>response_format: url</c> is) even when b64_json is asked.</summary>
    public bool ServeImageUrls { get; set; }

    /// <summary>When false, <c>GET /files/…</c> answers 404, as an expired provider URL does.</summary>
    public bool FilesAvailable { get; set; } = true;

    /// <summary>The next this many file downloads fail: 503, or a dropped connection when <see cref="DropFailedDownloads"/>.</summary>
    public int FailDownloads { get; set; }

    public bool DropFailedDownloads { get; set; }

    /// <summary>File downloads answer this redirect (status, Location) instead of the file.</summary>
    public (int Status, string Location)? RedirectDownloads { get; set; }

    /// <summary>Embeddings are listed last index first (still each with its index), to test reordering.</summary>
    public bool ReverseEmbeddings { get; set; }

    /// <summary>Models the fake does not have: 404 <c>model_not_found</c>.</summary>
    public HashSet<string> UnknownModels { get; } = new(StringComparer.Ordinal);

    public static async Task<OpenAIFake> StartAsync()
    {
        var fake = new OpenAIFake();
        fake._server = await FakeProviderServer.StartAsync(fake.HandleAsync);
        return fake;
    }

    /// <summary>OpenAI's error body.</summary>
    public static string ErrorJson(string message, string type, string? code = null, string? param = null) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } }.ToJsonString();

    /// <summary>The next <paramref name="times"/> API requests (after the key check) get this answer.</summary>
    public void FailNext(int times, int status, string body, IReadOnlyDictionary<string, string>? headers = null)
    {
        for (var i = 0; i < times; i++)
        {
            _script.Enqueue(new OpenAIFakeAnswer(status, body, headers));
        }
    }

    /// <summary>The next API request gets exactly this answer (e.g. a malformed 200).</summary>
    public void AnswerNext(OpenAIFakeAnswer answer) => _script.Enqueue(answer);

    /// <summary>Forgets recorded requests and pending scripts and restores the defaults.</summary>
    public void Reset()
    {
        Requests.Clear();
        Downloads.Clear();
        _script.Clear();
        Delay = TimeSpan.Zero;
        ChatReply = "Hello from the fake.";
        ChatUsage = null;
        FilterContent = false;
        ServeImageUrls = false;
        FilesAvailable = true;
        FailDownloads = 0;
        DropFailedDownloads = false;
        RedirectDownloads = null;
        ReverseEmbeddings = false;
        UnknownModels.Clear();
        ApiKey = "sk-test-secret-123";
    }

    /// <summary>The PNG the fake makes for image <paramref name="index"/> of a prompt: valid, and different for each.</summary>
    public static byte[] Png(string prompt, int index)
    {
        var colour = SHA256.HashData(Encoding.UTF8.GetBytes($"{prompt}/{index}"));
        const int Size = 4;
        var raw = new byte[Size * ((Size * 3) + 1)];
        for (var y = 0; y < Size; y++)
        {
            for (var x = 0; x < Size; x++)
            {
                colour.AsSpan(0, 3).CopyTo(raw.AsSpan((y * ((Size * 3) + 1)) + 1 + (x * 3)));
            }
        }

        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, Size);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), Size);
        header[8] = 8;
        header[9] = 2;
        Chunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                z.Write(raw);
            }

            Chunk(png, "IDAT", compressed.ToArray());
        }

        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    /// <summary>The vector the fake gives a text: deterministic, <paramref name="dimensions"/> long.</summary>
    public static float[] Vector(string text, int dimensions = 8)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        return [.. Enumerable.Range(0, dimensions).Select(i => (float)Math.Round((hash[i % hash.Length] / 127.5) - 1, 4))];
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        if (HttpMethods.IsGet(context.Request.Method) && path.StartsWith("/files/", StringComparison.Ordinal))
        {
            await DownloadAsync(context, path);
            return;
        }

        var request = await FakeProviderServer.ReadAsync(context);
        Requests.Enqueue(request);
        context.Response.Headers["x-request-id"] = $"req_{Interlocked.Increment(ref _ids):D8}";
        context.Response.Headers["openai-processing-ms"] = "7";
        if (Delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(Delay, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var answer = Answer(request);
        await FakeProviderServer.WriteAsync(context, answer.Status, answer.Body, headers: answer.Headers);
    }

    /// <summary>An image URL the fake handed out: redirected, failing, expired or served, as the test scripts it.</summary>
    private async Task DownloadAsync(HttpContext context, string path)
    {
        Downloads.Enqueue(path);
        if (RedirectDownloads is { } redirect)
        {
            context.Response.StatusCode = redirect.Status;
            context.Response.Headers.Location = redirect.Location;
            return;
        }

        lock (_script)
        {
            if (FailDownloads > 0)
            {
                FailDownloads--;
                if (DropFailedDownloads)
                {
                    context.Abort();
                    return;
                }

                context.Response.StatusCode = 503;
                return;
            }
        }

        if (FilesAvailable && _files.TryGetValue(path["/files/".Length..], out var file))
        {
            context.Response.ContentType = "image/png";
            await context.Response.Body.WriteAsync(file);
        }
        else
        {
            // Azure blob storage (where OpenAI's image URLs point) answers an expired signature 403; 404 is as good here.
            context.Response.StatusCode = 404;
        }
    }

    private OpenAIFakeAnswer Answer(FakeRequest request)
    {
        // OpenAI checks the key before anything else, scripted trouble included.
        var auth = request.Authorization;
        if (auth is null || !auth.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return new(401, ErrorJson(
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error"));
        }

        var key = auth["Bearer ".Length..];
        if (key != ApiKey)
        {
            // OpenAI shows only the ends of a wrong key.
            var masked = key.Length > 8 ? $"{key[..3]}{new string('*', key.Length - 7)}{key[^4..]}" : "***";
            return new(401, ErrorJson($"Incorrect API key provided: {masked}. You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key"));
        }

        if (_script.TryDequeue(out var scripted))
        {
            return scripted;
        }

        if (request.Method != "POST")
        {
            return new(405, ErrorJson($"Invalid method for URL ({request.Method} {request.Path})", "invalid_request_error"));
        }

        JsonElement json;
        try
        {
            json = request.Json;
        }
        catch (JsonException)
        {
            return new(400, ErrorJson("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error"));
        }

        if (json.ValueKind != JsonValueKind.Object || !json.TryGetProperty("model", out var modelElement) || modelElement.ValueKind != JsonValueKind.String)
        {
            return new(400, ErrorJson("you must provide a model parameter", "invalid_request_error"));
        }

        var model = modelElement.GetString()!;
        if (UnknownModels.Contains(model))
        {
            return new(404, ErrorJson($"The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"));
        }

        return request.Path switch
        {
            "/v1/chat/completions" => Chat(json, model),
            "/v1/images/generations" => Images(json, model),
            "/v1/embeddings" => Embeddings(json, model),
            _ => new(404, ErrorJson($"Invalid URL (POST {request.Path})", "invalid_request_error")),
        };
    }

    private OpenAIFakeAnswer Chat(JsonElement json, string model)
    {
        if (!json.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
        {
            return new(400, ErrorJson("[] is too short - 'messages'", "invalid_request_error", null, "messages"));
        }

        var promptChars = messages.EnumerateArray().Sum(m => m.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()!.Length : 0);
        var reply = ChatReply;
        var finish = "stop";
        var maxTokens = json.TryGetProperty("max_tokens", out var mt) && mt.ValueKind == JsonValueKind.Number ? mt.GetInt32()
            : json.TryGetProperty("max_completion_tokens", out var mct) && mct.ValueKind == JsonValueKind.Number ? mct.GetInt32() : int.MaxValue;
        if ((reply.Length + 3) / 4 > maxTokens)
        {
            reply = reply[..Math.Min(reply.Length, maxTokens * 4)];
            finish = "length";
        }

        var (prompt, completion, cached) = ChatUsage ?? (4 + ((promptChars + 3) / 4), (reply.Length + 3) / 4, 0);
        var message = new JsonObject { ["role"] = "assistant", ["content"] = reply, ["refusal"] = null };
        if (FilterContent)
        {
            message["content"] = null;
            finish = "content_filter";
        }

        var answer = new JsonObject
        {
            ["id"] = $"chatcmpl-{Guid.NewGuid():N}",
            ["object"] = "chat.completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = message,
                ["logprobs"] = null,
                ["finish_reason"] = finish,
            }),
            ["usage"] = new JsonObject
            {
                ["prompt_tokens"] = prompt,
                ["completion_tokens"] = completion,
                ["total_tokens"] = prompt + completion,
                ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cached, ["audio_tokens"] = 0 },
                ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0, ["audio_tokens"] = 0 },
            },
            ["system_fingerprint"] = "fp_fake",
        };
        return new(200, answer.ToJsonString());
    }

    private OpenAIFakeAnswer Images(JsonElement json, string model)
    {
        if (!json.TryGetProperty("prompt", out var promptElement) || promptElement.ValueKind != JsonValueKind.String)
        {
            return new(400, ErrorJson("Missing required parameter: 'prompt'.", "invalid_request_error", "missing_required_parameter", "prompt"));
        }

        var prompt = promptElement.GetString()!;
        var n = json.TryGetProperty("n", out var nElement) && nElement.ValueKind == JsonValueKind.Number ? nElement.GetInt32() : 1;
        if (n is < 1 or > 10)
        {
            return new(400, ErrorJson($"{n} is greater than the maximum of 10 - 'n'", "invalid_request_error", "integer_above_max_value", "n"));
        }

        var format = json.TryGetProperty("response_format", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : "url";
        if (format is not ("url" or "b64_json"))
        {
            return new(400, ErrorJson($"'{format}' is not one of ['url', 'b64_json'] - 'response_format'", "invalid_request_error", null, "response_format"));
        }

        var data = new JsonArray();
        for (var i = 0; i < n; i++)
        {
            var png = Png(prompt, i);
            var item = new JsonObject { ["revised_prompt"] = prompt };
            if (format == "url" || ServeImageUrls)
            {
                var file = $"img-{Guid.NewGuid():N}.png";
                _files[file] = png;
                item["url"] = $"{BaseUrl}/files/{file}?st=2024-01-01&se=2024-01-01&sp=r&sig=fake";
            }
            else
            {
                item["b64_json"] = Convert.ToBase64String(png);
            }

            data.Add(item);
        }

        _ = model;
        return new(200, new JsonObject { ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["data"] = data }.ToJsonString());
    }

    private OpenAIFakeAnswer Embeddings(JsonElement json, string model)
    {
        if (!json.TryGetProperty("input", out var input))
        {
            return new(400, ErrorJson("'input' is a required property", "invalid_request_error", null, "input"));
        }

        var texts = input.ValueKind == JsonValueKind.String
            ? [input.GetString()!]
            : input.ValueKind == JsonValueKind.Array && input.EnumerateArray().All(x => x.ValueKind == JsonValueKind.String)
                ? input.EnumerateArray().Select(x => x.GetString()!).ToList()
                : null;
        if (texts is null || texts.Count == 0)
        {
            return new(400, ErrorJson("'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "invalid_request_error"));
        }

        var dimensions = json.TryGetProperty("dimensions", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetInt32() : 8;
        var base64 = json.TryGetProperty("encoding_format", out var e) && e.ValueKind == JsonValueKind.String && e.GetString() == "base64";
        var items = new List<JsonObject>();
        for (var i = 0; i < texts.Count; i++)
        {
            var vector = Vector(texts[i], dimensions);
            JsonNode embedding;
            if (base64)
            {
                var bytes = new byte[vector.Length * 4];
                for (var j = 0; j < vector.Length; j++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(j * 4), vector[j]);
                }

                embedding = JsonValue.Create(Convert.ToBase64String(bytes));
            }
            else
            {
                embedding = new JsonArray([.. vector.Select(v => (JsonNode)JsonValue.Create(v))]);
            }

            items.Add(new JsonObject { ["object"] = "embedding", ["index"] = i, ["embedding"] = embedding });
        }

        if (ReverseEmbeddings)
        {
            items.Reverse();
        }

        var tokens = texts.Sum(t => (t.Length + 3) / 4);
        var answer = new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray([.. items]),
            ["model"] = model,
            ["usage"] = new JsonObject { ["prompt_tokens"] = tokens, ["total_tokens"] = tokens },
        };
        return new(200, answer.ToJsonString());
    }

    private static void Chunk(Stream stream, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        stream.Write(typeBytes);
        stream.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, PngCrc32.Compute(typeBytes, data));
        stream.Write(word);
    }

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
