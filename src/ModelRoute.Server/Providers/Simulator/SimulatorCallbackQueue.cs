using System.Net.Http.Json;

namespace ModelRoute.Server.Providers.Simulator;

/// <summary>
/// The callbacks the simulator owes, in one priority queue by due time, driven by a single timer. A timer, a task
/// and a captured <see cref="ProviderCall"/> per pending callback cost several KB each, which 100,000 executions
/// parked in AWAITING_WEBHOOK multiply into hundreds of MB; an entry here keeps only what sending needs.
/// Callbacks are not durable: after a restart the gateway's polling finds the result (docs/api.md#providers-and-routing).
/// </summary>
public sealed partial class SimulatorCallbackQueue : IDisposable
{
    /// <summary>Callbacks in flight at once: many come due together after a burst, and the gateway is the receiver.</summary>
    private const int MaxConcurrentSends = 64;

    private readonly PriorityQueue<PendingCallback, long> _queue = new();
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _sends = new(MaxConcurrentSends, MaxConcurrentSends);
    private readonly IHttpClientFactory _httpClients;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationToken _stopping;
    private readonly ITimer _timer;
    private readonly CancellationTokenRegistration _onStop;
    private bool _pumping;
    private bool _stopped;

    public SimulatorCallbackQueue(IHttpClientFactory httpClients, TimeProvider time, ILogger logger, CancellationToken stopping)
    {
        _httpClients = httpClients;
        _time = time;
        _logger = logger;
        _stopping = stopping;
        _timer = time.CreateTimer(static state => ((SimulatorCallbackQueue)state!).Wake(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _onStop = stopping.Register(static state => ((SimulatorCallbackQueue)state!).Dispose(), this);
    }

    /// <summary>Callbacks scheduled and not yet sent.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count;
            }
        }
    }

    /// <summary>Sends <c>{"id": jobId, "status": …}</c> to <paramref name="url"/> at <paramref name="dueMs"/> (Unix milliseconds).</summary>
    public void Schedule(Uri url, long dueMs, long nonce, bool fails)
    {
        // The URL as UTF-8 bytes: half the size of a string, a fraction of a Uri.
        var callback = new PendingCallback(Encoding.UTF8.GetBytes(url.AbsoluteUri), dueMs, nonce, fails);
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            _queue.Enqueue(callback, dueMs);
            WakeLocked();
        }
    }

    /// <summary>The job id the simulator answers with; it carries the due time so that a poll can tell without the queue.</summary>
    public static string JobId(long dueMs, long nonce) => string.Create(CultureInfo.InvariantCulture, $"simjob_{dueMs}_{nonce:x12}");

    public void Dispose()
    {
        lock (_lock)
        {
            _stopped = true;
            _queue.Clear();
        }

        _timer.Dispose();
        _onStop.Dispose();
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private void Wake()
    {
        lock (_lock)
        {
            WakeLocked();
        }
    }

    /// <summary>Starts the pump if the earliest callback is due, else sets the timer for it. The running pump does this when it runs dry.</summary>
    private void WakeLocked()
    {
        if (_stopped || _pumping || !_queue.TryPeek(out _, out var due))
        {
            return;
        }

        var wait = due - NowMs;
        if (wait <= 0)
        {
            _pumping = true;
            _ = Task.Run(PumpAsync, CancellationToken.None);
        }
        else
        {
            _timer.Change(TimeSpan.FromMilliseconds(wait), Timeout.InfiniteTimeSpan);
        }
    }

    private async Task PumpAsync()
    {
        try
        {
            while (true)
            {
                PendingCallback next;
                lock (_lock)
                {
                    if (_stopped || !_queue.TryPeek(out next, out var due) || due > NowMs)
                    {
                        _pumping = false;
                        WakeLocked();
                        return;
                    }

                    _queue.Dequeue();
                }

                await _sends.WaitAsync(_stopping);
                _ = SendAsync(next);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: what is left is dropped, as a lost callback would be.
        }
    }

    private async Task SendAsync(PendingCallback callback)
    {
        var url = new Uri(Encoding.UTF8.GetString(callback.Url));
        try
        {
            using var client = _httpClients.CreateClient(nameof(SimulatorAdapter));
            using var response = await client.PostAsJsonAsync(url, new { id = JobId(callback.DueMs, callback.Nonce), status = callback.Fails ? "failed" : "succeeded" }, _stopping);
            if (!response.IsSuccessStatusCode)
            {
                LogCallbackRejected(_logger, ExecutionIdOf(url), (int)response.StatusCode);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or ObjectDisposedException)
        {
            // Lost callbacks are part of life: the gateway polls for the result.
            if (!_stopping.IsCancellationRequested)
            {
                LogCallbackFailed(_logger, ExecutionIdOf(url), ex.GetType().Name);
            }
        }
        finally
        {
            _sends.Release();
        }
    }

    /// <summary>The callback URL ends in the execution id (<c>…/provider-callbacks/{provider}/{id}?token=…</c>).</summary>
    private static string ExecutionIdOf(Uri url) => url.Segments[^1];

    [LoggerMessage(Level = LogLevel.Information, Message = "Simulator callback for {ExecutionId} was answered {StatusCode}")]
    private static partial void LogCallbackRejected(ILogger logger, string executionId, int statusCode);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Simulator callback for {ExecutionId} could not be sent ({Error}); the gateway will poll")]
    private static partial void LogCallbackFailed(ILogger logger, string executionId, string error);

    /// <summary>One owed callback: the URL in UTF-8, when, the job id's random part, and whether it reports a failure.</summary>
    private readonly record struct PendingCallback(byte[] Url, long DueMs, long Nonce, bool Fails);
}
