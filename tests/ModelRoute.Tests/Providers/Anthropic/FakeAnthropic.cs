using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace ModelRoute.Tests.Providers.Anthropic;

/// <summary>
/// Anthropic's Messages API on a loopback port, as its public documentation describes it:
/// <c>POST /v1/messages</c>, the key (<c>x-api-key</c>, or a bearer token) and <c>anthropic-version</c> required (401 / 400 with
/// Anthropic's error JSON otherwise), <c>model</c>, <c>max_tokens</c> and <c>messages</c> required,
/// and the real message shape back. Records every request; failures can be scripted.
/// </summary>
public sealed class FakeAnthropic : IAsyncDisposable
{
    public const string ApiKey = "sk-ant-test-secret";

    private readonly FakeFailureScript _script = new();
    private FakeProviderServer _server = null!;

    private FakeAnthropic()
    {
    }

    public string BaseUrl => _server.BaseUrl;

    public ConcurrentQueue<FakeRequest> Requests { get; } = new();

    /// <summary>Requests that reached the Messages endpoint with the right key.</summary>
    public IEnumerable<FakeRequest> Messages => Requests.Where(r => r.Path == "/v1/messages" && KeyOf(r.Headers) == ApiKey);

    /// <summary>
    /// The key a request carries: <c>x-api-key</c> (what the adapter sends, as Anthropic documents), or
    /// <c>Authorization: Bearer</c>, which is how the official TypeScript SDK 1.x sends an API key.
    /// </summary>
    public static string? KeyOf(IReadOnlyDictionary<string, string> headers) =>
        headers.GetValueOrDefault("x-api-key") is { Length: > 0 } key ? key
        : headers.GetValueOrDefault("authorization") is { } bearer && bearer.StartsWith("Bearer ", StringComparison.Ordinal) ? bearer["Bearer ".Length..]
        : null;

    public string ReplyText { get; set; } = "Hello from the fake Claude.";

    public string StopReason { get; set; } = "end_turn";

    public (long Input, long CacheCreation, long CacheRead, long Output) Usage { get; set; } = (12, 0, 0, 7);

    /// <summary>A raw 200 body instead of a well-formed message (for malformed answers).</summary>
    public string? RawReply { get; set; }

    public static async Task<FakeAnthropic> StartAsync()
    {
        var fake = new FakeAnthropic();
        fake._server = await FakeProviderServer.StartAsync(fake.HandleAsync);
        return fake;
    }

    /// <summary>Back to a well-behaved provider with no history (tests of a class share one fake, one at a time).</summary>
    public void Reset()
    {
        _script.Clear();
        Requests.Clear();
        ReplyText = "Hello from the fake Claude.";
        StopReason = "end_turn";
        Usage = (12, 0, 0, 7);
        RawReply = null;
    }

    public static string ErrorBody(string type, string message) =>
        JsonSerializer.Serialize(new { type = "error", error = new { type, message }, request_id = "req_011CTestFake" });

    /// <summary>The next <paramref name="times"/> authorized requests get this Anthropic error.</summary>
    public void Fail(int status, string type, string message, int times = 1, IReadOnlyDictionary<string, string>? headers = null) =>
        _script.Enqueue(new FakeFailure(status, ErrorBody(type, message), headers, times));

    public void FailRaw(FakeFailure failure) => _script.Enqueue(failure);

    private async Task HandleAsync(HttpContext context)
    {
        var request = await FakeProviderServer.ReadAsync(context);
        Requests.Enqueue(request);
        context.Response.Headers["request-id"] = "req_011CTestFake";
        if (Refusal(request) is { } refusal)
        {
            await FakeProviderServer.WriteAsync(context, refusal.Status, refusal.Body, headers: refusal.Headers);
            return;
        }

        var model = request.Json.GetProperty("model").GetString()!;
        var reply = new
        {
            id = "msg_01FakeFakeFakeFakeFake",
            type = "message",
            role = "assistant",
            model,
            content = new[] { new { type = "text", text = ReplyText } },
            stop_reason = StopReason,
            stop_sequence = (string?)null,
            usage = new
            {
                input_tokens = Usage.Input,
                cache_creation_input_tokens = Usage.CacheCreation,
                cache_read_input_tokens = Usage.CacheRead,
                output_tokens = Usage.Output,
            },
        };
        await FakeProviderServer.WriteAsync(context, 200, RawReply ?? JsonSerializer.Serialize(reply));
    }

    /// <summary>What Anthropic answers instead of a message: its checks in its order, then the script.</summary>
    private FakeFailure? Refusal(FakeRequest request)
    {
        if (request.Path != "/v1/messages" || request.Method != "POST")
        {
            return Error(404, "not_found_error", "Not found");
        }

        if (KeyOf(request.Headers) != ApiKey)
        {
            return Error(401, "authentication_error", "invalid x-api-key");
        }

        if (string.IsNullOrEmpty(request.Headers.GetValueOrDefault("anthropic-version")))
        {
            return Error(400, "invalid_request_error", "anthropic-version: header is required");
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
            return Error(400, "invalid_request_error", "There was an error parsing the body of your request");
        }

        if (new[] { "model", "max_tokens", "messages" }.FirstOrDefault(required => body?[required] is null) is { } missing)
        {
            return Error(400, "invalid_request_error", $"{missing}: Field required");
        }

        return body!["messages"]!.AsArray().Any(m => m?["role"]?.GetValue<string>() is not ("user" or "assistant"))
            ? Error(400, "invalid_request_error", "messages: roles must be 'user' or 'assistant'")
            : null;
    }

    private static FakeFailure Error(int status, string type, string message) => new(status, ErrorBody(type, message));

    public ValueTask DisposeAsync() => _server.DisposeAsync();
}
