namespace ModelRoute.Server.Routing;

/// <summary>Picks a route: the best priority first, weighted among equals (docs/api.md#providers-and-routing).</summary>
public static class RouteSelector
{
    /// <param name="roll">A value in [0, 1) that decides among routes of equal priority.</param>
    public static RouteDefinition Pick(ModelDefinition model, double roll)
    {
        var best = model.Routes[0].Priority;
        return Weighted([.. model.Routes.TakeWhile(r => r.Priority == best)], roll);
    }

    /// <summary>One of <paramref name="candidates"/>, each as likely as its weight.</summary>
    public static RouteDefinition Weighted(IReadOnlyList<RouteDefinition> candidates, double roll)
    {
        var target = roll * candidates.Sum(r => r.Weight);
        foreach (var route in candidates)
        {
            target -= route.Weight;
            if (target < 0)
            {
                return route;
            }
        }

        return candidates[^1];
    }
}
