using Microsoft.AspNetCore.OpenApi;
using Scalar.AspNetCore;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// The OpenAPI document at /openapi/v1.json and the reference page at /docs that renders it
/// (docs/api.md#openapi-and-the-reference-page).
/// </summary>
public static class ApiReference
{
    public const string DocumentPath = "/openapi/{documentName}.json";
    public const string PagePath = "/docs";

    /// <summary>The document with its transformers: security schemes, problems, schema fixes and examples.</summary>
    public static IServiceCollection AddModelRouteOpenApi(this IServiceCollection services) =>
        services.AddOpenApi(options =>
        {
            options.AddDocumentTransformer<ApiDocumentTransformer>();
            options.AddOperationTransformer<ApiOperationTransformer>();
        });

    /// <summary>
    /// Maps the document and the page. The page's script is the one bundled in Scalar.AspNetCore and served from
    /// /docs/scalar.js; its web fonts, telemetry and AI agent are off, so the page loads nothing from another host.
    /// </summary>
    public static void MapModelRouteApiReference(this WebApplication app)
    {
        app.MapOpenApi(DocumentPath);
        app.MapScalarApiReference(PagePath, options =>
        {
            options.WithTitle("ModelRoute API reference")
                .WithOpenApiRoutePattern(DocumentPath)
                .DisableDefaultFonts()
                .DisableTelemetry()
                .DisableAgent()
                .DisableMcp();
        }).AllowAnonymous();
    }
}
