using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Operations;

public sealed record ModelView(string Id, string Object, string Modality, IReadOnlyDictionary<string, string> Pricing, int DefaultTimeoutSeconds, int MaxTimeoutSeconds);

public static class OperationsEndpoints
{
    public static void MapOperationsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new { status = "ok" })).WithTags("Operations").AllowAnonymous()
            .WithName("getHealth").WithSummary("Whether this node's process is up")
            .WithDescription("Liveness: 200 with `{\"status\":\"ok\"}` while the process serves requests; it does not look at the store.");
        app.MapGet("/readyz", async (IStoreHealth store, CancellationToken cancellationToken) =>
            await store.IsReadyAsync(cancellationToken)
                ? Results.Ok(new { status = "ready" })
                : Results.Json(new { status = "store unavailable" }, statusCode: 503))
            .WithTags("Operations").AllowAnonymous()
            .WithName("getReadiness").WithSummary("Whether this node can serve: its store answers")
            .WithDescription("Readiness: 200 `{\"status\":\"ready\"}` when the store answers, else 503 `{\"status\":\"store unavailable\"}`.")
            .Produces<Http.OpenApi.ReadinessView>(200).Produces<Http.OpenApi.ReadinessView>(503);
        app.MapMetrics();
    }

    public static void MapModelEndpoints(this RouteGroupBuilder v1) =>
        v1.MapGet("/models", (ModelCatalog catalog) => TypedResults.Ok(ListView<ModelView>.Of([.. catalog.All.Select(ToView)], false, null)))
            .WithTags("Models")
            .WithName("listModels").WithSummary("List the models this gateway serves")
            .WithDescription("Every model with its modality, prices (USD decimal strings) and its default and maximum timeout in seconds.");

    internal static ModelView ToView(ModelDefinition m) =>
        new(m.Name, "model", m.Modality.ToString().ToLowerInvariant(), m.Price.ToView(), (int)m.DefaultTimeout.TotalSeconds, (int)m.MaxTimeout.TotalSeconds);
}
