using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
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
        app.MapGet("/metrics", (GatewayMetrics metrics) => Results.Text(metrics.Render(), "text/plain; version=0.0.4"))
            .WithTags("Operations").AllowAnonymous();
    }

    public static void MapModelEndpoints(this RouteGroupBuilder v1) =>
        v1.MapGet("/models", (ModelCatalog catalog) => TypedResults.Ok(ListView<ModelView>.Of([.. catalog.All.Select(ToView)], false, null)))
            .WithTags("Models");

    private static ModelView ToView(ModelDefinition m)
    {
        var pricing = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string name, long micros)
        {
            if (micros > 0)
            {
                pricing[name] = Money.Format(micros);
            }
        }

        Add("input_per_mtok", m.Price.InputPerMTok);
        Add("output_per_mtok", m.Price.OutputPerMTok);
        Add("cached_input_per_mtok", m.Price.CachedInputPerMTok ?? 0);
        Add("per_image", m.Price.PerImage);
        Add("per_second", m.Price.PerSecond);
        Add("per_request", m.Price.PerRequest);
        return new ModelView(m.Name, "model", m.Modality.ToString().ToLowerInvariant(), pricing, (int)m.DefaultTimeout.TotalSeconds, (int)m.MaxTimeout.TotalSeconds);
    }
}
