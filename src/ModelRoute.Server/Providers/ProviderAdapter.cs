using System.Text.Json;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

public static class ProviderKinds
{
    public const string Simulator = "simulator";

    /// <summary>The kinds this build has adapters for.</summary>
    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Simulator };

    public static bool NeedsApiKey(string kind) => kind != Simulator;
}

/// <summary>One provider call: the execution, where it is routed, and how the provider may call back.</summary>
public sealed record ProviderCall(Execution Execution, ModelDefinition Model, RouteDefinition Route, int AttemptNumber, Uri? CallbackUrl);

/// <summary>What a provider answered, already normalized.</summary>
public abstract record ProviderOutcome
{
    private ProviderOutcome()
    {
    }

    /// <summary>The result. <see cref="Output"/> is canonical JSON; binary outputs travel as artifacts.</summary>
    public sealed record Completed(string Output, Usage Usage, IReadOnlyList<ArtifactContent> Artifacts) : ProviderOutcome;

    /// <summary>An async provider took the job and will call back (or be polled).</summary>
    public sealed record Accepted(string JobId) : ProviderOutcome;

    /// <summary>A poll found the job still running.</summary>
    public sealed record Running : ProviderOutcome;

    public sealed record Failed(ExecutionError Error, TimeSpan? RetryAfter = null) : ProviderOutcome;
}

public sealed record ArtifactContent(string Name, string ContentType, byte[] Data);

/// <summary>Translates canonical executions to one provider's protocol and its answers back.</summary>
public interface IProviderAdapter
{
    Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>Asks an async provider where an accepted job stands (when its callback is late).</summary>
    Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>Best effort: asks the provider to stop an accepted job.</summary>
    Task CancelAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>Reads a callback whose authenticity the gateway has already checked.</summary>
    ProviderOutcome ReadCallback(ProviderCall call, JsonElement body);
}

/// <summary>A configured provider: its adapter and its concurrency limit on this node.</summary>
public sealed class ProviderEndpoint(string name, ProviderOptions options, IProviderAdapter adapter) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(options.MaxConcurrency, options.MaxConcurrency);

    public string Name => name;

    public ProviderOptions Options => options;

    public IProviderAdapter Adapter => adapter;

    public bool TryAcquire() => _slots.Wait(0);

    public void Release() => _slots.Release();

    public void Dispose() => _slots.Dispose();
}

public interface IProviderAdapterFactory
{
    string Kind { get; }

    IProviderAdapter Create(string name, ProviderOptions options);
}

public sealed class ProviderRegistry
{
    private readonly Dictionary<string, ProviderEndpoint> _providers;
    private readonly ModelCatalog _catalog;

    public ProviderRegistry(Microsoft.Extensions.Options.IOptions<ModelRouteOptions> options, IEnumerable<IProviderAdapterFactory> factories, ModelCatalog catalog)
    {
        _catalog = catalog;
        var byKind = factories.ToDictionary(f => f.Kind, StringComparer.Ordinal);
        _providers = options.Value.Providers.ToDictionary(
            p => p.Key,
            p => new ProviderEndpoint(p.Key, p.Value, byKind[p.Value.Kind].Create(p.Key, p.Value)),
            StringComparer.Ordinal);
    }

    public ProviderEndpoint? Find(string name) => _providers.GetValueOrDefault(name);

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
