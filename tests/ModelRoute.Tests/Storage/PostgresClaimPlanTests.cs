using Dapper;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The dispatcher's claim must walk the due index in order, so that it reads a few rows whatever the
/// backlog. Statistics lag behind a growing backlog, and with an estimate of a few rows PostgreSQL
/// read and sorted every PENDING row on every claim.
/// </summary>
public sealed class PostgresClaimPlanTests
{
    [Fact]
    public async Task The_claim_walks_the_due_index_even_when_the_statistics_saw_an_empty_table()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("claimplan", async connection =>
        {
            await connection.ExecuteAsync("ANALYZE executions"); // Statistics of the empty table, as after a quiet spell.
            await connection.ExecuteAsync(
                """
                INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
                    held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at)
                SELECT 'exe_' || i, 'acct_1', 'sim/text', 'PENDING', 'key-' || i, 'hash', '{}', 1, 1, '{}', 600, i, i, 10000000 + i, i
                FROM generate_series(1, 20000) AS i
                """);

            // As the store sends it: the planner settings and the statement in one batch.
            await using var batch = PostgresDatabase.OrderedScan(connection, PostgresDatabase.Statement(
                "EXPLAIN " + PostgresExecutionStore.ClaimSql, new { owner = "node", LeaseUntil = 40_000L, Now = 30_000L, max = 64 }));
            var lines = new List<string>();
            await using (var reader = await batch.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                {
                    lines.Add(reader.GetString(0));
                }
            }

            var plan = string.Join('\n', lines);
            plan.ShouldContain("Index Scan using ix_executions_due", customMessage: plan);
            plan.ShouldNotContain("Bitmap", customMessage: plan);
            plan.ShouldNotContain("Sort", customMessage: plan);
        });
    }
}
