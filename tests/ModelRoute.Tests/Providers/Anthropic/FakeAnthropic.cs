using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ModelRoute.Tests.Providers.Anthropic;

/// <summary>One request as the fake saw it.</summary>
public sealed record FakeRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;
}

/// <summary>A scripted answer: status, raw body and headers, given to the next <see cref="Times"/> authorized requests.</summary>
public sealed record FakeFailure(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null, int Times = 1);

/// <summary>
/// Anthropic's Messages API on a loopback port, as its public documentation describes it:
/// <c>POST /v1/messages</c>, the key (<c>x-api-key</c>, or a bearer token) and <c>anthropic-version</c> required (401 / 400 with
/// Anthropic's error JSON otherwise), <c>model</c>, <c>max_tokens</c> and <c>messages</c> required,
/// and the real message shape back. Records every request; failures can be scripted.
/// </summary>
public sealed class FakeAnthropic : IAsyncDisposable
{
    public const string ApiKey = "sk-ant-test-secret";

    private readonly WebApplication _app;
    private readonly ConcurrentQueue<FakeFailure> _script = new();
    private int _remainingOfHead;

    private FakeAnthropic(WebApplication app) => _app = app;

    public string BaseUrl { get; private set; } = "";

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
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var fake = new FakeAnthropic(app);
        app.Run(fake.HandleAsync);
        await app.StartAsync();
        fake.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return fake;
    }

    /// <summary>Back to a well-behaved provider with no history (tests of a class share one fake, one at a time).</summary>
    public void Reset()
    {
        lock (_script)
        {
            _script.Clear();
            _remainingOfHead = 0;
        }

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
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        Requests.Enqueue(new FakeRequest(context.Request.Method, context.Request.Path, headers, body));
        context.Response.Headers["request-id"] = "req_011CTestFake";

        if (context.Request.Path != "/v1/messages" || context.Request.Method != "POST")
        {
            await ErrorAsync(context, 404, "not_found_error", "Not found");
            return;
        }

        if (KeyOf(headers) != ApiKey)
        {
            await ErrorAsync(context, 401, "authentication_error", "invalid x-api-key");
            return;
        }

        if (string.IsNullOrEmpty(headers.GetValueOrDefault("anthropic-version")))
        {
            await ErrorAsync(context, 400, "invalid_request_error", "anthropic-version: header is required");
            return;
        }

        if (TakeScripted() is { } failure)
        {
            foreach (var (name, value) in failure.Headers ?? new Dictionary<string, string>())
            {
                context.Response.Headers[name] = value;
            }

            context.Response.StatusCode = failure.Status;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(failure.Body);
            return;
        }

        JsonNode? request;
        try
        {
            request = JsonNode.Parse(body);
        }
        catch (JsonException)
        {
            await ErrorAsync(context, 400, "invalid_request_error", "There was an error parsing the body of your request");
            return;
        }

        foreach (var required in new[] { "model", "max_tokens", "messages" })
        {
            if (request?[required] is null)
            {
                await ErrorAsync(context, 400, "invalid_request_error", $"{required}: Field required");
                return;
            }
        }

        if (request!["messages"]!.AsArray().Any(m => m?["role"]?.GetValue<string>() is not ("user" or "assistant")))
        {
            await ErrorAsync(context, 400, "invalid_request_error", "messages: roles must be 'user' or 'assistant'");
            return;
        }

        context.Response.ContentType = "application/json";
        if (RawReply is not null)
        {
            await context.Response.WriteAsync(RawReply);
            return;
        }

        var reply = new
        {
            id = "msg_01FakeFakeFakeFakeFake",
            type = "message",
            role = "assistant",
            model = request["model"]!.GetValue<string>(),
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
        await context.Response.WriteAsync(JsonSerializer.Serialize(reply));
    }

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

    private static async Task ErrorAsync(HttpContext context, int status, string type, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(ErrorBody(type, message));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
