using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRoute.Tests.Providers.Replicate;
using NSec.Cryptography;

namespace ModelRoute.Tests.Providers.Fal;

/// <summary>How one queued request ends: its payload (null = built from the input), or an error.</summary>
public sealed record FalScript(TimeSpan Delay, JsonObject? Payload = null, string? Error = null, JsonObject? ErrorPayload = null, int ErrorStatus = 422, bool DropWebhook = false);

/// <summary>
/// fal's queue API on a loopback port, speaking the public protocol: <c>Authorization: Key …</c>
/// (401 <c>{"detail"}</c> otherwise); <c>POST /{app}[/{path}]?fal_webhook=…</c> answering
/// <c>{request_id, response_url, status_url, cancel_url, queue_position}</c>; requests kept under the
/// app id (<c>owner/alias</c>): <c>GET …/requests/{id}/status</c>, <c>GET …/requests/{id}</c>,
/// <c>PUT …/requests/{id}/cancel</c>. After the scripted delay the webhook
/// <c>{request_id, gateway_request_id, status, payload, error}</c> is POSTed to <c>fal_webhook</c>, signed as fal
/// signs it (ED25519 over request id, user id, timestamp and the body's hex SHA-256, joined by newlines) with a key
/// generated here and published at <see cref="JwksPath"/>.
/// </summary>
public sealed class FakeFal : IAsyncDisposable
{
    public const string ApiKey = "fal_test_key_id:fal_test_key_secret";
    public const string JwksPath = "/.well-known/jwks.json";
    public const string UserId = "fake-fal-user";

    private readonly Lock _keysLock = new();
    private readonly List<Key> _published = [];
    private Key _signing;
    private int _jwksFetches;

    private readonly ConcurrentDictionary<string, Job> _jobs = new();
    private FakeProviderServer _server = null!;

    private FakeFal()
    {
        _signing = NewKey();
        _published.Add(_signing);
    }

    /// <summary>How many times the key set was fetched.</summary>
    public int JwksFetches => Volatile.Read(ref _jwksFetches);

