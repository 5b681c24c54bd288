using System.Data.Common;
using Dapper;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Storage.Sqlite;

namespace ModelRoute.Server.Storage;

/// <summary>
/// The execution reads whose SQL is the same on SQLite and PostgreSQL but for how a parameter is tested for NULL
/// (PostgreSQL must be told the type of a parameter it only compares with NULL): each store makes one with its
/// engine's test and runs these on its own connections.
/// </summary>
/// <param name="isNull">The engine's <c>@name IS NULL</c> for a parameter of the given SQL type ("text", "bigint").</param>
internal sealed class ExecutionReads(Func<string, string, string> isNull)
{
    private const string ByKeySql = "SELECT * FROM executions WHERE account_id = @accountId AND idempotency_key = @idempotencyKey";

    private const string AbandonedSql =
        "SELECT * FROM executions WHERE status = 'PROCESSING' AND lease_expires_at <= @Now ORDER BY lease_expires_at LIMIT @max";

    private const string EventsSql = "SELECT * FROM execution_events WHERE execution_id = @executionId AND seq > @afterSequence ORDER BY seq";

    private readonly string _byIdSql = $"SELECT * FROM executions WHERE id = @id AND ({isNull("accountId", "text")} OR account_id = @accountId)";

    /// <summary>Newest first, each filter applied only when given.</summary>
    private readonly string _listSql = $"""
        SELECT * FROM executions
        WHERE account_id = @accountId
          AND ({isNull("Status", "text")} OR status = @Status)
          AND ({isNull("Model", "text")} OR model = @Model)
          AND ({isNull("CreatedAfter", "bigint")} OR created_at > @CreatedAfter)
          AND ({isNull("Before", "text")} OR id < @Before)
        ORDER BY id DESC
        LIMIT @Limit
        """;

    /// <summary>
    /// The account's execution with the submission's key, as a replay or a reuse; null when the key is free. Read in
    /// the submission's own transaction when <paramref name="tx"/> is given.
    /// </summary>
    public static async Task<SubmitOutcome?> ExistingAsync(DbConnection c, DbTransaction? tx, NewExecution x)
    {
        var existing = await c.QueryFirstOrDefaultPreparedAsync<ExecutionRow>(
            "SELECT * FROM executions WHERE account_id = @AccountId AND idempotency_key = @IdempotencyKey",
            new { x.AccountId, x.IdempotencyKey },
            tx);
        return existing is null
            ? null
            : new SubmitOutcome(existing.RequestHash == x.RequestHash ? SubmitResult.Replayed : SubmitResult.KeyReused, existing.ToExecution());
    }

    public async Task<Execution?> GetAsync(DbConnection c, string id, string? accountId) =>
        (await c.QueryFirstOrDefaultAsync<ExecutionRow>(_byIdSql, new { id, accountId }))?.ToExecution();

    public static async Task<Execution?> FindByIdempotencyKeyAsync(DbConnection c, string accountId, string idempotencyKey) =>
        (await c.QueryFirstOrDefaultAsync<ExecutionRow>(ByKeySql, new { accountId, idempotencyKey }))?.ToExecution();

    public async Task<IReadOnlyList<Execution>> ListAsync(DbConnection c, string accountId, ExecutionQuery query)
    {
        var rows = await c.QueryAsync<ExecutionRow>(
            _listSql,
            new
            {
                accountId,
                Status = query.Status?.ToWire(),
                query.Model,
                CreatedAfter = query.CreatedAfter?.ToUnixTimeMilliseconds(),
                query.Before,
                query.Limit,
            });
        return [.. rows.Select(r => r.ToExecution())];
    }

    public static async Task<IReadOnlyList<Execution>> ListAbandonedAsync(DbConnection c, DateTimeOffset now, int max) =>
        [.. (await c.QueryAsync<ExecutionRow>(AbandonedSql, new { Now = now.ToUnixTimeMilliseconds(), max })).Select(r => r.ToExecution())];

    public static async Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(DbConnection c, string executionId, long afterSequence) =>
        [.. (await c.QueryAsync<EventRow>(EventsSql, new { executionId, afterSequence })).Select(r => r.ToEvent())];
}
