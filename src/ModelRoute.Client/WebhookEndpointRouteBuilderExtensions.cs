using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ModelRoute.Client;

/// <summary>Maps an ASP.NET Core endpoint that receives the gateway's webhooks, verifies them and hands over typed events.</summary>
public static class WebhookEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>POST {pattern}</c>: verifies the Standard Webhooks signature with <paramref name="verifier"/>, answers 400 when it
    /// does not check out, otherwise calls <paramref name="handler"/> and answers 204 (a handler exception answers 500, so
    /// the gateway retries). Delivery is at least once: use <see cref="ExecutionEvent.Id"/> to drop duplicates.
    /// </summary>
    /// <param name="endpoints">The route builder.</param>
    /// <param name="pattern">The route, e.g. <c>/webhooks/modelroute</c>.</param>
    /// <param name="verifier">Verifies with the endpoint's (or the default) secret.</param>
    /// <param name="handler">Receives each verified event.</param>
    /// <returns>The endpoint convention builder.</returns>
    public static RouteHandlerBuilder MapModelRouteWebhooks(
        this IEndpointRouteBuilder endpoints, string pattern, WebhookVerifier verifier, Func<ExecutionEvent, HttpContext, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(verifier);
        ArgumentNullException.ThrowIfNull(handler);
        return endpoints.MapPost(pattern, async (HttpContext context) =>
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
            var headers = context.Request.Headers;
            ExecutionEvent e;
            try
            {
                e = verifier.VerifyEvent(headers[WebhookVerifier.IdHeader], headers[WebhookVerifier.TimestampHeader], headers[WebhookVerifier.SignatureHeader], body);
            }
            catch (WebhookVerificationException failure)
            {
                return Results.Problem(failure.Message, statusCode: StatusCodes.Status400BadRequest);
            }

            await handler(e, context).ConfigureAwait(false);
            return Results.NoContent();
        }).DisableAntiforgery();
    }

    /// <summary>Maps a verified webhook endpoint with one secret; see the overload taking a <see cref="WebhookVerifier"/>.</summary>
    /// <param name="endpoints">The route builder.</param>
    /// <param name="pattern">The route.</param>
    /// <param name="secret">The signing secret (<c>whsec_…</c>).</param>
    /// <param name="handler">Receives each verified event.</param>
    /// <returns>The endpoint convention builder.</returns>
    public static RouteHandlerBuilder MapModelRouteWebhooks(this IEndpointRouteBuilder endpoints, string pattern, string secret, Func<ExecutionEvent, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return endpoints.MapModelRouteWebhooks(pattern, new WebhookVerifier(secret), (e, _) => handler(e));
    }
}
