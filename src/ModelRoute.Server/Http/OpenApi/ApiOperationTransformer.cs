using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// Gives each operation the security requirement of its group's authorization and the errors every such operation
/// can meet, and declares every error response as <c>application/problem+json</c> with the shared Problem schema.
/// </summary>
internal sealed class ApiOperationTransformer : IOpenApiOperationTransformer
{
    public const string ProblemContentType = "application/problem+json";

    public Task TransformAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellationToken)
    {
        var metadata = context.Description.ActionDescriptor.EndpointMetadata;
        operation.Responses ??= [];
        ApiParameters.Describe(operation);
        ApiPathParameters.Describe(operation, context.Description.RelativePath);
        if (SchemeFor(metadata) is { } scheme)
        {
            operation.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(scheme, context.Document)] = [] }];
            AddError(operation, 401, "The key is missing, unknown, revoked or expired (UNAUTHENTICATED).");
            AddError(operation, 403, scheme == ApiDocumentTransformer.AdminScheme
                ? "The key is not the admin key (FORBIDDEN)."
                : "The account is disabled (ACCOUNT_DISABLED), or the key may not do this (FORBIDDEN).");
            AddError(operation, 503, "The store cannot be reached; retry after the Retry-After header (STORE_UNAVAILABLE).");
        }
        else
        {
            // Said outright, so that a generator does not apply a default scheme: no key is sent.
            operation.Security = [];
        }

        if (metadata.OfType<EnableRateLimitingAttribute>().Any())
        {
            AddError(operation, 429, "The key's polling budget is spent; retry after the Retry-After header (RATE_LIMITED).");
        }

        if (operation.RequestBody is not null)
        {
            AddError(operation, 400, "The body is not valid JSON or a field is invalid (VALIDATION_ERROR, with the field).");
            AddError(operation, 413, "The body is larger than the limit (PAYLOAD_TOO_LARGE).");
            AddError(operation, 415, "The body is not application/json (UNSUPPORTED_MEDIA_TYPE).");
        }

        foreach (var (status, response) in operation.Responses)
        {
            // An error answers with a problem, except where the endpoint declares a JSON body of its own (readiness).
            if (status.Length == 3 && status[0] is '4' or '5' && response is OpenApiResponse concrete
                && (concrete.Content is not { Count: > 0 } content || content.ContainsKey(ProblemContentType)))
            {
                concrete.Content = new Dictionary<string, OpenApiMediaType>
                {
                    [ProblemContentType] = new() { Schema = new OpenApiSchemaReference(ApiDocumentTransformer.ProblemSchema, context.Document) },
                };
                if (string.IsNullOrEmpty(concrete.Description) || concrete.Description == Problem.TitleFor(int.Parse(status, CultureInfo.InvariantCulture)))
                {
                    concrete.Description = DefaultDescription(status);
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>The scheme a request needs: none where the endpoint allows anonymous callers, else its group's policy's.</summary>
    internal static string? SchemeFor(IList<object> metadata)
    {
        if (metadata.OfType<IAllowAnonymous>().Any())
        {
            return null;
        }

        var policies = metadata.OfType<IAuthorizeData>().Select(a => a.Policy).ToList();
        return policies.Contains(Policies.Admin) ? ApiDocumentTransformer.AdminScheme
            : policies.Contains(Policies.Account) ? ApiDocumentTransformer.BearerScheme
            : policies.Count > 0 ? ApiDocumentTransformer.BearerScheme
            : null;
    }

    private static void AddError(OpenApiOperation operation, int status, string description)
    {
        var key = status.ToString(CultureInfo.InvariantCulture);
        if (!operation.Responses!.ContainsKey(key))
        {
            operation.Responses[key] = new OpenApiResponse { Description = description };
        }
    }

    private static string DefaultDescription(string status) => status switch
    {
        "400" => "A field is invalid (VALIDATION_ERROR, with the field).",
        "402" => "The balance cannot cover the hold (INSUFFICIENT_BALANCE), or the key would pass its spend limit (KEY_SPEND_LIMIT).",
        "404" => "There is no such resource for this account (NOT_FOUND).",
        "409" => "The resource is not in a state that allows this (INVALID_STATE).",
        "413" => "The body is larger than the limit (PAYLOAD_TOO_LARGE).",
        "422" => "Well-formed but refused; the code says why: IDEMPOTENCY_KEY_REUSED, COST_CAP_EXCEEDED or WEBHOOK_URL_NOT_ALLOWED.",
        "429" => "Too many requests; retry after the Retry-After header (RATE_LIMITED).",
        _ => Problem.TitleFor(int.Parse(status, CultureInfo.InvariantCulture)) + ".",
    };
}
