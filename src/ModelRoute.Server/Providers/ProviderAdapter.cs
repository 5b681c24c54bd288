using System.Text.Json;
using Polly;
using Polly.CircuitBreaker;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

public static class ProviderKinds
{
    public const string OpenAI = "openai";
    public const string Anthropic = "anthropic";
    public const string Gemini = "gemini";
    public const string Replicate = "replicate";
    public const string Fal = "fal";
    public const string Simulator = "simulator";

    public static bool NeedsApiKey(string kind) => kind != Simulator;

    /// <summary>Every modality, for adapters that translate them all.</summary>
    public static readonly IReadOnlySet<Modality> AllModalities = Enum.GetValues<Modality>().ToHashSet();

    public static readonly IReadOnlySet<Modality> TextOnly = new HashSet<Modality> { Modality.Text };

    /// <summary>Every adapter factory in this assembly: adding an adapter needs no registration elsewhere.</summary>
    public static IEnumerable<Type> FactoryTypes() =>
        typeof(ProviderKinds).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IProviderAdapterFactory).IsAssignableFrom(t));
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

/// <summary>
/// A binary output: its bytes (decoded from base64, say), or the provider's URL to copy it from
/// before the URL expires. <see cref="ContentType"/> may be null for a URL: the download's is used.
/// </summary>
public sealed record ArtifactContent(string Name, string? ContentType, byte[]? Data, Uri? Source = null);

/// <summary>A provider's callback as it arrived: parsed body, raw body (for signatures) and headers.</summary>
public sealed record ProviderCallback(JsonElement Body, string RawBody, IReadOnlyDictionary<string, string> Headers);

/// <summary>Translates canonical executions to one provider's protocol and its answers back.</summary>
public interface IProviderAdapter
{
    Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the answer to <paramref name="call"/> may come through its callback URL (or a later poll) rather than in
    /// the call's own reply. If it may, the attempt's start, with the callback's token, is committed before the call;
    /// if not, the call begins while the start is still being written, and a quick answer commits with it.
    /// </summary>
    bool MayCallBack(ProviderCall call) => true;

    /// <summary>Asks an async provider where an accepted job stands (when its callback is late).</summary>
    Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>Best effort: asks the provider to stop an accepted job.</summary>
    Task CancelAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>
    /// Checks the provider's own signature on a callback, where it has one. The per-attempt token in
    /// the callback URL has already been checked by the gateway; adapters without a scheme return true.
    /// </summary>
    bool VerifyCallback(ProviderCall call, ProviderCallback callback);

    /// <summary>
    /// <see cref="VerifyCallback"/> for a scheme that may need the network (fal's keys come from a JWKS); the callback
    /// endpoint calls this one.
    /// </summary>
    Task<bool> VerifyCallbackAsync(ProviderCall call, ProviderCallback callback, CancellationToken cancellationToken) =>
        Task.FromResult(VerifyCallback(call, callback));

    /// <summary>Reads a verified callback: the result, a failure, or <see cref="ProviderOutcome.Running"/> for progress news.</summary>
    ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback);
}

/// <summary>
/// A configured provider on this node: its adapter, its concurrency limit, and its circuit
/// breaker, which counts retryable failures and connection errors and, when open, makes routing
/// skip the provider until a trial call succeeds.
/// </summary>
public sealed class ProviderEndpoint : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly CircuitBreakerStateProvider _circuit = new();
    private readonly ResiliencePipeline<ProviderOutcome> _pipeline;
    private readonly TimeProvider _time;
    private long _openUntilTicks;

    public ProviderEndpoint(string name, ProviderOptions options, IProviderAdapter adapter, TimeProvider time)
    {
        Name = name;
        Options = options;
        Adapter = adapter;
        _time = time;
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        var breaker = options.CircuitBreaker;
        _pipeline = new ResiliencePipelineBuilder<ProviderOutcome> { TimeProvider = time }
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions<ProviderOutcome>
            {
                FailureRatio = breaker.FailureRatio,
                MinimumThroughput = breaker.MinimumThroughput,
                SamplingDuration = breaker.SamplingDuration,
                BreakDuration = breaker.BreakDuration,
                StateProvider = _circuit,
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: HttpRequestException } => true,
                    { Result: ProviderOutcome.Failed { Error.Retryable: true } } => true,
                    _ => false,
                }),
                OnOpened = args =>
                {
                    Interlocked.Exchange(ref _openUntilTicks, (time.GetUtcNow() + args.BreakDuration).UtcTicks);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    public string Name { get; }

    public ProviderOptions Options { get; }

    public IProviderAdapter Adapter { get; }

    public int InFlight => Options.MaxConcurrency - _slots.CurrentCount;

    public int FreeSlots => _slots.CurrentCount;

    /// <summary>closed, open or half_open.</summary>
    public string Circuit => _circuit.CircuitState switch
    {
        CircuitState.Closed => "closed",
        CircuitState.HalfOpen => "half_open",
        _ when IsAvailable => "half_open", // the break is over; the next call is the trial
        _ => "open",
    };

    /// <summary>
    /// Whether routing may send a call here now. Polly moves an open circuit to half-open only when a
    /// call arrives, so an open circuit whose break has passed counts as available for that trial call.
    /// </summary>
    public bool IsAvailable => _circuit.CircuitState is CircuitState.Closed or CircuitState.HalfOpen
        || (_circuit.CircuitState == CircuitState.Open && _time.GetUtcNow().UtcTicks >= Interlocked.Read(ref _openUntilTicks));

    public bool TryAcquire() => _slots.Wait(0);

    public void Release() => _slots.Release();

    /// <summary>
    /// Calls the adapter through the circuit breaker. A cancellation that <paramref name="timedOut"/> says
    /// was the provider's timeout becomes a retryable PROVIDER_TIMEOUT, so it counts as a failure.
    /// Throws <see cref="BrokenCircuitException"/> when the circuit is open.
    /// </summary>
    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, Func<bool> timedOut, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(
            async token =>
            {
                try
                {
                    return await Adapter.ExecuteAsync(call, token);
                }
                catch (OperationCanceledException) when (timedOut())
                {
                    return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderTimeout, "The provider did not answer in time.", true, Name));
                }
            },
            cancellationToken);

    public void Dispose() => _slots.Dispose();
}

public interface IProviderAdapterFactory
{
    string Kind { get; }

    /// <summary>The modalities its adapter translates; a route of another modality's model to it is refused at start-up.</summary>
    IReadOnlySet<Modality> Modalities { get; }

    IProviderAdapter Create(string name, ProviderOptions options);
}

public sealed class ProviderRegistry
{
    private readonly Dictionary<string, ProviderEndpoint> _providers;
    private readonly ModelCatalog _catalog;

    public ProviderRegistry(Microsoft.Extensions.Options.IOptions<ModelRouteOptions> options, IEnumerable<IProviderAdapterFactory> factories, ModelCatalog catalog, TimeProvider time)
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
