using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Server.Storage.Sqlite;
using Npgsql;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#store-gauges: the store-wide counts behind the gauges, on both engines, and that they read
/// only unfinished rows (partial indexes) however many ended executions and delivered webhooks the store keeps.
/// </summary>
public sealed class OperationalCountsTests : IDisposable
{
    private const int Ended = 20_000;

    /// <summary>Many ended executions and sent deliveries, and a few unfinished ones of every kind (times in unix ms).</summary>
    private static readonly string Rows =
        $$"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {{Ended}})
        INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
            held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at, completed_at)
        SELECT 'exe_done_' || i, 'acct_' || (i % 100), 'sim/text', 'COMPLETED', 'key-' || i, 'hash', '{}', 1, 7, '{}', 600, i, i, 10000000 + i, i, i
        FROM n;
        INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
            held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at) VALUES
            ('exe_p1', 'acct_1', 'sim/text', 'PENDING', 'p1', 'hash', '{}', 1, 100, '{}', 600, 1000, 1000, 10000000, 1000),
            ('exe_p2', 'acct_1', 'sim/text', 'PENDING', 'p2', 'hash', '{}', 1, 100, '{}', 600, 1001, 1001, 10000000, 1001),
            ('exe_p3', 'acct_2', 'sim/text', 'PENDING', 'p3', 'hash', '{}', 1, 100, '{}', 600, 1002, 1002, 10000000, 1002),
            ('exe_free', 'acct_2', 'sim/text', 'PENDING', 'free', 'hash', '{}', 0, 0, '{}', 600, 500, 500, 10000000, 500),
            ('exe_r1', 'acct_1', 'sim/text', 'PROCESSING', 'r1', 'hash', '{}', 1, 200, '{}', 600, 900, 900, 10000000, 900),
            ('exe_r2', 'acct_3', 'sim/text', 'PROCESSING', 'r2', 'hash', '{}', 1, 200, '{}', 600, 950, 950, 10000000, 950),
            ('exe_w1', 'acct_3', 'sim/text', 'AWAITING_WEBHOOK', 'w1', 'hash', '{}', 1, 50, '{}', 600, 2000, 2000, 10000000, 2000);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {{Ended / 4}})
        INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at)
        SELECT 'whd_done_' || i, 'evt_' || i, 'acct_1', 'exe_done_' || i, 'http://example.test/hook', 'execution.completed', '{}', 'succeeded', i, i, i
        FROM n;
        INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, url, event_type, payload, status, next_attempt_at, created_at, updated_at) VALUES
            ('whd_1', 'evt_a', 'acct_1', 'exe_p1', 'http://example.test/hook', 'execution.completed', '{}', 'pending', 9000, 3000, 3000),
            ('whd_2', 'evt_b', 'acct_1', 'exe_p2', 'http://example.test/hook', 'execution.completed', '{}', 'pending', 9000, 3100, 3100),
            ('whd_3', 'evt_c', 'acct_1', 'exe_p3', 'http://example.test/hook', 'execution.completed', '{}', 'failed', 9000, 100, 100);
        """;

    private static readonly OperationalCounts Expected = new(
        Pending: 4, Processing: 2, AwaitingWebhook: 1, HeldMicros: 3 * 100 + 2 * 200 + 50, OldestHoldAt: 900, OutboxBacklog: 2, OldestDeliveryAt: 3000);

    private readonly string _directory = TestPaths.NewTempDirectory("operational-counts");

    [Fact]
    public async Task SQLite_counts_unfinished_executions_money_held_and_pending_deliveries()
    {
        using var db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "counts.db")}");
        await db.MigrateAsync(CancellationToken.None);
        var store = new OperationalCountsStore(new SqliteDialect(db));
        (await store.CountAsync(CancellationToken.None)).ShouldBe(new OperationalCounts(0, 0, 0, 0, null, 0, null));

        await using (var connection = await db.OpenAsync(CancellationToken.None))
        {
            await connection.ExecuteAsync(Rows);
        }

        (await store.CountAsync(CancellationToken.None)).ShouldBe(Expected);
    }

    [Fact]
    public async Task PostgreSQL_counts_unfinished_executions_money_held_and_pending_deliveries()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var name = await cluster.CreateDatabaseAsync("opcounts");
        try
        {
            await using var db = new PostgresDatabase(cluster.ConnectionString(name));
            await db.MigrateAsync(CancellationToken.None);
            var store = new OperationalCountsStore(new PostgresDialect(db));
            (await store.CountAsync(CancellationToken.None)).ShouldBe(new OperationalCounts(0, 0, 0, 0, null, 0, null));

            await using (var connection = new NpgsqlConnection(cluster.ConnectionString(name)))
            {
                await connection.ExecuteAsync(Rows);
            }

            (await store.CountAsync(CancellationToken.None)).ShouldBe(Expected);
        }
        finally
        {
            await cluster.DropDatabaseAsync(name);
        }
    }

    [Fact]
    public async Task SQLite_reads_only_unfinished_rows_through_the_partial_indexes()
    {
        using var db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "plans.db")}");
        await db.MigrateAsync(CancellationToken.None);
        await using var connection = await db.OpenAsync(CancellationToken.None);
        await connection.ExecuteAsync(Rows);
        await connection.ExecuteAsync("ANALYZE", commandType: System.Data.CommandType.Text); // With statistics too, the planner must not prefer the table.

        var executions = await PlanAsync(connection, "EXPLAIN QUERY PLAN " + OperationalCountsStore.ExecutionsSql, 3);
        executions.ShouldContain("USING INDEX ix_executions_open_expiry", Case.Sensitive, executions);
        var outbox = await PlanAsync(connection, "EXPLAIN QUERY PLAN " + OperationalCountsStore.OutboxSql, 3);
        outbox.ShouldContain("USING INDEX ix_webhook_deliveries_due", Case.Sensitive, outbox);
    }

    [Fact]
    public async Task PostgreSQL_reads_only_unfinished_rows_through_the_partial_indexes()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("opcountplans", async connection =>
        {
            await connection.ExecuteAsync(Rows);
            await connection.ExecuteAsync("ANALYZE", commandType: System.Data.CommandType.Text);

            foreach (var sql in new[] { OperationalCountsStore.ExecutionsSql, OperationalCountsStore.OutboxSql })
            {
                var plan = await PlanAsync(connection, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, 0);
                plan.ShouldNotContain("Seq Scan", Case.Sensitive, plan);
                plan.ShouldMatch(@"Index (Only )?Scan using (ix_executions_open_expiry|ix_webhook_deliveries_due)", plan);
            }
        });
    }

    public void Dispose() => TestPaths.TryDelete(_directory);

    private static async Task<string> PlanAsync(DbConnection connection, string sql, int column) =>
        string.Join('\n', (await connection.QueryAsync(sql)).Select(row => ((IDictionary<string, object>)row).Values.ElementAt(column)?.ToString()));
}
