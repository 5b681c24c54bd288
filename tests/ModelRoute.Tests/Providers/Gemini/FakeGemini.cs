using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRoute.Tests.Providers.Anthropic;

namespace ModelRoute.Tests.Providers.Gemini;

/// <summary>
/// The Gemini API's <c>POST /v1beta/models/{model}:generateContent</c> (and <c>/v1/…</c>) on a loopback port, as
/// Google documents it and answers it: the key in <c>x-goog-api-key</c> (or <c>?key=</c>); none is
/// 403 PERMISSION_DENIED, a wrong one 400 INVALID_ARGUMENT with ErrorInfo reason
/// <c>API_KEY_INVALID</c> (Google's answer, not a 401); <c>contents</c> required; the real response
/// shape back. Records every request; failures can be scripted.
/// </summary>
public sealed partial class FakeGemini : IAsyncDisposable
{
    public const string ApiKey = "AIza-test-secret-gemini-key";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeFailure> _script = new();
    private int _remainingOfHead;

    private FakeGemini(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    public IEnumerable<FakeRequest> Generations => Requests.Where(r => r.Path.EndsWith(":generateContent", StringComparison.Ordinal) && r.Headers.GetValueOrDefault("x-goog-api-key") == ApiKey);

    public string ReplyText { get; set; } = "Hello from the fake Gemini.";

    public string FinishReason { get; set; } = "STOP";

    /// <summary>When set, the prompt is blocked: no candidates, <c>promptFeedback.blockReason</c>.</summary>
    public string? BlockReason { get; set; }

    public (long Prompt, long Cached, long Candidates, long Thoughts) Usage { get; set; } = (11, 0, 6, 0);

    public string? RawReply { get; set; }

    public static async Task<FakeGemini> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeGemini(app);
        app.Run(fake.HandleAsync);
        await app.StartAsync();
        fake.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return fake;
    }

    public void Reset()
    {
        lock (_script)
        {
            _script.Clear();
            _remainingOfHead = 0;
        }

        Requests.Clear();
        ReplyText = "Hello from the fake Gemini.";
        FinishReason = "STOP";
        BlockReason = null;
        Usage = (11, 0, 6, 0);
        RawReply = null;
    }

    public static string ErrorBody(int code, string status, string message, params object[] details) =>
        JsonSerializer.Serialize(new { error = new { code, message, status, details } });

    public static object RetryInfo(string delay) => new Dictionary<string, object> { ["@type"] = "type.googleapis.com/google.rpc.RetryInfo", ["retryDelay"] = delay };

    public void Fail(int code, string status, string message, int times = 1, IReadOnlyDictionary<string, string>? headers = null, params object[] details) =>
        _script.Enqueue(new FakeFailure(code, ErrorBody(code, status, message, details), headers, times));

    [GeneratedRegex("^/v1(?:beta)?/models/([^/:]+):generateContent$")]
    private static partial Regex GeneratePath();

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        Requests.Enqueue(new FakeRequest(context.Request.Method, context.Request.Path, headers, body));

        var match = GeneratePath().Match(context.Request.Path.Value ?? "");
        if (!match.Success || context.Request.Method != "POST")
        {
            await ErrorAsync(context, ErrorBody(404, "NOT_FOUND", $"models/x is not found for API version v1beta, or is not supported for generateContent."), 404);
            return;
        }

        var key = headers.GetValueOrDefault("x-goog-api-key") ?? context.Request.Query["key"].FirstOrDefault();
        if (string.IsNullOrEmpty(key))
        {
            await ErrorAsync(context, ErrorBody(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."), 403);
            return;
        }

        if (key != ApiKey)
        {
            var info = new Dictionary<string, object>
            {
                ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo",
                ["reason"] = "API_KEY_INVALID",
                ["domain"] = "googleapis.com",
                ["metadata"] = new Dictionary<string, string> { ["service"] = "generativelanguage.googleapis.com" },
            };
            await ErrorAsync(context, ErrorBody(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", info), 400);
            return;
        }

        if (TakeScripted() is { } failure)
        {
            foreach (var (name, value) in failure.Headers ?? new Dictionary<string, string>())
            {
                context.Response.Headers[name] = value;
            }

            await ErrorAsync(context, failure.Body, failure.Status);
            return;
        }

        JsonNode? request;
        try
        {
            request = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            await ErrorAsync(context, ErrorBody(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), 400);
            return;
        }

        if (request?["contents"] is not JsonArray contents || contents.Count == 0)
        {
            await ErrorAsync(context, ErrorBody(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"), 400);
            return;
        }

        if (contents.Any(c => c?["role"]?.GetValue<string>() is not ("user" or "model") || c["parts"] is not JsonArray { Count: > 0 }))
        {
            await ErrorAsync(context, ErrorBody(400, "INVALID_ARGUMENT", "Please use a valid role: user, model."), 400);
            return;
        }

        context.Response.ContentType = "application/json; charset=UTF-8";
        if (RawReply is not null)
        {
            await context.Response.WriteAsync(RawReply);
            return;
        }

        var model = match.Groups[1].Value;
        var usage = new Dictionary<string, object> { ["promptTokenCount"] = Usage.Prompt, ["totalTokenCount"] = Usage.Prompt + Usage.Candidates + Usage.Thoughts };
        if (Usage.Cached > 0)
        {
            usage["cachedContentTokenCount"] = Usage.Cached;
        }

        if (Usage.Thoughts > 0)
        {
            usage["thoughtsTokenCount"] = Usage.Thoughts;
        }

        object reply;
        if (BlockReason is not null)
        {
            reply = new { promptFeedback = new { blockReason = BlockReason, safetyRatings = Ratings() }, usageMetadata = usage, modelVersion = model, responseId = "fake-response-1" };
        }
        else
        {
            usage["candidatesTokenCount"] = Usage.Candidates;
            var candidate = new Dictionary<string, object>
            {
                ["content"] = new { role = "model", parts = new[] { new { text = ReplyText } } },
                ["finishReason"] = FinishReason,
                ["index"] = 0,
            };
            if (FinishReason == "SAFETY")
            {
                candidate.Remove("content"); // Google withholds the content of a candidate blocked for safety
                candidate["safetyRatings"] = Ratings();
            }

            reply = new { candidates = new[] { candidate }, usageMetadata = usage, modelVersion = model, responseId = "fake-response-1" };
        }

        await context.Response.WriteAsync(JsonSerializer.Serialize(reply));
    }

    private static object[] Ratings() =>
    [
        new { category = "HARM_CATEGORY_DANGEROUS_CONTENT", probability = "HIGH", blocked = true },
        new { category = "HARM_CATEGORY_HARASSMENT", probability = "NEGLIGIBLE" },
    ];

    private FakeFailure? TakeScripted()
    {
        lock (_script)
        {
            if (!_script.TryPeek(out var head))
            {
                return null;
            }

            _remainingOfHead = _remainingOfHead == 0 ? head.Times : _remainingOfHead;
            if (--_remainingOfHead == 0)
            {
                _script.TryDequeue(out _);
            }

            return head;
        }
    }

    private static async Task ErrorAsync(HttpContext context, string body, int status)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=UTF-8";
        await context.Response.WriteAsync(body);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
