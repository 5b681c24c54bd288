using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

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

    private const string Json = "application/json; charset=UTF-8";

    private readonly FakeFailureScript _script = new();
    private FakeProviderServer _server = null!;

    private FakeGemini()
    {
    }

    public string BaseUrl => _server.BaseUrl;

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
        var fake = new FakeGemini();
        fake._server = await FakeProviderServer.StartAsync(fake.HandleAsync);
        return fake;
    }

    public void Reset()
    {
        _script.Clear();
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
        var request = await FakeProviderServer.ReadAsync(context);
        Requests.Enqueue(request);
        var match = GeneratePath().Match(request.Path);
        if (Refusal(request, match.Success, context.Request.Query["key"].FirstOrDefault()) is { } refusal)
        {
            await FakeProviderServer.WriteAsync(context, refusal.Status, refusal.Body, Json, refusal.Headers);
            return;
        }

        await FakeProviderServer.WriteAsync(context, 200, RawReply ?? JsonSerializer.Serialize(Reply(match.Groups[1].Value)), Json);
    }

    /// <summary>What Google answers instead of a response: its checks in its order, then the script.</summary>
    private FakeFailure? Refusal(FakeRequest request, bool generate, string? queryKey)
    {
        if (!generate || request.Method != "POST")
        {
            return Error(404, "NOT_FOUND", "models/x is not found for API version v1beta, or is not supported for generateContent.");
        }

        var key = request.Headers.GetValueOrDefault("x-goog-api-key") ?? queryKey;
        if (string.IsNullOrEmpty(key))
        {
            return Error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
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
            return Error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", info);
        }

        if (_script.Take() is { } failure)
        {
            return failure;
        }

        JsonNode? body;
        try
        {
            body = JsonNode.Parse(request.Body);
        }
        catch (JsonException)
        {
            return Error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
        }

        if (body?["contents"] is not JsonArray contents || contents.Count == 0)
        {
            return Error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified");
        }

        return contents.Any(c => c?["role"]?.GetValue<string>() is not ("user" or "model") || c["parts"] is not JsonArray { Count: > 0 })
            ? Error(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")
            : null;
    }

    private static FakeFailure Error(int code, string status, string message, params object[] details) => new(code, ErrorBody(code, status, message, details));

    /// <summary>The response as Google shapes it: a blocked prompt, a candidate withheld for safety, or the text.</summary>
    private object Reply(string model)
    {
        var usage = new Dictionary<string, object> { ["promptTokenCount"] = Usage.Prompt, ["totalTokenCount"] = Usage.Prompt + Usage.Candidates + Usage.Thoughts };
        if (Usage.Cached > 0)
        {
            usage["cachedContentTokenCount"] = Usage.Cached;
        }

        if (Usage.Thoughts > 0)
        {
            usage["thoughtsTokenCount"] = Usage.Thoughts;
        }

        if (BlockReason is not null)
        {
            return new { promptFeedback = new { blockReason = BlockReason, safetyRatings = Ratings() }, usageMetadata = usage, modelVersion = model, responseId = "fake-response-1" };
        }

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

        return new { candidates = new[] { candidate }, usageMetadata = usage, modelVersion = model, responseId = "fake-response-1" };
    }

    private static object[] Ratings() =>
    [
        new { category = "HARM_CATEGORY_DANGEROUS_CONTENT", probability = "HIGH", blocked = true },
        new { category = "HARM_CATEGORY_HARASSMENT", probability = "NEGLIGIBLE" },
    ];

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
