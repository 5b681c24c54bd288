using ModelRoute.Server.Providers;

namespace ModelRoute.Server.Routing;

/// <summary>The route for an execution's next attempt, or why there is none now.</summary>
public sealed record RouteChoice(RouteDefinition? Route, bool HeldBack)
{
    public static readonly RouteChoice Exhausted = new(null, false);
    public static readonly RouteChoice WaitForCircuit = new(null, true);
}

/// <summary>
/// Routing (docs/api.md#providers-and-routing): routes by priority, weighted among equals; a route that has used its
/// attempts is failed over to the next; a provider whose circuit is open is skipped. When the only
/// routes left are behind open circuits the execution waits rather than fails.
/// </summary>
public sealed class RoutePlanner(ProviderRegistry providers, IOptions<ModelRouteOptions> options)
{
    public RouteChoice Next(ModelDefinition model, IReadOnlyList<AttemptRecord> attempts, double roll)
    {
        var perRoute = options.Value.Dispatch.MaxAttemptsPerRoute;
        var waiting = false;
        foreach (var group in model.Routes.GroupBy(r => r.Priority).OrderBy(g => g.Key))
        {
            var live = group.Where(r => FailuresOn(r, attempts) < perRoute).ToList();
            var available = live.Where(r => providers.Find(r.Provider)?.IsAvailable == true).ToList();
            if (available.Count > 0)
            {
                return new RouteChoice(RouteSelector.Weighted(available, roll), false);
            }

            waiting |= live.Count > 0;
        }

        return waiting ? RouteChoice.WaitForCircuit : RouteChoice.Exhausted;
    }

    public static bool IsSame(RouteDefinition route, string? provider, string? providerModel) =>
        route.Provider == provider && route.ProviderModel == providerModel;

    private static int FailuresOn(RouteDefinition route, IReadOnlyList<AttemptRecord> attempts) =>
        attempts.Count(a => a.Error is not null && a.Provider == route.Provider && a.ProviderModel == route.ProviderModel);
}
