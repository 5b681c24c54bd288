using System.Net;

namespace ModelRoute.Client;

/// <summary>The gateway answered with a problem (RFC 9457); <see cref="Code"/> says which.</summary>
public sealed class ModelRouteApiException : Exception
{
    /// <summary>Creates the exception for a problem answer.</summary>
    /// <param name="statusCode">The HTTP status.</param>
    /// <param name="problem">The problem body (or one made from the status when the body was not a problem).</param>
    /// <param name="retryAfter">The <c>Retry-After</c> of the answer, if any.</param>
    public ModelRouteApiException(HttpStatusCode statusCode, ApiProblem problem, TimeSpan? retryAfter = null)
        : base($"{(int)statusCode} {problem.Code}: {problem.Detail ?? problem.Title}{(problem.Field is null ? "" : $" (field '{problem.Field}')")}")
    {
        StatusCode = statusCode;
        Problem = problem;
        RetryAfter = retryAfter;
    }

    /// <summary>The HTTP status.</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The problem as sent.</summary>
    public ApiProblem Problem { get; }

    /// <summary>The gateway's error code, e.g. <c>VALIDATION_ERROR</c>, <c>NOT_FOUND</c>, <c>RATE_LIMITED</c>.</summary>
    public string Code => Problem.Code ?? "UNKNOWN";

    /// <summary>The offending field, when there is one.</summary>
    public string? Field => Problem.Field;

    /// <summary>The human-readable detail.</summary>
    public string? Detail => Problem.Detail;

    /// <summary>The <c>Retry-After</c> of the answer, if any.</summary>
    public TimeSpan? RetryAfter { get; }
}
