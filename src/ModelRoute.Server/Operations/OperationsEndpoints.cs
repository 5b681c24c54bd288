using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Operations;

public sealed record ModelView(string Id, string Object, string Modality, IReadOnlyDictionary<string, string> Pricing, int DefaultTimeoutSeconds, int MaxTimeoutSeconds);

public static class OperationsEndpoints
{
    public static void MapOperationsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "ok" })).WithTags("Operations").AllowAnonymous();
        app.MapGet("/readyz", async (IStoreHealth store, CancellationToken cancellationToken) =>
            await store.IsReadyAsync(cancellationToken)
                ? Results.Ok(new { status = "ready" })
                : Results.Json(new { status = "store unavailable" }, statusCode: 503))
            .WithTags("Operations").AllowAnonymous();
        app.MapMetrics();
    }

    public static void MapModelEndpoints(this RouteGroupBuilder v1) =>
        v1.MapGet("/models", (ModelCatalog catalog) => TypedResults.Ok(ListView<ModelView>.Of([.. catalog.All.Select(ToView)], false, null)))
            .WithTags("Models");

    internal static ModelView ToView(ModelDefinition m) =>
        new(m.Name, "model", m.Modality.ToString().ToLowerInvariant(), m.Price.ToView(), (int)m.DefaultTimeout.TotalSeconds, (int)m.MaxTimeout.TotalSeconds);
}
