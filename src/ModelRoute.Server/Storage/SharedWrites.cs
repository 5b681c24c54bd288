using System.Data.Common;
using Dapper;
using ModelRoute.Server.Storage.Sqlite;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Writes whose SQL is the same on SQLite and PostgreSQL, made inside a store's transaction: the
/// ledger, settling a hold, and the webhook outbox. Each rule lives here once; the stores keep the
/// SQL that differs between them.
/// </summary>
internal static class SharedWrites
{
    public static Task InsertLedgerAsync(DbConnection c, DbTransaction tx, IdGenerator ids, string accountId, string executionId, string kind, long amount, long balance, long held, long now) =>
        c.ExecutePreparedAsync(
            """
            INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, created_at)
            VALUES (@Id, @accountId, @executionId, @kind, @amount, @balance, @held, @now)
            """,
            new { Id = ids.New("txn"), accountId, executionId, kind, amount, balance, held, now },
            tx);

    /// <summary>
    /// Ends the hold of an execution that just ended, from the ended row's own values: release it all, then charge what
    /// it cost, capped at the hold (docs/tenancy.md; docs/pricing.md).
    /// </summary>
    /// <param name="model">The model it was submitted for: the ending counts in its usage (docs/api.md#usage).</param>
    /// <param name="apiKeyId">The key it was submitted with: what it was charged counts in the key's <c>spent</c>, and a
    /// key with a spending limit has the hold taken off its <c>held</c> (docs/tenancy.md).</param>
    public static async Task SettleAsync(
        DbConnection c, DbTransaction tx, IdGenerator ids, string accountId, string executionId, string model, ExecutionStatus status, long heldMicros, long? actualMicros,
        long now, string? apiKeyId = null)
    {
        var usage = UsageEnding.Of(accountId, model, apiKeyId, status, heldMicros, actualMicros, now);
        var charge = usage.Charge;
        await c.ExecutePreparedAsync(UsageEnding.UpsertSql, usage, tx);
        var account = await c.QuerySinglePreparedAsync<(long Balance, long Held)>(
            """
            UPDATE accounts SET held_micros = held_micros - @Held, balance_micros = balance_micros - @Charge
            WHERE id = @AccountId
            RETURNING balance_micros, held_micros
            """,
            new { Held = heldMicros, Charge = charge, AccountId = accountId },
            tx);
        await InsertLedgerAsync(c, tx, ids, accountId, executionId, LedgerKinds.Release, heldMicros, account.Balance + charge, account.Held, now);
        if (charge > 0)
        {
            await InsertLedgerAsync(c, tx, ids, accountId, executionId, LedgerKinds.Charge, charge, account.Balance, account.Held, now);
        }

        if (apiKeyId is not null)
        {
            await c.ExecutePreparedAsync(SettleKeySql, new { Held = heldMicros, Charge = charge, KeyId = apiKeyId }, tx);
        }
    }

    /// <summary>
    /// A key's share of a settlement: its charge, and for a key with a limit the end of its hold. An ending that changes
    /// neither (nothing charged, no limit) leaves the row unwritten.
    /// </summary>
    private const string SettleKeySql = """
        UPDATE api_keys SET spent_micros = spent_micros + @Charge,
            held_micros = held_micros - CASE WHEN max_spend_micros IS NULL THEN 0 ELSE @Held END
        WHERE id = @KeyId AND (@Charge > 0 OR max_spend_micros IS NOT NULL)
        """;

    /// <summary>
    /// Where an event may go, from the moved row's own values: to the submission's <c>webhook_url</c> (if it wants the
    /// event), and whether the account's endpoints must be read (<paramref name="hasEndpoints"/>: it has an enabled one).
    /// The one check of both stores, made before anything is built for a delivery, so that most moves build nothing.
    /// </summary>
    public static WebhooksDue DeliveriesDue(bool hasEndpoints, string? webhookUrl, string? webhookEvents, string type) =>
        WebhookEventTypes.All.Contains(type)
            ? new WebhooksDue(WebhookPayloads.WantedBySubmission(webhookUrl, webhookEvents, type), hasEndpoints)
            : default;

