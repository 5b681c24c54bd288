using Polly;
using Polly.CircuitBreaker;

namespace ModelRoute.Server.Providers;

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

    /// <summary>Waits up to <paramref name="timeout"/> for a slot; waiters are served in turn, before any later <see cref="TryAcquire"/>.</summary>
    public Task<bool> AcquireAsync(TimeSpan timeout) => _slots.WaitAsync(timeout);

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
