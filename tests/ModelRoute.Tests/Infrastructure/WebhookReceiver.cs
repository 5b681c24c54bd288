using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>One request as a receiver saw it.</summary>
public sealed record ReceivedWebhook(string Path, IReadOnlyDictionary<string, string> Headers, string Body, DateTimeOffset ReceivedAt)
{
    public string Id => Headers["webhook-id"];

    public string Signature => Headers["webhook-signature"];

    public long Timestamp => long.Parse(Headers["webhook-timestamp"], System.Globalization.CultureInfo.InvariantCulture);

    public System.Text.Json.JsonElement Json => System.Text.Json.JsonDocument.Parse(Body).RootElement;
}

/// <summary>How the receiver answers one request: a status, optional headers and body, or a delay before answering.</summary>
public sealed record ReceiverAnswer(int Status, TimeSpan Delay = default, IReadOnlyDictionary<string, string>? Headers = null)
{
    public static readonly ReceiverAnswer Ok = new(200);

    /// <summary>The response body, sent as text/plain with its length in one write; null: an empty body.</summary>
    public byte[]? Body { get; init; }

    /// <summary>Sends the headers and the start of a body, then nothing more until the client goes away.</summary>
    public bool NeverEnds { get; init; }

    public static ReceiverAnswer Text(int status, byte[] body) => new(status) { Body = body };

    public static ReceiverAnswer Text(int status, string body) => Text(status, System.Text.Encoding.UTF8.GetBytes(body));

    public static ReceiverAnswer NeverEnding(int status) => new(status) { NeverEnds = true };
}

/// <summary>
/// A real HTTP server on a loopback port that records every webhook it gets and answers as the
/// test scripts it (by default 200): a status, headers, a body, a delay, or a body that never ends.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _count;

    private WebhookReceiver(WebApplication app) => _app = app;

    public ConcurrentQueue<ReceivedWebhook> Received { get; } = new();

    /// <summary>Decides the answer to the n-th request (from 0); default: 200.</summary>
    public Func<int, ReceivedWebhook, ReceiverAnswer> Answer { get; set; } = (_, _) => ReceiverAnswer.Ok;

    public string BaseUrl { get; private set; } = "";

    public string Url(string path = "/hook") => BaseUrl + path;

    public static async Task<WebhookReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.Run(receiver.HandleAsync);
        await app.StartAsync();
        receiver.BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return receiver;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        var received = new ReceivedWebhook(context.Request.Path, headers, body, DateTimeOffset.UtcNow);
        var answer = Answer(Interlocked.Increment(ref _count) - 1, received);
        Received.Enqueue(received);
        if (answer.Delay > TimeSpan.Zero)
        {
            await Task.Delay(answer.Delay, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        }

        foreach (var (name, value) in answer.Headers ?? new Dictionary<string, string>())
        {
            context.Response.Headers[name] = value;
        }

        context.Response.StatusCode = answer.Status;
        if (answer.NeverEnds)
        {
            context.Response.ContentType = "text/plain";
            await context.Response.Body.WriteAsync("partial answer"u8.ToArray(), context.RequestAborted);
            await context.Response.Body.FlushAsync(context.RequestAborted);
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        else if (answer.Body is { } bytes)
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            context.Response.ContentLength = bytes.Length;
            await context.Response.Body.WriteAsync(bytes, context.RequestAborted);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
