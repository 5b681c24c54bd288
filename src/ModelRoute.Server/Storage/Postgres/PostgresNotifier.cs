using System.Threading.Channels;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// Tells every other node what this node committed, after the commit and outside the
/// writing transaction. A NOTIFY inside a write would make PostgreSQL serialise that commit, fsync
/// included, behind a global lock shared by every notifying transaction, so commits could no longer
/// be flushed together. Instead payloads queue here and one loop sends whatever has piled up as a
/// single <c>SELECT pg_notify(…)</c> per batch, each message holding many newline-separated payloads
/// (read by <see cref="PostgresNotificationListener"/>). A notification lost in a crash between the
/// commit and the send is acceptable: every waiter also re-reads on a timeout (dispatch and webhook
/// workers every Dispatch:PollInterval, long-polls every second, event streams every 15 s). Everything comes
/// through <see cref="IChangeBroadcast"/>: execution changes from <see cref="ExecutionCommits"/>, account, key and
/// delivery notices from the account and webhook stores.
/// </summary>
public sealed partial class PostgresNotifier(
    PostgresDatabase database, TimeProvider time, ILogger<PostgresNotifier> logger, NodeIdentity? node = null, StoreAvailability? availability = null)
    : IChangeBroadcast, IAsyncDisposable
{
    /// <summary>PostgreSQL refuses payloads of 8000 bytes or more; stay well under it.</summary>
    internal const int MaxMessageBytes = 7900;

    // Enough payloads per round that a backlog drains in few statements, few enough to bound one statement.
    private const int MaxPayloadsPerRound = 4096;
    private static readonly TimeSpan RetryDelay = TimeSpan.FromMilliseconds(200);

    private readonly Channel<string> _pending = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _startLock = new();
    private Task? _loop;
    private int _disposed;

    /// <summary>Queues <paramref name="payload"/> ("&lt;execution id&gt; &lt;STATUS&gt;" or "webhooks"); call it after the commit.</summary>
    public void Notify(string payload)
    {
        if (_pending.Writer.TryWrite(payload) && _loop is null)
        {
            lock (_startLock)
            {
                // Started on first use, so a store used without a host (the contract tests) still sends.
                _loop ??= Task.Run(RunAsync);
            }
        }
    }

    public void ExecutionChanged(string executionId, ExecutionStatus status) => Notify(ExecutionPayload(executionId, status));

    public void WebhooksWritten() => Notify(PostgresDatabase.WebhooksPayload);

    public void AccountChanged(string accountId) => Notify(AccountPayload(accountId));

    public void KeyRevoked(string keyId) => Notify(KeyPayload(keyId));

    /// <summary>What <see cref="PostgresNotificationListener"/> reads: "&lt;execution id&gt; &lt;STATUS&gt;".</summary>
    internal static string ExecutionPayload(string executionId, ExecutionStatus status) => executionId + " " + status.ToWire();

    private async Task RunAsync()
    {
        var reader = _pending.Reader;
        var round = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            while (await reader.WaitToReadAsync(_stopping.Token))
            {
                // Everything queued while the previous round was being sent goes out together.
                while (round.Count < MaxPayloadsPerRound && reader.TryRead(out var payload))
                {
                    round.Add(payload);
                }

                try
                {
                    await database.NotifyAsync(Pack(round, node?.Id), _stopping.Token);
                }
                catch (Exception ex) when (!_stopping.IsCancellationRequested)
                {
                    // Dropped, not retried: waiters re-read on their timeouts, and a stale wake-up helps no one.
                    if (availability?.Report(ex) != true)
                    {
                        LogNotifyFailed(logger, ex, round.Count);
                    }

                    await Task.Delay(RetryDelay, time, _stopping.Token);
                }

                round.Clear();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down.
        }
    }

    /// <summary>"key &lt;key id&gt;": the key was revoked; every node drops it from its cache (docs/tenancy.md).</summary>
    internal const string KeyPrefix = "key ";

    /// <summary>"account &lt;account id&gt;": the account was disabled or enabled; every node drops its keys from its cache.</summary>
    internal const string AccountPrefix = "account ";

    internal static string KeyPayload(string keyId) => KeyPrefix + keyId;

    internal static string AccountPayload(string accountId) => AccountPrefix + accountId;

    /// <summary>
    /// The first line of a message from a known node: <c>from &lt;node id&gt;</c>. A node's listener skips its own
    /// messages: it woke its own waiters and workers when it committed, and an echo would only make its dispatcher
    /// claim again and find nothing.
    /// </summary>
    internal const string OriginPrefix = "from ";

    /// <summary>
    /// Joins payloads with newlines into messages under <see cref="MaxMessageBytes"/> each, each starting with
    /// <see cref="OriginPrefix"/> and <paramref name="origin"/> when one is given.
    /// </summary>
    internal static List<string> Pack(IEnumerable<string> payloads, string? origin = null)
    {
        var header = origin is null ? null : OriginPrefix + origin;
        var headerBytes = header is null ? 0 : Encoding.UTF8.GetByteCount(header);
        var messages = new List<string>();
        var current = new StringBuilder();
        var bytes = 0;
        var count = 0;
        foreach (var payload in payloads)
        {
            var size = Encoding.UTF8.GetByteCount(payload);
            if (headerBytes + size + 1 > MaxMessageBytes)
            {
                continue; // Ids and statuses are short; nothing this long is ever queued.
            }

            if (count > 0 && bytes + 1 + size > MaxMessageBytes)
            {
                messages.Add(current.ToString());
                current.Clear();
                bytes = 0;
                count = 0;
            }

            if (count == 0 && header is not null)
            {
                current.Append(header);
                bytes = headerBytes;
            }

            if (bytes > 0)
            {
                current.Append('\n');
                bytes++;
            }

            current.Append(payload);
            bytes += size;
            count++;
        }

        if (count > 0)
        {
            messages.Add(current.ToString());
        }

        return messages;
    }

    public async ValueTask DisposeAsync()
    {
        // Once only: the container disposes it as itself and as the IChangeBroadcast it also serves.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        // Give what is queued a moment to go out (a clean stop should not cost other nodes a poll interval).
        _pending.Writer.TryComplete();
        Task? loop;
        lock (_startLock)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            await Task.WhenAny(loop, Task.Delay(TimeSpan.FromSeconds(2), time, CancellationToken.None));
        }

        await _stopping.CancelAsync();
        if (loop is not null)
        {
            await loop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        _stopping.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Sending {Count} store notifications failed; other nodes will see those changes on their polling tick")]
    private static partial void LogNotifyFailed(ILogger logger, Exception exception, int count);
}
