using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// Hears what every node commits (docs/architecture.md: new work wakes idle workers at once, not on a polling
/// tick): one dedicated connection LISTENs, and each notification wakes this node's waiters,
/// dispatcher or webhook worker, and stops this node's running provider call of an execution another
/// node ended (a cancel made there reaches the call here at once, not at its next lease renewal:
/// docs/deploy.md). If the connection drops it reconnects after a short delay.
/// </summary>
public sealed partial class PostgresNotificationListener(
    PostgresDatabase database,
    ExecutionChanges changes,
    TimeProvider time,
    ILogger<PostgresNotificationListener> logger,
    NodeIdentity? node = null,
    InFlightExecutions? inFlight = null,
    StoreAvailability? availability = null,
    Accounts.ApiKeyCache? keys = null) : BackgroundService
{
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever went wrong, keep trying: without the listener this node only notices other nodes' work on its
                // polling tick. A store outage is logged once, by StoreAvailability, not at every reconnection.
                if (availability?.Report(ex) != true)
                {
                    LogListenFailed(logger, ex, ReconnectDelay.TotalSeconds);
                }

                try
                {
                    await Task.Delay(ReconnectDelay, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        await using var connection = await database.OpenListenerAsync(stoppingToken);
        connection.Notification += (_, e) => Handle(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN {PostgresDatabase.Channel}", connection))
        {
            await listen.ExecuteNonQueryAsync(stoppingToken);
        }

        // Whatever was committed while no connection listened went unheard: look once for due work, and forget cached
        // keys, whose revocation may have been missed (docs/tenancy.md).
        keys?.Clear();
        changes.SignalWork();
        changes.SignalWebhooks();
        while (true)
        {
            // Returns after each notification (delivered through the event above); throws if the connection breaks.
            await connection.WaitAsync(stoppingToken);
        }
    }

    /// <summary>
    /// A message holds newline-separated payloads (<see cref="PostgresNotifier"/> batches them), after a line that
    /// names the node that sent it.
    /// </summary>
    internal void Handle(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var first = 0;
        if (lines.Length > 0 && lines[0].StartsWith(PostgresNotifier.OriginPrefix, StringComparison.Ordinal))
        {
            if (node is not null && lines[0].AsSpan(PostgresNotifier.OriginPrefix.Length).SequenceEqual(node.Id))
            {
                return; // This node's own: it woke its waiters and workers when it committed.
            }

            first = 1;
        }

        for (var i = first; i < lines.Length; i++)
        {
            HandleOne(lines[i]);
        }
    }

    /// <summary>
    /// Payloads are "&lt;execution id&gt; &lt;STATUS&gt;", <see cref="PostgresDatabase.WebhooksPayload"/>, or a revoked key
    /// or changed account (<see cref="PostgresNotifier.KeyPayload"/>, <see cref="PostgresNotifier.AccountPayload"/>).
    /// </summary>
    private void HandleOne(string payload)
    {
        if (payload == PostgresDatabase.WebhooksPayload)
        {
            changes.SignalWebhooks();
            return;
        }

        if (payload.StartsWith(PostgresNotifier.KeyPrefix, StringComparison.Ordinal))
        {
            keys?.ForgetKey(payload[PostgresNotifier.KeyPrefix.Length..]);
            return;
        }

        if (payload.StartsWith(PostgresNotifier.AccountPrefix, StringComparison.Ordinal))
        {
            keys?.ForgetAccount(payload[PostgresNotifier.AccountPrefix.Length..]);
            return;
        }

        var space = payload.LastIndexOf(' ');
        if (space > 0 && ExecutionStatuses.FromWire(payload[(space + 1)..]) is { } status)
        {
            var executionId = payload[..space];
            if (status.IsTerminal())
            {
                // Its result would be dropped by the store; stop the call and free the provider's slot now.
                inFlight?.Stop(executionId);
            }

            changes.Remote(executionId, status);
        }
        else
        {
            LogUnknownPayload(logger, payload);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Listening for store notifications failed; reconnecting in {DelaySeconds} s")]
    private static partial void LogListenFailed(ILogger logger, Exception exception, double delaySeconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignored a store notification it cannot read: {Payload}")]
    private static partial void LogUnknownPayload(ILogger logger, string payload);
}
