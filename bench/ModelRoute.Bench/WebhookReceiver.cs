using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ModelRoute.Bench;

/// <summary>
/// A local webhook receiver (Kestrel on loopback). Every delivery's Standard Webhooks signature is checked:
/// base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), key = the bytes after <c>whsec_</c>.
/// Only verified <c>execution.completed</c> events count; the time each arrived is kept by idempotency key.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private byte[] _key = [];

    private WebhookReceiver(WebApplication app, string url)
    {
        _app = app;
        Url = url;
    }

    public string Url { get; }

    /// <summary>Stopwatch timestamp of each verified completed event, by the execution's idempotency key.</summary>
    public ConcurrentDictionary<string, long> Completed { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// For each verified completed event, the execution's own times (from the payload, millisecond precision) and the
    /// wall-clock time it arrived, so that end to end can be split into its stages.
    /// </summary>
    public ConcurrentDictionary<string, DeliveredTimes> CompletedTimes { get; } = new(StringComparer.Ordinal);

    /// <summary>How many distinct executions' completed events arrived (cheaper to poll than <see cref="Completed"/>.Count).</summary>
    public int CompletedCount => Volatile.Read(ref _completed);

    public int Verified => _verified;

    public int Rejected => _rejected;

    private int _verified;
    private int _rejected;
    private int _completed;

    public void UseSecret(string whsec) => _key = Convert.FromBase64String(whsec["whsec_".Length..]);

    /// <summary>Where fan-out endpoint <c>n</c> is: <c>{FanOutUrl}/{n}</c>.</summary>
    public string FanOutUrl => Url[..^"/hook".Length] + "/fanout";

    private byte[][] _fanOutKeys = [];
    private ConcurrentQueue<long> _fanOut = new();
    private int _fanOutCount;

    /// <summary>Verified completed events that reached a fan-out endpoint since <see cref="StartFanOut"/>.</summary>
    public int FanOutCount => Volatile.Read(ref _fanOutCount);

    /// <summary>Starts counting fan-out deliveries; endpoint <c>n</c> signs with <paramref name="secrets"/>[n].</summary>
    public void StartFanOut(IReadOnlyList<string> secrets)
    {
        _fanOutKeys = [.. secrets.Select(s => Convert.FromBase64String(s["whsec_".Length..]))];
        _fanOut = new ConcurrentQueue<long>();
        Volatile.Write(ref _fanOutCount, 0);
    }

    /// <summary>Stopwatch timestamps of the fan-out deliveries counted, in order.</summary>
    public long[] FanOutArrivals() => [.. _fanOut.Order()];

    public static async Task<WebhookReceiver> StartAsync()
    {
        var port = GatewayHost.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxConcurrentConnections = null);
        var app = builder.Build();
        var receiver = new WebhookReceiver(app, $"http://127.0.0.1:{port}/hook");
        app.MapPost("/hook", (Func<HttpContext, Task<IResult>>)receiver.HandleAsync);
        app.MapPost("/fanout/{n:int}", (Func<HttpContext, int, Task<IResult>>)receiver.HandleFanOutAsync);
        await app.StartAsync();
        return receiver;
    }

    private async Task<IResult> HandleAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var arrived = Stopwatch.GetTimestamp();
        var arrivedAt = TimeProvider.System.GetUtcNow();
        var id = context.Request.Headers["webhook-id"].ToString();
        var timestamp = context.Request.Headers["webhook-timestamp"].ToString();
        var signatures = context.Request.Headers["webhook-signature"].ToString();
        if (!Verify(id, timestamp, body, signatures))
        {
            Interlocked.Increment(ref _rejected);
            return Results.StatusCode(204);
        }

        Interlocked.Increment(ref _verified);
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (root.GetProperty("type").GetString() == "execution.completed"
            && root.GetProperty("data").TryGetProperty("idempotency_key", out var key) && key.GetString() is { } k)
        {
            if (Completed.TryAdd(k, arrived))
            {
                Interlocked.Increment(ref _completed);
                var data = root.GetProperty("data");
                if (Time(data, "created_at") is { } created && Time(data, "started_at") is { } started && Time(data, "completed_at") is { } completed)
                {
                    CompletedTimes[k] = new DeliveredTimes(created, started, completed, arrivedAt);
                }
            }
        }

        return Results.StatusCode(204);
    }

    private async Task<IResult> HandleFanOutAsync(HttpContext context, int n)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var arrived = Stopwatch.GetTimestamp();
        var keys = _fanOutKeys;
        if (n < 0 || n >= keys.Length || !Verify(keys[n], context.Request.Headers["webhook-id"].ToString(),
                context.Request.Headers["webhook-timestamp"].ToString(), body, context.Request.Headers["webhook-signature"].ToString()))
        {
            Interlocked.Increment(ref _rejected);
            return Results.StatusCode(204);
        }

        Interlocked.Increment(ref _verified);
        using var doc = JsonDocument.Parse(body);
        if (doc.RootElement.GetProperty("type").GetString() == "execution.completed")
        {
            _fanOut.Enqueue(arrived);
            Interlocked.Increment(ref _fanOutCount);
        }

        return Results.StatusCode(204);
    }

    private static DateTimeOffset? Time(JsonElement data, string name) =>
        data.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.TryGetDateTimeOffset(out var time) ? time : null;

    private bool Verify(string id, string timestamp, byte[] body, string signatures) => Verify(_key, id, timestamp, body, signatures);

    private static bool Verify(byte[] key, string id, string timestamp, byte[] body, string signatures)
    {
        if (id.Length == 0 || timestamp.Length == 0 || signatures.Length == 0)
        {
            return false;
        }

        var prefix = Encoding.UTF8.GetBytes($"{id}.{timestamp}.");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed, prefix.Length);
        var expected = HMACSHA256.HashData(key, signed);
        Span<byte> given = stackalloc byte[64];
        foreach (var signature in signatures.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (signature.StartsWith("v1,", StringComparison.Ordinal))
            {
                if (Convert.TryFromBase64String(signature[3..], given, out var written) && written == expected.Length
                    && CryptographicOperations.FixedTimeEquals(given[..written], expected))
                {
                    return true;
                }
            }
        }

        return false;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>An execution's created, started and completed times as the gateway reported them, and when its webhook arrived.</summary>
public sealed record DeliveredTimes(DateTimeOffset Created, DateTimeOffset Started, DateTimeOffset Completed, DateTimeOffset Arrived);
