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
        var received = 0;
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var verifier = new DeferredVerifier();
        app.MapPost("/{**path}", async (Microsoft.AspNetCore.Http.HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted);
            var headers = context.Request.Headers;
            if (verifier.Value is null)
            {
                return Microsoft.AspNetCore.Http.Results.StatusCode(503);
            }

            ExecutionEvent e;
            try
            {
                e = verifier.Value.VerifyEvent(headers[WebhookVerifier.IdHeader], headers[WebhookVerifier.TimestampHeader], headers[WebhookVerifier.SignatureHeader], body);
            }
            catch (WebhookVerificationException failure)
            {
                Output.Error($"rejected a delivery to {context.Request.Path}: {failure.Message}");
                return Microsoft.AspNetCore.Http.Results.Problem(failure.Message, statusCode: 400);
            }

            lock (this)
            {
                if (output.Json)
                {
                    Console.Out.WriteLine(Output.Serialize(e));
                }
                else
                {
                    Console.Out.WriteLine($"{Output.Time(e.CreatedAt)}  {e.Type,-22} {e.Data.Id}  {e.Data.Status}  (verified {e.Id})");
                }

                Console.Out.Flush();
            }

            if (maxEvents is { } max && Interlocked.Increment(ref received) >= max)
            {
                done.Cancel();
            }

            return Microsoft.AspNetCore.Http.Results.NoContent();
        });
        await app.StartAsync(cancellationToken);
        var local = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');

        string? endpointId = null;
        try
        {
            if (secrets.Length > 0)
            {
                verifier.Value = new WebhookVerifier(secrets);
                Status($"listening on {local}/ (verifying with the given secret{(secrets.Length > 1 ? "s" : "")})");
            }
            else if (useDefaultSecret)
            {
                verifier.Value = new WebhookVerifier(await client.GetDefaultWebhookSecretAsync(cancellationToken));
                Status($"listening on {local}/ (verifying with the account's default secret; submit with --webhook-url {local}/hook)");
            }
            else
            {
                var url = publicUrl ?? local + "/modelroute-listen";
                var endpoint = await client.CreateWebhookEndpointAsync(
                    new CreateWebhookEndpointRequest(url, events.Length == 0 ? null : events, Description: "modelroute webhooks listen"), cancellationToken);
                endpointId = endpoint.Id;
                verifier.Value = new WebhookVerifier(endpoint.Secret!);
                Status($"listening on {local}/ as endpoint {endpoint.Id} ({url}) for {string.Join(", ", endpoint.Events)}");
            }

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

            await app.StopAsync(CancellationToken.None);
        }

        return cancellationToken.IsCancellationRequested ? ExitCodes.Interrupted : ExitCodes.Ok;
    }

    /// <summary>Status lines go to stderr so that stdout carries only events.</summary>
    private static void Status(string text) => Console.Error.WriteLine("modelroute: " + text);

    private sealed class DeferredVerifier
    {
        public WebhookVerifier? Value { get; set; }
    }
}
