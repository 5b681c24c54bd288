using System.Collections.Concurrent;
using System.Data.Common;
using Dapper;
using ModelRoute.Server.Storage.Sqlite;

namespace ModelRoute.Server.Storage;

/// <summary>
/// The base of both engines' execution stores: the reads and the purge of <see cref="IExecutionQueries"/> (and the
/// replay lookup), whose SQL is the same on SQLite and PostgreSQL but for a few words of dialect, given to the
/// constructor by each store beside its own SQL. A store runs them on its own connections.
/// </summary>
/// <param name="isNull">The engine's <c>@name IS NULL</c> for a parameter of the given SQL type ("text", "bigint");
/// PostgreSQL must be told the type of a parameter it only compares with NULL.</param>
/// <param name="openStatus">The predicate of a non-terminal status (SQLite's repeats its partial index's word for word).</param>
/// <param name="endedStatus">The predicate of a terminal status.</param>
/// <param name="inIds">The engine's "column is one of the list @ids".</param>
/// <param name="metadataIs">The engine's "the row's top-level metadata value at key <c>@MetaKeyN</c> is the string
/// <c>@MetaValueN</c>" for pair N (docs/api.md#list-executions).</param>
public abstract class ExecutionQueries(
    Func<string, string, string> isNull, string openStatus, string endedStatus, Func<string, string> inIds, Func<int, string> metadataIs)
{
    private const string ByKeySql = "SELECT * FROM executions WHERE account_id = @accountId AND idempotency_key = @idempotencyKey";

    private const string AbandonedSql =
        "SELECT * FROM executions WHERE status = 'PROCESSING' AND lease_expires_at <= @Now ORDER BY lease_expires_at LIMIT @max";

    private const string EventsSql = "SELECT * FROM execution_events WHERE execution_id = @executionId AND seq > @afterSequence ORDER BY seq";

    /// <summary>Both read the (account_id, seq) index (migrations NNNN_account_events.sql).</summary>
    private const string AccountEventsSql = "SELECT * FROM execution_events WHERE account_id = @accountId AND seq > @afterSequence ORDER BY seq LIMIT @limit";

    private const string LastAccountEventSql = "SELECT seq FROM execution_events WHERE account_id = @accountId ORDER BY seq DESC LIMIT 1";

    private readonly string _expiredSql = $"SELECT id FROM executions WHERE {openStatus} AND expires_at <= @Now ORDER BY expires_at LIMIT @max";

    /// <summary>
    /// A batch of ended executions deleted, answering each one's artifacts in the same statement (RETURNING: SQLite 3.35
    /// and PostgreSQL), so retention knows which stores to clear without asking any about the others.
    /// </summary>
    private readonly string _purgeEndedSql =
        $"DELETE FROM executions WHERE id IN (SELECT id FROM executions WHERE {endedStatus} AND completed_at < @Before LIMIT @max) RETURNING id, artifacts";

    /// <summary>What else a purge deletes of the executions deleted: events, delivery attempts, then deliveries.</summary>
    private readonly string[] _purgeSql =
    [
        $"DELETE FROM execution_events WHERE {inIds("execution_id")}",
        $"DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM webhook_deliveries WHERE {inIds("execution_id")})",
        $"DELETE FROM webhook_deliveries WHERE {inIds("execution_id")}",
    ];

    private readonly string _byIdSql = $"SELECT * FROM executions WHERE id = @id AND ({isNull("accountId", "text")} OR account_id = @accountId)";

    /// <summary>The list's statements by the filters they have (see <see cref="ListSql"/>); a few dozen at most.</summary>
    private readonly ConcurrentDictionary<int, string> _listSql = new();

    /// <summary>A read on one of the engine's connections.</summary>
    private protected abstract Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>A write in one of the engine's transactions, committed when it answers true.</summary>
    private protected abstract Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken);

    /// <summary>
    /// The account's execution with the submission's key, as a replay or a reuse; null when the key is free. Read in
    /// the submission's own transaction when <paramref name="tx"/> is given.
    /// </summary>
    private protected static async Task<SubmitOutcome?> ExistingAsync(DbConnection c, DbTransaction? tx, NewExecution x)
    {
        var existing = await c.QueryFirstOrDefaultPreparedAsync<ExecutionRow>(
            "SELECT * FROM executions WHERE account_id = @AccountId AND idempotency_key = @IdempotencyKey",
            new { x.AccountId, x.IdempotencyKey },
            tx);
        return existing is null
            ? null
            : new SubmitOutcome(existing.RequestHash == x.RequestHash ? SubmitResult.Replayed : SubmitResult.KeyReused, existing.ToExecution());
    }

    public Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<ExecutionRow>(_byIdSql, new { id, accountId }))?.ToExecution(), cancellationToken);

    public Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken) =>
        ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<ExecutionRow>(ByKeySql, new { accountId, idempotencyKey }))?.ToExecution(), cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<Execution>>(async c =>
        {
            var rows = await c.QueryAsync<ExecutionRow>(ListSql(query), ListParameters(accountId, query));
            return [.. rows.Select(r => r.ToExecution())];
        }, cancellationToken);

    /// <summary>The parameters of <see cref="ListSql"/>; a statement uses those of the filters it has.</summary>
    internal static DynamicParameters ListParameters(string accountId, ExecutionQuery query)
    {
        var parameters = new DynamicParameters(new
        {
            accountId,
            Status = query.Status?.ToWire(),
            query.Model,
            query.IdempotencyKey,
            CreatedAfter = query.CreatedAfter?.ToUnixTimeMilliseconds(),
            FromId = query.CreatedAfter is { } after ? LowestIdAfter(after) : null,
            CreatedBefore = query.CreatedBefore?.ToUnixTimeMilliseconds(),
            query.Before,
            query.Limit,
        });
        for (var i = 0; i < query.Metadata.Count; i++)
        {
            parameters.Add("MetaKey" + i, query.Metadata[i].Key);
            parameters.Add("MetaValue" + i, query.Metadata[i].Value);
        }

        return parameters;
    }

    /// <summary>
    /// Newest first along the (account_id, id) index, or the (account_id, idempotency_key) one for a key; only the
    /// filters given are in the statement, so that the engine plans each combination for what it asks.
    /// </summary>
    internal string ListSql(ExecutionQuery q)
    {
        var shape = (q.Status is null ? 0 : 1) | (q.Model is null ? 0 : 2) | (q.IdempotencyKey is null ? 0 : 4) | (q.CreatedAfter is null ? 0 : 8)
            | (q.CreatedBefore is null ? 0 : 16) | (q.Before is null ? 0 : 32) | (q.Metadata.Count << 6);
        return _listSql.GetOrAdd(shape, static (shape, metadataIs) =>
        {
            var sql = new StringBuilder("SELECT * FROM executions WHERE account_id = @accountId");
            sql.Append((shape & 4) != 0 ? " AND idempotency_key = @IdempotencyKey" : "");
            sql.Append((shape & 1) != 0 ? " AND status = @Status" : "");
            sql.Append((shape & 2) != 0 ? " AND model = @Model" : "");

            // Ids begin with their creation millisecond (Storage/Ids.cs) and are never older than their created_at: the
            // lower id bound lets a time window end the scan at its start instead of at the account's first execution.
            sql.Append((shape & 8) != 0 ? " AND created_at > @CreatedAfter AND id >= @FromId" : "");
            sql.Append((shape & 16) != 0 ? " AND created_at < @CreatedBefore" : "");
            sql.Append((shape & 32) != 0 ? " AND id < @Before" : "");
            for (var i = 0; i < shape >> 6; i++)
            {
                sql.Append(" AND ").Append(metadataIs(i));
            }

            return sql.Append(" ORDER BY id DESC LIMIT @Limit").ToString();
        }, metadataIs);
    }

    /// <summary>
    /// The smallest execution id that can have been created after <paramref name="after"/>: "exe_" and the ULID time
    /// of the next millisecond, which sorts before every id of that millisecond or later.
    /// </summary>
    private static string LowestIdAfter(DateTimeOffset after)
    {
        const string alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
        var ms = Math.Max(0, after.ToUnixTimeMilliseconds() + 1);
        Span<char> time = stackalloc char[10];
        for (var i = 9; i >= 0; i--)
        {
            time[i] = alphabet[(int)(ms & 31)];
            ms >>= 5;
        }

        return string.Concat("exe_", time);
    }

    public Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<string>>(async c => [.. await c.QueryAsync<string>(_expiredSql, new { Now = now.ToUnixTimeMilliseconds(), max })], cancellationToken);

    public Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<Execution>>(
            async c => [.. (await c.QueryAsync<ExecutionRow>(AbandonedSql, new { Now = now.ToUnixTimeMilliseconds(), max })).Select(r => r.ToExecution())],
            cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ExecutionEvent>>(
            async c => [.. (await c.QueryAsync<EventRow>(EventsSql, new { executionId, afterSequence })).Select(r => r.ToEvent())],
            cancellationToken);

    public Task<IReadOnlyList<ExecutionEvent>> ListAccountEventsAsync(string accountId, long afterSequence, int limit, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ExecutionEvent>>(
            async c => [.. (await c.QueryAsync<EventRow>(AccountEventsSql, new { accountId, afterSequence, limit })).Select(r => r.ToEvent())],
            cancellationToken);

    public Task<long> LastAccountEventAsync(string accountId, CancellationToken cancellationToken) =>
        ReadAsync(c => c.QueryFirstOrDefaultAsync<long>(LastAccountEventSql, new { accountId }), cancellationToken);

    /// <summary>
    /// Deletes up to <paramref name="max"/> executions that ended before <paramref name="endedBefore"/>, with their rows.
    /// Ended executions never change again, so nothing else writes these rows: no lock is needed to delete them.
    /// </summary>
    public Task<IReadOnlyList<PurgedExecution>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) =>
        WriteAsync<IReadOnlyList<PurgedExecution>>(async (c, tx) =>
        {
            var rows = (await c.QueryPreparedAsync<PurgedRow>(_purgeEndedSql, new { Before = endedBefore.ToUnixTimeMilliseconds(), max }, tx)).ToArray();
            if (rows.Length > 0)
            {
                var ids = rows.Select(r => r.Id).ToArray();
                foreach (var sql in _purgeSql)
                {
                    await c.ExecutePreparedAsync(sql, new { ids }, tx);
                }
            }

            return (rows.Select(r => new PurgedExecution(r.Id, r.ArtifactStores())).ToArray(), true);
        }, cancellationToken);
}

/// <summary>An execution as a purge deleted it: its id and its artifacts' JSON.</summary>
internal sealed class PurgedRow
{
    public string Id { get; set; } = "";

    public string? Artifacts { get; set; }

    /// <summary>The stores its artifacts name, each once; an artifact naming none is in the file store.</summary>
    public IReadOnlyList<string> ArtifactStores() =>
        Artifacts is null or "[]"
            ? []
            : [.. StoreJson.Artifacts(Artifacts).Select(a => a.Store ?? ArtifactStoreKinds.File).Distinct(StringComparer.Ordinal)];
}
