using ModelRoute.Server.Billing;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Routing;

public sealed class RouteSelectorTests
{
    /// <summary>Builds the model through the catalog, as the gateway does, from routes in configuration order.</summary>
    private static ModelDefinition ModelWithRoutes(params (string Provider, int Priority, int Weight)[] routes)
    {
        var options = new ModelRouteOptions();
        foreach (var provider in routes.Select(r => r.Provider).Distinct())
        {
            options.Providers[provider] = new ProviderOptions { Kind = "simulator" };
        }

        options.Models["x/y"] = new ModelOptions
        {
            Modality = "text",
            Pricing = new(StringComparer.OrdinalIgnoreCase) { ["InputPerMTok"] = "1" },
            Routes = [.. routes.Select(r => new RouteOptions { Provider = r.Provider, Model = r.Provider + "-model", Priority = r.Priority, Weight = r.Weight })],
        };
        var (catalog, errors) = ModelCatalog.Build(options);
        errors.ShouldBeEmpty();
        return catalog!.Find("x/y")!;
    }

    [Fact]
    public void A_single_route_is_always_picked()
    {
        var model = ModelWithRoutes(("only", 0, 1));

        foreach (var roll in new[] { 0.0, 0.5, 0.999999 })
        {
            RouteSelector.Pick(model, roll).Provider.ShouldBe("only");
        }
    }

    [Theory]
    [InlineData(0.0, "a")]
    [InlineData(0.2, "a")]
    [InlineData(0.2499, "a")]
    [InlineData(0.25, "b")]
    [InlineData(0.3, "b")]
    [InlineData(0.999, "b")]
    public void Weights_split_the_roll_range_among_routes_of_equal_priority(double roll, string expected)
    {
        var model = ModelWithRoutes(("a", 0, 1), ("b", 0, 3));

        RouteSelector.Pick(model, roll).Provider.ShouldBe(expected);
    }

    [Fact]
    public void Over_an_even_sweep_of_rolls_each_route_gets_its_weights_share()
    {
        var model = ModelWithRoutes(("a", 0, 1), ("b", 0, 3), ("c", 0, 6));
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 1000; i++)
        {
            // Mid-points of a thousand equal slices, so no roll sits on a boundary.
            var provider = RouteSelector.Pick(model, (i + 0.5) / 1000).Provider;
            counts[provider] = counts.GetValueOrDefault(provider) + 1;
        }

        counts["a"].ShouldBe(100);
        counts["b"].ShouldBe(300);
        counts["c"].ShouldBe(600);
    }

    [Fact]
    public void Only_routes_of_the_best_priority_are_picked_even_when_listed_later_or_weighted_higher()
    {
        // Configuration order puts the fallback first and gives it a large weight; priority 0 still wins.
        var model = ModelWithRoutes(("fallback", 1, 100), ("primary", 0, 1), ("secondary", 0, 1));

        for (var i = 0; i < 100; i++)
        {
            RouteSelector.Pick(model, i / 100.0).Provider.ShouldBeOneOf("primary", "secondary");
        }

        RouteSelector.Pick(model, 0.0).Provider.ShouldBe("primary");
        RouteSelector.Pick(model, 0.99).Provider.ShouldBe("secondary");
    }

    [Fact]
    public void The_picked_route_carries_the_providers_model_id()
    {
        var model = ModelWithRoutes(("p", 0, 1));

        var route = RouteSelector.Pick(model, 0.5);

        route.ShouldBe(new RouteDefinition("p", "p-model", 0, 1));
    }

    [Fact]
    public void Catalog_orders_routes_by_priority_and_keeps_configuration_order_among_equals()
    {
        var model = ModelWithRoutes(("c", 2, 1), ("a", 0, 1), ("b", 0, 1), ("d", 1, 1));

        model.Routes.Select(r => r.Provider).ShouldBe(["a", "b", "d", "c"]);
        model.Price.ShouldBe(new Price(InputPerMTok: 1_000_000));
    }
}
