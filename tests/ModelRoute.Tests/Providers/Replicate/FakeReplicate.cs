using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Providers.Replicate;

/// <summary>How one prediction ends: its output (null = built from the input), or a failure text.</summary>
public sealed record PredictionScript(TimeSpan Delay, JsonNode? Output = null, string? Error = null, bool DropWebhook = false);

/// <summary>
/// Replicate's HTTP API on a loopback port, as far as the gateway uses it, speaking the public
/// protocol: Bearer auth (401 problem+json otherwise), <c>POST /v1/predictions</c> and
/// <c>POST /v1/models/{owner}/{name}/predictions</c> answering 201 with the prediction object,
/// <c>GET /v1/predictions/{id}</c>, <c>POST /v1/predictions/{id}/cancel</c>; after the scripted
/// delay the prediction ends and the <c>completed</c> webhook is POSTed to the given URL, signed
/// with Standard Webhooks headers. Output files are served from the fake's own URLs.
/// </summary>
public sealed class FakeReplicate : IAsyncDisposable
{
    public const string ApiKey = "r8_test_secret";
    public const string WebhookSecret = "whsec_dGVzdC1yZXBsaWNhdGUtd2ViaG9vay1zZWNyZXQtMDE=";

    private readonly ConcurrentDictionary<string, JsonObject> _predictions = new();
    private FakeProviderServer _server = null!;
    private int _sequence;

    private FakeReplicate()
    {
    }

    public string BaseUrl => _server.BaseUrl;

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>Every prediction created: its id and the create request's body.</summary>
    public ConcurrentQueue<(string Id, string Body)> Created { get; } = new();

    /// <summary>The id of the prediction whose create body contains <paramref name="marker"/>.</summary>
    public string PredictionFor(string marker) => Created.Single(c => c.Body.Contains(marker, StringComparison.Ordinal)).Id;

    /// <summary>Prediction ids the gateway asked to cancel.</summary>
    public ConcurrentQueue<string> Cancels { get; } = new();

    /// <summary>Every webhook sent: the URL, the status the gateway answered, its body.</summary>
    public ConcurrentQueue<(string Url, int Status, string Body)> Webhooks { get; } = new();

    /// <summary>Decides how each prediction ends, from its input; default: success after 300 ms.</summary>
    public Func<JsonObject, PredictionScript> Script { get; set; } = _ => new PredictionScript(TimeSpan.FromMilliseconds(300));

    /// <summary>HTTP errors to answer to the next creates (status, Retry-After seconds), in order.</summary>
    public ConcurrentQueue<(int Status, int? RetryAfter)> CreateErrors { get; } = new();

    /// <summary>Whether the output file URLs answer (off: 404, like an expired delivery URL).</summary>
    public bool FilesAvailable { get; set; } = true;

    /// <summary>The secret webhooks are signed with (a different one makes bad signatures).</summary>
    public string SigningSecret { get; set; } = WebhookSecret;

    public static async Task<FakeReplicate> StartAsync()
    {
        var fake = new FakeReplicate();
        fake._server = await FakeProviderServer.StartAsync(fake.HandleAsync, withHttpClient: true);
        return fake;
    }

    public static byte[] FileBytes(string predictionId, string name) =>
        name.EndsWith(".png", StringComparison.Ordinal)
            ? [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, .. Encoding.ASCII.GetBytes($"{predictionId}/{name}")]
            : Encoding.ASCII.GetBytes($"fake media {predictionId}/{name}");

    /// <summary>An output file of a known job, as a provider's delivery URL serves it (404 once <paramref name="available"/> is off).</summary>
    public static async Task ServeFileAsync(HttpContext context, string jobId, string name, bool available)
    {
        if (!available)
        {
            context.Response.StatusCode = 404;
            return;
        }

        context.Response.ContentType = name.EndsWith(".png", StringComparison.Ordinal) ? "image/png" : "video/mp4";
        await context.Response.Body.WriteAsync(FileBytes(jobId, name));
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = await FakeProviderServer.ReadAsync(context);
        Requests.Enqueue(request);
        var body = request.Body;
        var segments = request.Path.Trim('/').Split('/');
        if (segments is ["files", var fileId, var fileName] && context.Request.Method == "GET")
        {
            await ServeFileAsync(context, fileId, fileName, FilesAvailable && _predictions.ContainsKey(fileId));
            return;
        }

        if (context.Request.Headers.Authorization.ToString() != "Bearer " + ApiKey)
        {
            await ProblemAsync(context, 401, "Unauthenticated", "You did not pass a valid authentication token");
            return;
        }

        switch (context.Request.Method, segments)
        {
            case ("POST", ["v1", "predictions"]):
                await CreateAsync(context, body, null);
                break;
            case ("POST", ["v1", "models", var owner, var name, "predictions"]):
                await CreateAsync(context, body, $"{owner}/{name}");
                break;
            case ("GET", ["v1", "predictions", var id]) when _predictions.TryGetValue(id, out var prediction):
                await WriteJsonAsync(context, 200, Snapshot(prediction));
                break;
            case ("POST", ["v1", "predictions", var id, "cancel"]) when _predictions.TryGetValue(id, out var prediction):
                Cancels.Enqueue(id);
                lock (prediction)
                {
                    if (prediction["status"]!.GetValue<string>() is "starting" or "processing")
                    {
                        prediction["status"] = "canceled";
                        prediction["completed_at"] = Now();
                    }
                }

                await WriteJsonAsync(context, 200, Snapshot(prediction));
                break;
            case (_, ["v1", "predictions", ..]):
                await ProblemAsync(context, 404, "Not found", "The requested resource could not be found.");
                break;
            default:
                await ProblemAsync(context, 404, "Not found", "The requested resource could not be found.");
                break;
        }
    }

