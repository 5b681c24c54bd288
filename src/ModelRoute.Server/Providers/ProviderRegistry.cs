using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

public sealed class ProviderRegistry
{
    private readonly Dictionary<string, ProviderEndpoint> _providers;
    private readonly ModelCatalog _catalog;

    public ProviderRegistry(IOptions<ModelRouteOptions> options, IEnumerable<IProviderAdapterFactory> factories, ModelCatalog catalog, TimeProvider time)
    {
        _catalog = catalog;
        var byKind = factories.ToDictionary(f => f.Kind, StringComparer.Ordinal);
        _providers = options.Value.Providers.ToDictionary(
            p => p.Key,
            p => new ProviderEndpoint(p.Key, p.Value, byKind[p.Value.Kind].Create(p.Key, p.Value), time),
            StringComparer.Ordinal);
    }

    public ProviderEndpoint? Find(string name) => _providers.GetValueOrDefault(name);

    public IEnumerable<ProviderEndpoint> All => _providers.Values.OrderBy(p => p.Name, StringComparer.Ordinal);

    /// <summary>Calls every provider together could take now on this node: what the dispatcher may claim (docs/routing.md).</summary>
    public int FreeSlots
    {
        get
        {
            var free = 0;
            foreach (var provider in _providers.Values)
            {
                free += provider.FreeSlots;
            }

            return free;
        }
    }

    /// <summary>The provider and call for an execution already sent to a provider (to poll, cancel or read a callback).</summary>
    public (ProviderEndpoint Provider, ProviderCall Call)? CallFor(Execution execution)
    {
        var model = _catalog.Find(execution.Model);
        var route = model?.Routes.FirstOrDefault(r => r.Provider == execution.Provider && r.ProviderModel == execution.ProviderModel);
        return model is null || route is null || Find(route.Provider) is not { } provider
            ? null
            : (provider, new ProviderCall(execution, model, route, execution.Attempts, null));
    }
}
