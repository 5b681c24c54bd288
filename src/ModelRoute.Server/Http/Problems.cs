using Microsoft.AspNetCore.Mvc;

namespace ModelRoute.Server.Http;

/// <summary>Our error codes (docs/api.md#endpoints).</summary>
public static class ErrorCodes
{
    public const string ValidationError = "VALIDATION_ERROR";
    public const string Unauthenticated = "UNAUTHENTICATED";
    public const string Forbidden = "FORBIDDEN";
    public const string NotFound = "NOT_FOUND";
    public const string InsufficientBalance = "INSUFFICIENT_BALANCE";
    public const string InvalidState = "INVALID_STATE";
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";
    public const string ModelNotFound = "MODEL_NOT_FOUND";
    public const string IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED";
    public const string WebhookUrlNotAllowed = "WEBHOOK_URL_NOT_ALLOWED";
    public const string CostCapExceeded = "COST_CAP_EXCEEDED";
    public const string RateLimited = "RATE_LIMITED";
    public const string MethodNotAllowed = "METHOD_NOT_ALLOWED";
    public const string UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE";
    public const string InternalError = "INTERNAL_ERROR";
    public const string StoreUnavailable = "STORE_UNAVAILABLE";
    public const string AccountDisabled = "ACCOUNT_DISABLED";
    public const string KeySpendLimit = "KEY_SPEND_LIMIT";
}

/// <summary>An RFC 9457 problem with our <c>code</c> (and the offending <c>field</c> where there is one).</summary>
public sealed record Problem(int Status, string Code, string Detail, string? Field = null)
{
    public static Problem Validation(string field, string detail) => new(400, ErrorCodes.ValidationError, detail, field);

    public static Problem NotFound(string what) => new(404, ErrorCodes.NotFound, $"{what} was not found.");

    public static Problem TooLarge(string detail) => new(413, ErrorCodes.PayloadTooLarge, detail);

    public ProblemDetails ToProblemDetails()
    {
        var details = new ProblemDetails
        {
            Type = "https://modelroute.dev/problems/" + Code.ToLowerInvariant().Replace('_', '-'),
            Title = TitleFor(Status),
            Status = Status,
            Detail = Detail,
        };
        details.Extensions["code"] = Code;
        if (Field is not null)
        {
            details.Extensions["field"] = Field;
        }

        NameTrace(details);
        return details;
    }

    /// <summary>
    /// Sets <c>trace_id</c> to the request's trace id, 32 hex digits as an execution's (docs/api.md#errors-you-will-meet),
    /// in place of ASP.NET Core's whole W3C activity id; none outside a trace.
    /// </summary>
    public static void NameTrace(ProblemDetails details)
    {
        if (System.Diagnostics.Activity.Current is { IdFormat: System.Diagnostics.ActivityIdFormat.W3C } activity)
        {
            details.Extensions[TraceIdKey] = activity.TraceId.ToHexString();
        }
        else
        {
            details.Extensions.Remove(TraceIdKey);
        }
    }

    /// <summary>ASP.NET Core's <c>traceId</c> under the API's snake_case naming, as its problem writer names it.</summary>
    private const string TraceIdKey = "trace_id";

    public IResult ToResult() => TypedResults.Problem(ToProblemDetails());

    /// <summary>Writes the problem straight to a response, for middleware that runs outside endpoints.</summary>
    public Task WriteAsync(HttpContext context)
    {
        context.Response.StatusCode = Status;
        return context.Response.WriteAsJsonAsync(ToProblemDetails(), (System.Text.Json.JsonSerializerOptions?)null, "application/problem+json", context.RequestAborted);
    }

    public static string CodeFor(int status) => status switch
    {
        400 => ErrorCodes.ValidationError,
        401 => ErrorCodes.Unauthenticated,
        403 => ErrorCodes.Forbidden,
        404 => ErrorCodes.NotFound,
        402 => ErrorCodes.InsufficientBalance,
        405 => ErrorCodes.MethodNotAllowed,
        409 => ErrorCodes.InvalidState,
        413 => ErrorCodes.PayloadTooLarge,
        415 => ErrorCodes.UnsupportedMediaType,
        429 => ErrorCodes.RateLimited,
        _ => ErrorCodes.InternalError,
    };

    public static string TitleFor(int status) => status switch
    {
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
}
