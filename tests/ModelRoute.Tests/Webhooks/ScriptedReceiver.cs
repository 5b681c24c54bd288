using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ModelRoute.Tests.Webhooks;

/// <summary>A loopback webhook receiver whose answer (status, headers and body) each test writes itself.</summary>
public sealed class ScriptedReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ScriptedReceiver(WebApplication app) => _app = app;

    public Func<HttpContext, Task> Answer { get; set; } = _ => Task.CompletedTask;

    public string Url { get; private set; } = "";

    public static async Task<ScriptedReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new ScriptedReceiver(app);
        app.Run(async context =>
        {
            using (var reader = new StreamReader(context.Request.Body))
            {
                await reader.ReadToEndAsync(context.RequestAborted);
            }

            await receiver.Answer(context);
        });
        await app.StartAsync();
        receiver.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";
        return receiver;
    }

    /// <summary>Answers <paramref name="status"/> with <paramref name="body"/> (with its length) in one write.</summary>
    public static async Task AnswerAsync(HttpContext context, int status, byte[] body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    public static Task AnswerAsync(HttpContext context, int status, string body) => AnswerAsync(context, status, Encoding.UTF8.GetBytes(body));

    /// <summary>Sends the headers and the start of a body, then nothing more until the client goes away.</summary>
    public static async Task NeverEndingAsync(HttpContext context, int status)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain";
        await context.Response.Body.WriteAsync("partial answer"u8.ToArray(), context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
        await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
