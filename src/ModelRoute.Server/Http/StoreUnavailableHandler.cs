using Microsoft.AspNetCore.Diagnostics;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Http;

/// <summary>
/// A request that failed because the store cannot be reached answers 503 STORE_UNAVAILABLE with Retry-After, and its
/// exception is not logged: <see cref="StoreAvailability"/> writes one line when the outage begins and one when it
/// ends (docs/deploy.md). Every other exception goes on to the default handler (500, logged).
/// </summary>
public sealed class StoreUnavailableHandler(StoreAvailability availability) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext context, Exception exception, CancellationToken cancellationToken)
    {
        if (context.Response.HasStarted || !availability.Report(exception))
        {
            return false;
        }

        var seconds = (int)Math.Ceiling(StoreAvailability.RetryAfter.TotalSeconds);
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await new Problem(503, ErrorCodes.StoreUnavailable, $"The store cannot be reached just now; nothing was changed. Retry after {seconds} s (a submission with the same idempotency_key).")
            .WriteAsync(context);
        return true;
    }
}