    public static Key NewKey() => Key.Create(SignatureAlgorithm.Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.None });

    /// <summary>Signs with a new key from now on, published beside the old ones, or instead of them.</summary>
    public void RotateKey(bool keepOld)
    {
        lock (_keysLock)
        {
            _signing = NewKey();
            if (!keepOld)
            {
                _published.Clear();
            }

            _published.Add(_signing);
        }
    }

    /// <summary>fal's four webhook headers for <paramref name="body"/>, signed by <paramref name="key"/> (the current key by default).</summary>
    public Dictionary<string, string> SignedHeaders(string requestId, string body, DateTimeOffset? at = null, Key? key = null)
    {
        var stamp = (at ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(body)));
        var message = Encoding.UTF8.GetBytes($"{requestId}\n{UserId}\n{stamp}\n{digest}");
        byte[] signature;
        lock (_keysLock)
        {
            signature = SignatureAlgorithm.Ed25519.Sign(key ?? _signing, message);
        }

        return new Dictionary<string, string>
        {
            ["X-Fal-Webhook-Request-Id"] = requestId,
            ["X-Fal-Webhook-User-Id"] = UserId,
            ["X-Fal-Webhook-Timestamp"] = stamp,
            ["X-Fal-Webhook-Signature"] = Convert.ToHexStringLower(signature),
        };
    }

    private JsonObject Jwks()
    {
        lock (_keysLock)
        {
            return new JsonObject
            {
                ["keys"] = new JsonArray([.. _published.Select((k, i) => (JsonNode)new JsonObject
                {
                    ["kty"] = "OKP",
                    ["crv"] = "Ed25519",
                    ["kid"] = $"fake-{i}",
                    ["x"] = Convert.ToBase64String(k.PublicKey.Export(KeyBlobFormat.RawPublicKey)).TrimEnd('=').Replace('+', '-').Replace('/', '_'),
                })]),
            };
        }
    }

    public string BaseUrl => _server.BaseUrl;

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>Every request queued: its id, path (the model id) and body.</summary>
    public ConcurrentQueue<(string Id, string Path, string Query, string Body)> Submitted { get; } = new();

    public ConcurrentQueue<string> Cancels { get; } = new();

    public ConcurrentQueue<(string Url, int Status, string Body)> Webhooks { get; } = new();

    public Func<JsonObject, FalScript> Script { get; set; } = _ => new FalScript(TimeSpan.FromMilliseconds(300));

    public bool FilesAvailable { get; set; } = true;

    public string RequestFor(string marker) => Submitted.Single(s => s.Body.Contains(marker, StringComparison.Ordinal)).Id;

    public static async Task<FakeFal> StartAsync()
    {
        var fake = new FakeFal();
        fake._server = await FakeProviderServer.StartAsync(fake.HandleAsync, withHttpClient: true);
        return fake;
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        var request = await FakeProviderServer.ReadAsync(context, path + context.Request.QueryString);
        Requests.Enqueue(request);
        var segments = path.Trim('/').Split('/');
        if (path == JwksPath && context.Request.Method == "GET")
        {
            Interlocked.Increment(ref _jwksFetches);
            await JsonAsync(context, 200, Jwks());
            return;
        }

        if (segments is ["files", var fileId, var fileName] && context.Request.Method == "GET")
        {
            await FakeReplicate.ServeFileAsync(context, fileId, fileName, FilesAvailable && _jobs.ContainsKey(fileId));
            return;
        }

        if (request.Authorization != "Key " + ApiKey)
        {
            await JsonAsync(context, 401, new JsonObject { ["detail"] = "No user found for Key ID and Secret" });
            return;
        }

        // …/requests/{id}[/status|/cancel] under the app id.
        var at = Array.IndexOf(segments, "requests");
        if (at is 2 or 3 && segments.Length > at + 1)
        {
            var app = string.Join('/', segments[..at]);
            var id = segments[at + 1];
            var (status, answer) = !_jobs.TryGetValue(id, out var job) || job.App != app
                ? (404, new JsonObject { ["detail"] = "Request not found" })
                : RequestAnswer(context, app, id, job, segments[(at + 2)..]);
            await JsonAsync(context, status, answer);
            return;
        }

        if (context.Request.Method == "POST" && segments.Length >= 2)
        {
            await SubmitAsync(context, path, request.Body);
            return;
        }

        await JsonAsync(context, 404, new JsonObject { ["detail"] = "Not Found" });
    }

    /// <summary>A known request's status, result or cancellation, as fal answers each.</summary>
    private (int Status, JsonObject Body) RequestAnswer(HttpContext context, string app, string id, Job job, string[] rest)
    {
        switch (context.Request.Method, rest)
        {
            case ("GET", ["status"]):
                var status = job.Status;
                var answer = Urls(app, id);
                answer["status"] = status;
                if (status == "IN_QUEUE")
                {
                    answer["queue_position"] = 0;
                }

                if (status == "COMPLETED")
                {
                    answer["logs"] = null;
                    answer["metrics"] = new JsonObject { ["inference_time"] = 1.2 };
                }

                return (status == "COMPLETED" ? 200 : 202, answer);
            case ("GET", []):
                if (job.Status != "COMPLETED")
                {
                    return (400, new JsonObject { ["detail"] = "Request is still in progress" });
                }

                context.Response.Headers["x-fal-request-id"] = id;
                return job.Script.Error is not null
                    ? (job.Script.ErrorStatus, (JsonObject)(job.Script.ErrorPayload?.DeepClone() ?? new JsonObject { ["detail"] = job.Script.Error }))
                    : (200, (JsonObject)job.Payload!.DeepClone());
            case ("PUT", ["cancel"]):
                Cancels.Enqueue(id);
                if (job.Status == "COMPLETED")
                {
                    return (400, new JsonObject { ["status"] = "ALREADY_COMPLETED" });
                }

                job.Cancelled = true;
                return (202, new JsonObject { ["status"] = "CANCELLATION_REQUESTED" });
            default:
                return (405, new JsonObject { ["detail"] = "Method Not Allowed" });
        }
    }

    private async Task SubmitAsync(HttpContext context, string path, string body)
    {
        JsonObject input;
        try
        {
            input = JsonNode.Parse(body)!.AsObject();
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            await JsonAsync(context, 422, new JsonObject { ["detail"] = new JsonArray(new JsonObject { ["loc"] = new JsonArray("body"), ["msg"] = "Invalid JSON", ["type"] = "value_error.jsondecode" }) });
            return;
        }

        if (input["prompt"] is null || input["prompt"]!.GetValue<string>().Length == 0)
        {
            await JsonAsync(context, 422, new JsonObject
            {
                ["detail"] = new JsonArray(new JsonObject { ["loc"] = new JsonArray("body", "prompt"), ["msg"] = "field required", ["type"] = "value_error.missing" }),
            });
            return;
        }

        var segments = path.Trim('/').Split('/');
        var app = string.Join('/', segments[..2]);
        var id = Guid.NewGuid().ToString();
        var script = Script(input);
        var job = new Job(app, script);
        _jobs[id] = job;
        Submitted.Enqueue((id, path, context.Request.QueryString.Value ?? "", body));
        var webhook = context.Request.Query["fal_webhook"].ToString();
        _ = RunAsync(id, job, input, string.IsNullOrEmpty(webhook) ? null : webhook);
        var answer = Urls(app, id);
        answer["status"] = "IN_QUEUE";
        answer["queue_position"] = 0;
        context.Response.Headers["x-fal-request-id"] = id;
        await JsonAsync(context, 200, answer);
    }

    private async Task RunAsync(string id, Job job, JsonObject input, string? webhook)
    {
        await Task.Delay(job.Script.Delay / 3);
        job.Status = "IN_PROGRESS";
        await Task.Delay(job.Script.Delay - (job.Script.Delay / 3));
        if (job.Cancelled)
        {
            return;
        }

        job.Payload = job.Script.Payload ?? DefaultPayload(id, input);
        job.Status = "COMPLETED";
        if (webhook is null || job.Script.DropWebhook)
        {
            return;
        }

        var hook = new JsonObject
        {
            ["request_id"] = id,
            ["gateway_request_id"] = id,
            ["status"] = job.Script.Error is null ? "OK" : "ERROR",
            ["payload"] = job.Script.Error is null ? job.Payload.DeepClone() : job.Script.ErrorPayload?.DeepClone(),
        };
        if (job.Script.Error is { } error)
        {
            hook["error"] = error;
        }

        var body = hook.ToJsonString();
        Webhooks.Enqueue(await _server.PostWebhookAsync(webhook, body, SignedHeaders(id, body)));
    }

    /// <summary>Video apps: <c>{video: File}</c>; image apps: <c>{images: [Image], seed, has_nsfw_concepts, prompt}</c>.</summary>
    private JsonObject DefaultPayload(string id, JsonObject input)
    {
        if (input["duration"] is not null)
        {
            return new JsonObject
            {
                ["video"] = new JsonObject { ["url"] = $"{BaseUrl}/files/{id}/output.mp4", ["content_type"] = "video/mp4", ["file_name"] = "output.mp4", ["file_size"] = 4096 },
            };
        }

        var n = input["num_images"]?.GetValue<int>() ?? 1;
        return new JsonObject
        {
            ["images"] = new JsonArray(Enumerable.Range(0, n).Select(i => (JsonNode)new JsonObject
            {
                ["url"] = $"{BaseUrl}/files/{id}/img-{i}.png",
                ["content_type"] = "image/png",
                ["width"] = 1024,
                ["height"] = 768,
            }).ToArray()),
            ["timings"] = new JsonObject { ["inference"] = 0.4 },
            ["seed"] = 42,
            ["has_nsfw_concepts"] = new JsonArray(Enumerable.Range(0, n).Select(_ => (JsonNode)false).ToArray()),
            ["prompt"] = input["prompt"]!.DeepClone(),
        };
    }

    private JsonObject Urls(string app, string id) => new()
    {
        ["request_id"] = id,
        ["response_url"] = $"{BaseUrl}/{app}/requests/{id}",
        ["status_url"] = $"{BaseUrl}/{app}/requests/{id}/status",
        ["cancel_url"] = $"{BaseUrl}/{app}/requests/{id}/cancel",
    };

    private static Task JsonAsync(HttpContext context, int status, JsonObject body) => FakeProviderServer.WriteAsync(context, status, body.ToJsonString());

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        lock (_keysLock)
        {
            _published.ForEach(k => k.Dispose());
            _signing.Dispose();
        }
    }

    private sealed class Job(string app, FalScript script)
    {
        public string App => app;

        public FalScript Script => script;

        public volatile string Status = "IN_QUEUE";

        public volatile bool Cancelled;

        public JsonObject? Payload { get; set; }
    }
}