    private async Task CreateAsync(HttpContext context, string body, string? model)
    {
        if (CreateErrors.TryDequeue(out var error))
        {
            if (error.RetryAfter is { } seconds)
            {
                context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            }

            var (title, detail) = error.Status == 429
                ? ("Request was throttled", "Request was throttled. Expected available in 1 second.")
                : ("Internal server error", "Something went wrong.");
            await ProblemAsync(context, error.Status, title, detail);
            return;
        }

        JsonObject request;
        try
        {
            request = JsonNode.Parse(body)!.AsObject();
        }
        catch (JsonException)
        {
            await ProblemAsync(context, 400, "Invalid JSON", "The request body is not valid JSON.");
            return;
        }

        if (request["input"] is not JsonObject input)
        {
            await ProblemAsync(context, 422, "Input validation failed", "input: input is required");
            return;
        }

        string version;
        if (model is null)
        {
            if (request["version"]?.GetValue<string>() is not { Length: > 0 } v)
            {
                await ProblemAsync(context, 422, "Invalid version or not permitted", "The specified version does not exist (or perhaps you don't have permission to use it?)");
                return;
            }

            version = v;
            model = "owner/versioned-model";
        }
        else
        {
            version = "dp-" + Guid.NewGuid().ToString("N")[..32];
        }

        var id = $"fk{Interlocked.Increment(ref _sequence):D4}" + Guid.NewGuid().ToString("N")[..20];
        var prediction = NewPrediction(id, model, version, input);
        _predictions[id] = prediction;
        Created.Enqueue((id, body));
        var script = Script(input);
        var webhook = request["webhook"]?.GetValue<string>();
        _ = RunAsync(id, prediction, script, webhook);
        await WriteJsonAsync(context, 201, Snapshot(prediction));
    }

    /// <summary>A prediction as Replicate shapes it when created: starting, no output yet, and its URLs.</summary>
    private JsonObject NewPrediction(string id, string model, string version, JsonObject input) => new()
    {
        ["id"] = id,
        ["model"] = model,
        ["version"] = version,
        ["input"] = input.DeepClone(),
        ["logs"] = "",
        ["output"] = null,
        ["data_removed"] = false,
        ["error"] = null,
        ["status"] = "starting",
        ["created_at"] = Now(),
        ["started_at"] = null,
        ["completed_at"] = null,
        ["urls"] = new JsonObject
        {
            ["cancel"] = $"{BaseUrl}/v1/predictions/{id}/cancel",
            ["get"] = $"{BaseUrl}/v1/predictions/{id}",
            ["stream"] = $"{BaseUrl}/v1/stream/{id}",
            ["web"] = $"https://replicate.com/p/{id}",
        },
    };

    private async Task RunAsync(string id, JsonObject prediction, PredictionScript script, string? webhook)
    {
        await Task.Delay(script.Delay / 3);
        lock (prediction)
        {
            if (prediction["status"]!.GetValue<string>() != "starting")
            {
                return;
            }

            prediction["status"] = "processing";
            prediction["started_at"] = Now();
        }

        await Task.Delay(script.Delay - (script.Delay / 3));
        lock (prediction)
        {
            if (prediction["status"]!.GetValue<string>() != "processing")
            {
                return; // Canceled meanwhile.
            }

            prediction["completed_at"] = Now();
            prediction["metrics"] = new JsonObject { ["predict_time"] = 1.25, ["total_time"] = 1.5 };
            if (script.Error is { } error)
            {
                prediction["status"] = "failed";
                prediction["error"] = error;
            }
            else
            {
                prediction["status"] = "succeeded";
                prediction["output"] = script.Output?.DeepClone() ?? DefaultOutput(id, prediction["input"]!.AsObject());
                prediction["logs"] = "Using seed: 42\nGenerating…\n";
            }
        }

        if (webhook is null || script.DropWebhook)
        {
            return;
        }

        var body = Snapshot(prediction);
        var messageId = "msg_" + Guid.NewGuid().ToString("N");
        var timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Webhooks.Enqueue(await _server.PostWebhookAsync(webhook, body, new Dictionary<string, string>
        {
            ["webhook-id"] = messageId,
            ["webhook-timestamp"] = timestamp.ToString(CultureInfo.InvariantCulture),
            ["webhook-signature"] = WebhookSigner.Sign(SigningSecret, messageId, timestamp, body),
            ["User-Agent"] = "Replicate-Webhooks/1.0",
        }));
    }

    /// <summary>Image models: an array of file URLs (num_outputs); video models (a duration): one URL.</summary>
    private JsonNode DefaultOutput(string id, JsonObject input)
    {
        if (input["duration"] is not null)
        {
            return JsonValue.Create($"{BaseUrl}/files/{id}/output.mp4");
        }

        var n = input["num_outputs"]?.GetValue<int>() ?? 1;
        return new JsonArray(Enumerable.Range(0, n).Select(i => (JsonNode)JsonValue.Create($"{BaseUrl}/files/{id}/out-{i}.png")).ToArray());
    }

    private static string Snapshot(JsonObject prediction)
    {
        lock (prediction)
        {
            return prediction.ToJsonString();
        }
    }

    private static string Now() => DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    private static Task ProblemAsync(HttpContext context, int status, string title, string detail) =>
        FakeProviderServer.WriteAsync(context, status, JsonSerializer.Serialize(new { title, detail, status }), "application/problem+json");

    private static Task WriteJsonAsync(HttpContext context, int status, string json) => FakeProviderServer.WriteAsync(context, status, json);

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
