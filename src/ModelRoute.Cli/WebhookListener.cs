using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRoute.Client;

namespace ModelRoute.Cli;

/// <summary>
/// <c>modelroute webhooks listen</c>: a local receiver (like <c>stripe listen</c>). It registers a temporary endpoint pointing
/// at itself (deleted on exit), verifies every delivery with its secret and prints the events.
/// </summary>
internal sealed class WebhookListener(ModelRouteClient client, Output output)
{
    public async Task<int> RunAsync(
        int port, string[] events, string[] secrets, bool useDefaultSecret, string? publicUrl, int? maxEvents, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        await using var app = builder.Build();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var receiver = new Receiver(output, maxEvents, done);
        Func<Microsoft.AspNetCore.Http.HttpContext, Task<Microsoft.AspNetCore.Http.IResult>> receive = receiver.ReceiveAsync; // a Delegate, so the IResult is written
        app.MapPost("/{**path}", receive);
        await app.StartAsync(cancellationToken);
        var local = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');

        string? endpointId = null;
        try
        {
            endpointId = await VerifyWithAsync(receiver, local, events, secrets, useDefaultSecret, publicUrl, cancellationToken);
            Status("ready; Ctrl+C to stop");
            try
            {
                await Task.Delay(Timeout.Infinite, done.Token);
            }
            catch (OperationCanceledException) when (done.IsCancellationRequested)
            {
            }
        }
        finally
        {
            if (endpointId is not null)
            {
                await DeleteEndpointAsync(endpointId);
            }

            await app.StopAsync(CancellationToken.None);
        }

        return cancellationToken.IsCancellationRequested ? ExitCodes.Interrupted : ExitCodes.Ok;
    }

    /// <summary>Gives the receiver its secret: the given ones, the account's default, or a temporary endpoint's (whose id is returned).</summary>
    private async Task<string?> VerifyWithAsync(
        Receiver receiver, string local, string[] events, string[] secrets, bool useDefaultSecret, string? publicUrl, CancellationToken cancellationToken)
    {
        if (secrets.Length > 0)
        {
            receiver.Verifier = new WebhookVerifier(secrets);
            Status($"listening on {local}/ (verifying with the given secret{(secrets.Length > 1 ? "s" : "")})");
            return null;
        }

        if (useDefaultSecret)
        {
            receiver.Verifier = new WebhookVerifier(await client.GetDefaultWebhookSecretAsync(cancellationToken));
            Status($"listening on {local}/ (verifying with the account's default secret; submit with --webhook-url {local}/hook)");
            return null;
        }

        var url = publicUrl ?? local + "/modelroute-listen";
        var endpoint = await client.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest(url, events.Length == 0 ? null : events, Description: "modelroute webhooks listen"), cancellationToken);
        receiver.Verifier = new WebhookVerifier(endpoint.Secret!);
        Status($"listening on {local}/ as endpoint {endpoint.Id} ({url}) for {string.Join(", ", endpoint.Events)}");
        return endpoint.Id;
    }

    private async Task DeleteEndpointAsync(string endpointId)
    {
        try
        {
            await client.DeleteWebhookEndpointAsync(endpointId, CancellationToken.None);
            Status($"deleted endpoint {endpointId}");
        }
        catch (Exception e) when (e is ModelRouteApiException or HttpRequestException)
        {
            Output.Error($"could not delete endpoint {endpointId}: {e.Message}");
        }
    }

    /// <summary>Status lines go to stderr so that stdout carries only events.</summary>
    private static void Status(string text) => Console.Error.WriteLine("modelroute: " + text);

    /// <summary>Verifies and prints each delivery; answers 503 until it has its secret, and stops the listener after <c>maxEvents</c>.</summary>
    private sealed class Receiver(Output output, int? maxEvents, CancellationTokenSource done)
    {
        private readonly Lock _print = new();
        private int _received;

        public WebhookVerifier? Verifier { get; set; }

        public async Task<Microsoft.AspNetCore.Http.IResult> ReceiveAsync(Microsoft.AspNetCore.Http.HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var headers = context.Request.Headers;
            if (Verifier is not { } verifier)
            {
                return Microsoft.AspNetCore.Http.Results.StatusCode(503);
            }

            ExecutionEvent e;
            try
            {
                e = verifier.VerifyEvent(headers[WebhookVerifier.IdHeader], headers[WebhookVerifier.TimestampHeader], headers[WebhookVerifier.SignatureHeader], body);
            }
            catch (WebhookVerificationException failure)
            {
                Output.Error($"rejected a delivery to {context.Request.Path}: {failure.Message}");
                return Microsoft.AspNetCore.Http.Results.Problem(failure.Message, statusCode: 400);
            }

            Print(e);
            if (maxEvents is { } max && Interlocked.Increment(ref _received) >= max)
            {
                done.Cancel();
            }

            return Microsoft.AspNetCore.Http.Results.NoContent();
        }

        private void Print(ExecutionEvent e)
        {
            lock (_print)
            {
                Console.Out.WriteLine(output.Json ? Output.Serialize(e) : $"{Output.Time(e.CreatedAt)}  {e.Type,-22} {e.Data.Id}  {e.Data.Status}  (verified {e.Id})");
                Console.Out.Flush();
            }
        }
    }
}
