namespace ModelRoute.Server.Storage;

/// <summary>
/// Whether the store answers, shared by the HTTP API and the background workers, so that an outage is logged once when
/// it begins and once when it ends rather than once per request or per worker tick (docs/deploy.md). A failure that
/// <see cref="StoreFailures.IsUnavailable"/> recognises marks the store down; from then on a probe asks the store
/// every <see cref="ProbeInterval"/> and marks it up again at its first answer. Requests are not refused up front
/// while it is down: each still tries the store, so the first request after it returns is served.
/// </summary>
public sealed partial class StoreAvailability(IStoreHealth health, TimeProvider time, ILogger<StoreAvailability> logger) : BackgroundService
{
    /// <summary>How long a client is told to wait before trying again (Retry-After).</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(2);

    /// <summary>How often the store is asked while it is down.</summary>
    public static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Failures this soon after a recovery (requests that were already waiting on a dead connection) continue the
    /// outage just ended: they are announced only if the store is still down this long after.
    /// </summary>
    public static readonly TimeSpan Settle = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _wentDown = new(0, 1);
    private volatile bool _down;
    private bool _announced;
    private DateTimeOffset _downSince;
    private DateTimeOffset _recoveredAt = DateTimeOffset.MinValue;
    private string _reason = "";

    /// <summary>False from a failure that says the store cannot be reached until the store answers again.</summary>
    public bool IsAvailable => !_down;

    /// <summary>
    /// Records <paramref name="exception"/> if it says the store cannot be reached; true then, and the caller logs
    /// nothing of its own (the outage's one line is written here). False for any other failure.
    /// </summary>
    public bool Report(Exception exception)
    {
        if (!StoreFailures.IsUnavailable(exception))
        {
            return false;
        }

        if (_down)
        {
            return true;
        }

        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (_down)
            {
                return true;
            }

            _down = true;
            _downSince = now;
            _reason = Describe(exception);
            _announced = now - _recoveredAt >= Settle;
            if (_announced)
            {
                LogStoreDown(logger, _reason);
            }
        }

        Signal();
        return true;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wentDown.WaitAsync(stoppingToken);
                await ProbeUntilUpAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task ProbeUntilUpAsync(CancellationToken stoppingToken)
    {
        while (_down)
        {
            await Task.Delay(ProbeInterval, time, stoppingToken);
            if (await AnswersAsync(stoppingToken))
            {
                Recovered();
                return;
            }

            AnnounceIfLasting();
        }
    }

    private async Task<bool> AnswersAsync(CancellationToken stoppingToken)
    {
        using var timeout = new CancellationTokenSource(ProbeTimeout, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
        try
        {
            return await health.IsReadyAsync(both.Token);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && (ex is OperationCanceledException || StoreFailures.IsUnavailable(ex)))
        {
            return false;
        }
    }

    private void Recovered()
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            _down = false;
            _recoveredAt = now;
            if (_announced)
            {
                LogStoreUp(logger, Math.Round((now - _downSince).TotalSeconds, 1));
            }
        }
    }

    /// <summary>A failure soon after a recovery went unannounced; once it lasts, it is a new outage after all.</summary>
    private void AnnounceIfLasting()
    {
        lock (_lock)
        {
            if (_down && !_announced && time.GetUtcNow() - _downSince >= Settle)
            {
                _announced = true;
                LogStoreDown(logger, _reason);
            }
        }
    }

    private void Signal()
    {
        try
        {
            if (_wentDown.CurrentCount == 0)
            {
                _wentDown.Release();
            }
        }
        catch (SemaphoreFullException)
        {
            // Signalled already.
        }
    }

    /// <summary>The innermost message: "Connection refused", "The connection pool has been exhausted", … (no stack trace).</summary>
    private static string Describe(Exception exception)
    {
        var message = exception.Message;
        for (var inner = exception.InnerException; inner is not null; inner = inner.InnerException)
        {
            message = inner.Message;
        }

        return $"{exception.GetType().Name}: {message}";
    }

    public override void Dispose()
    {
        _wentDown.Dispose();
        base.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store cannot be reached ({Reason}); requests that need it answer 503 STORE_UNAVAILABLE and workers retry until it answers again")]
    private static partial void LogStoreDown(ILogger logger, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "The store answers again after {Seconds} s; requests and workers resume")]
    private static partial void LogStoreUp(ILogger logger, double seconds);
}
