using Microsoft.AspNetCore.Diagnostics;

namespace ModelRoute.Server.Http;

/// <summary>
/// A request the server could not read (broken framing, a body cut short) that reaches the exception
/// handler is the client's error: its own 4xx status as a problem, not a 500 with a logged stack trace.
/// Handled here, the exception handler writes no diagnostics for it (docs/api.md, "Bad input").
/// </summary>
public sealed class BadRequestExceptionHandler : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        // Kestrel reports a chunk size beyond 64 bits as an IOException around an OverflowException.
        var status = exception switch
        {
            BadHttpRequestException { StatusCode: >= 400 and < 500 } bad => bad.StatusCode,
            BadHttpRequestException or IOException { InnerException: OverflowException } => StatusCodes.Status400BadRequest,
            _ => 0,
        };
        if (status == 0 || httpContext.Response.HasStarted)
        {
            return false;
        }

        var problem = status switch
        {
            StatusCodes.Status400BadRequest => Problem.Validation("body", "The request could not be read (malformed framing or a body cut short)."),
            StatusCodes.Status413PayloadTooLarge => Problem.TooLarge("The request body is too large."),
            _ => new Problem(status, ErrorCodes.ValidationError, "The request could not be read."),
        };
        await problem.WriteAsync(httpContext);
        return true;
    }
}
