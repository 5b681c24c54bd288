using System.Collections.Concurrent;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// When each key was last used, kept in memory and written in one batch at most once per <see cref="FlushInterval"/>,
/// so that a request never costs a write (docs/tenancy.md: <c>last_used_at</c> is accurate to about a minute).
/// </summary>
public sealed partial class ApiKeyUsage(IAccountStore accounts, TimeProvider time, ILogger<ApiKeyUsage> logger, StoreAvailability? availability = null) : BackgroundService
{
    public static readonly TimeSpan FlushInterval = TimeSpan.FromMinutes(1);

    private ConcurrentDictionary<string, DateTimeOffset> _pending = new(StringComparer.Ordinal);

    /// <summary>
    /// Notes a use. Mostly a lock-free read: a key's time is written at most once a second, so a busy key's requests
    /// do not all queue for the same lock.
    /// </summary>
    public void Record(string keyId, DateTimeOffset at)
    {
        var pending = _pending;
        if (!pending.TryGetValue(keyId, out var noted) || at - noted >= RecordGranularity)
        {
            pending[keyId] = at;
        }
    }

    private static readonly TimeSpan RecordGranularity = TimeSpan.FromSeconds(1);

    /// <summary>Writes the uses noted since the last flush, in one write; nothing when there are none.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var taken = Interlocked.Exchange(ref _pending, new ConcurrentDictionary<string, DateTimeOffset>(StringComparer.Ordinal));
        if (taken.IsEmpty)
        {
            return;
        }

        try
        {
            await accounts.RecordKeyUsesAsync([.. taken], cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Put back (without overwriting newer uses) for the next flush.
            foreach (var (keyId, at) in taken)
            {
                _pending.AddOrUpdate(keyId, at, (_, newer) => newer > at ? newer : at);
            }

            // A store outage is logged once, by StoreAvailability.
            if (availability?.Report(ex) != true)
            {
                LogFlushFailed(logger, ex, taken.Count);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(FlushInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // What was used since the last tick is not lost on a clean stop, unless the store does not answer soon.
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5), time);
        try
        {
            await FlushAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Recording the last use of {Count} API keys failed; it is tried again at the next flush")]
    private static partial void LogFlushFailed(ILogger logger, Exception exception, int count);
}