    /// <summary>
    /// The outbox: writes the deliveries of one event in the caller's transaction — to the submission's
    /// webhook_url if it wants the event, and to every enabled endpoint subscribed to it.
    /// </summary>
    /// <param name="wanted">From <see cref="DeliveriesDue"/>: the endpoints are read only when the account has one.</param>
    /// <returns>The deliveries written already leased to <paramref name="lease"/>'s owner (only when given and due at once).</returns>
    public static async Task<EnqueuedWebhooks> EnqueueWebhooksAsync(
        DbConnection c, DbTransaction tx, IdGenerator ids, Execution execution, string eventId, string type, long now, TimeSpan firstDelay,
        WebhooksDue wanted, (string Owner, long Until)? lease = null)
    {
        if (!wanted.Any)
        {
            return EnqueuedWebhooks.None;
        }

        var destinations = new List<(string? EndpointId, string Url, bool Thin)>();
        if (wanted.ToSubmission)
        {
            destinations.Add((null, execution.WebhookUrl!, false));
        }

        var endpoints = wanted.ToEndpoints
            ? await c.QueryPreparedAsync<(string Id, string Url, string Events, long Thin)>(
                "SELECT id, url, events, thin FROM webhook_endpoints WHERE account_id = @AccountId AND status = 'enabled'",
                new { execution.AccountId },
                tx)
            : [];
        foreach (var endpoint in endpoints)
        {
            if (JsonSerializer.Deserialize<string[]>(endpoint.Events)!.Contains(type))
            {
                destinations.Add((endpoint.Id, endpoint.Url, endpoint.Thin != 0));
            }
        }

        string? full = null, thin = null;
        var due = now + (long)firstDelay.TotalMilliseconds;
        var owner = firstDelay <= TimeSpan.Zero ? lease?.Owner : null;
        var leased = new List<WebhookDelivery>();
        foreach (var (endpointId, url, isThin) in destinations)
        {
            var payload = isThin
                ? thin ??= WebhookPayloads.Build(eventId, type, DateTimeOffset.FromUnixTimeMilliseconds(now), execution, thin: true)
                : full ??= WebhookPayloads.Build(eventId, type, DateTimeOffset.FromUnixTimeMilliseconds(now), execution, thin: false);
            var id = ids.New("whd");
            await c.ExecutePreparedAsync(
                """
                INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at, trace_parent)
                VALUES (@id, @eventId, @AccountId, @ExecutionId, @endpointId, @url, @type, @payload, 'pending', @due, @now, @now, @owner, @until, @TraceParent)
                """,
                new { id, eventId, execution.AccountId, ExecutionId = execution.Id, endpointId, url, type, payload, now, due, owner, until = owner is null ? null : lease?.Until, execution.TraceParent },
                tx);
            if (owner is not null)
            {
                var at = DateTimeOffset.FromUnixTimeMilliseconds(now);
                leased.Add(new WebhookDelivery(id, eventId, execution.AccountId, execution.Id, endpointId, url, type, payload, DeliveryStatuses.Pending, 0, at, null, null, at, at, null, execution.TraceParent));
            }
        }

        return new EnqueuedWebhooks(leased, destinations.Count);
    }
}

/// <summary>
/// The deliveries a state change wrote to the outbox: those leased to this node's worker (handed to it after the
/// commit by ExecutionCommits) and how many were written in all. Only the others need a worker to claim them.
/// </summary>
public sealed record EnqueuedWebhooks(IReadOnlyList<WebhookDelivery> Leased, int Written)
{
    public static readonly EnqueuedWebhooks None = new([], 0);

    /// <summary>Whether some of the deliveries wait for a claim (not leased, or due later).</summary>
    public bool NeedClaim => Written > Leased.Count;
}

/// <summary>Where one event's deliveries may go (see <see cref="SharedWrites.DeliveriesDue"/>).</summary>
/// <param name="ToSubmission">The submission's own <c>webhook_url</c> wants the event.</param>
/// <param name="ToEndpoints">The account has an enabled endpoint, so the endpoints must be read.</param>
public readonly record struct WebhooksDue(bool ToSubmission, bool ToEndpoints)
{
    public bool Any => ToSubmission || ToEndpoints;
}
