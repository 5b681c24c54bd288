using System.Reflection;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// The document as a whole: what the API is, its two security schemes, its tags, the shared Problem schema with
/// every error code, and the schema fixes of <see cref="ApiSchemaRules"/> (docs/api.md#openapi-and-the-reference-page).
/// </summary>
internal sealed class ApiDocumentTransformer : IOpenApiDocumentTransformer
{
    public const string BearerScheme = "bearerAuth";
    public const string AdminScheme = "adminKey";
    public const string ProblemSchema = "Problem";

    /// <summary>Every <c>code</c> a problem can carry: the constants of <see cref="ErrorCodes"/>, in their order.</summary>
    public static IReadOnlyList<string> ErrorCodeValues { get; } = [.. typeof(ErrorCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)];

    private static readonly Dictionary<string, string> TagDescriptions = new(StringComparer.Ordinal)
    {
        ["Executions"] = "Submit model executions, follow them (get, wait, events) and cancel them.",
        ["Webhooks"] = "Webhook endpoints, their signing secrets and the deliveries made to them.",
        ["Account"] = "The calling account's balance, ledger and API keys.",
        ["Usage"] = "What an account ran and what it was charged, grouped by model, day or key.",
        ["Models"] = "The models this gateway serves, with their prices and timeouts.",
        ["Admin"] = "The operator's endpoints, called with the admin key: accounts, keys, credits, limits, providers.",
        ["Operations"] = "Health, readiness and metrics for orchestrators and monitoring.",
        ["Provider callbacks"] = "Where providers report the end of a job; verified by each provider's signature, not by a key.",
    };

    public Task TransformAsync(OpenApiDocument document, OpenApiDocumentTransformerContext context, CancellationToken cancellationToken)
    {
        document.Info = new OpenApiInfo
        {
            Title = "ModelRoute API",
            Version = "v1",
            Description = "A self-hosted asynchronous gateway to AI model providers: submit an execution, then wait, poll, "
                + "stream its events or receive a webhook when it ends. Money is in USD as decimal strings. "
                + "Every error is an RFC 9457 problem (application/problem+json) with a stable `code`.",
            License = new OpenApiLicense { Name = "MIT", Identifier = "MIT" },
        };
        foreach (var server in document.Servers ?? [])
        {
            server.Url = server.Url?.TrimEnd('/');
        }

        document.Components ??= new OpenApiComponents();
        document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>(StringComparer.Ordinal)
        {
            [BearerScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "An account's API key (`mr_live_…`), sent as `Authorization: Bearer <key>`.",
            },
            [AdminScheme] = new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "The operator's admin key (the `ModelRoute:AdminKey` setting), sent as `Authorization: Bearer <key>`.",
            },
        };
        document.Components.Schemas ??= new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal);
        document.Components.Schemas[ProblemSchema] = Problem();
        ApiSchemaRules.Apply(document);
        document.Tags = new HashSet<OpenApiTag>(UsedTags(document).Select(name => new OpenApiTag
        {
            Name = name,
            Description = TagDescriptions.GetValueOrDefault(name, name),
        }));
        return Task.CompletedTask;
    }

    private static IEnumerable<string> UsedTags(OpenApiDocument document) =>
        ApiSchemaRules.Operations(document)
            .SelectMany(o => o.Tags ?? new HashSet<OpenApiTagReference>())
            .Select(t => t.Name ?? t.Reference.Id)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal)
            .OrderBy(name => TagDescriptions.Keys.ToList().IndexOf(name) is var i && i < 0 ? int.MaxValue : i);

    /// <summary>The RFC 9457 problem every error response carries, with our <c>code</c> and, for a bad field, its name.</summary>
    private static OpenApiSchema Problem() => new()
    {
        Type = JsonSchemaType.Object,
        Description = "An RFC 9457 problem. `code` is stable and meant for programs; `detail` is for people.",
        Required = new HashSet<string>(StringComparer.Ordinal) { "type", "title", "status", "code" },
        Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
        {
            ["type"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "A URI naming the kind of problem." },
            ["title"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The HTTP status's title." },
            ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status." },
            ["detail"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "What went wrong, for a person." },
            ["instance"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The request's path, where given." },
            ["code"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Description = "Our error code (docs/api.md#errors-you-will-meet).",
                Enum = [.. ErrorCodeValues.Select(c => (JsonNode)JsonValue.Create(c))],
            },
            ["field"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The offending field, for VALIDATION_ERROR." },
            ["trace_id"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Pattern = "^[0-9a-f]{32}$",
                Description = "The request's trace id (the submitter's when it sent traceparent), 32 hex digits as an execution's trace_id; absent when the server refused the request before the gateway read it.",
            },
        },
        Examples =
        [
            new JsonObject
            {
                ["type"] = "https://modelroute.dev/problems/validation-error",
                ["title"] = "Bad Request",
                ["status"] = 400,
                ["detail"] = "'idempotency_key' is required on every submission.",
                ["code"] = ErrorCodes.ValidationError,
                ["field"] = "idempotency_key",
                ["trace_id"] = "4bf92f3577b34da6a3ce929d0e0e4736",
            },
        ],
    };
}
