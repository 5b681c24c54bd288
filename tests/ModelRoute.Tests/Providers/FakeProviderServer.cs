using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ModelRoute.Tests.Providers;

/// <summary>One request as a fake provider saw it: headers by lower-case name, the body whole.</summary>
public sealed record FakeRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    public string? Authorization => Headers.GetValueOrDefault("authorization");
}

/// <summary>A scripted answer: status, raw body and headers, given to the next <see cref="Times"/> authorized requests.</summary>
public sealed record FakeFailure(int Status, string Body, IReadOnlyDictionary<string, string>? Headers = null, int Times = 1);

/// <summary>
/// The HTTP plumbing every fake provider shares: a real Kestrel on a loopback port running the fake's handler,
/// requests read and recorded whole, answers written with their headers.
/// </summary>
public sealed class FakeProviderServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private FakeProviderServer(WebApplication app, string baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    /// <summary>http://127.0.0.1:port, no trailing slash.</summary>
    public string BaseUrl { get; }

    /// <summary>A client for the fake's own calls (webhooks to the gateway); only with <c>withHttpClient</c>.</summary>
    public HttpClient CreateClient() => _app.Services.GetRequiredService<IHttpClientFactory>().CreateClient();

    public static async Task<FakeProviderServer> StartAsync(RequestDelegate handler, bool withHttpClient = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        if (withHttpClient)
        {
            builder.Services.AddHttpClient();
        }

        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return new FakeProviderServer(app, address);
    }

    /// <summary>The request whole, recorded under <paramref name="path"/> (the request's path by default).</summary>
    public static async Task<FakeRequest> ReadAsync(HttpContext context, string? path = null)
    {
        using var reader = new StreamReader(context.Request.Body);
        var body = await reader.ReadToEndAsync();
        var headers = context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString());
        return new FakeRequest(context.Request.Method, path ?? context.Request.Path.Value ?? "", headers, body);
    }

    /// <summary>Writes an answer: its extra headers, status, content type and body.</summary>
    public static async Task WriteAsync(
        HttpContext context, int status, string body, string contentType = "application/json", IReadOnlyDictionary<string, string>? headers = null)
    {
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            context.Response.Headers[name] = value;
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = contentType;
        await context.Response.WriteAsync(body);
    }

    /// <summary>POSTs a webhook as the provider does; what the gateway answered (status 0 and the error when it could not be reached).</summary>
    public async Task<(string Url, int Status, string Body)> PostWebhookAsync(string url, string body, IEnumerable<KeyValuePair<string, string>> headers)
    {
        try
        {
            using var client = CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            foreach (var (name, value) in headers)
            {
                request.Headers.Add(name, value);
            }

            using var response = await client.SendAsync(request);
            return (url, (int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException ex)
        {
            return (url, 0, ex.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>Scripted failures in order, each for its <see cref="FakeFailure.Times"/> requests.</summary>
public sealed class FakeFailureScript
{
    private readonly ConcurrentQueue<FakeFailure> _script = new();
    private int _remainingOfHead;

    public void Enqueue(FakeFailure failure) => _script.Enqueue(failure);

    public void Clear()
    {
        lock (_script)
        {
            _script.Clear();
            _remainingOfHead = 0;
        }
    }

    /// <summary>The failure for this request, or null for a normal answer.</summary>
    public FakeFailure? Take()
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
}
