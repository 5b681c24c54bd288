using Dapper;
using ModelRoute.Server.Storage.Postgres;

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
            await using var batch = PostgresDatabase.ClaimBatch(connection, PostgresDatabase.Statement(
                "EXPLAIN " + PostgresExecutionStore.ClaimSql, new { owner = "node", LeaseUntil = 40_000L, Now = 30_000L, max = 64 }));
            var lines = new List<string>();
            await using (var reader = await batch.ExecuteReaderAsync())
            {
                await reader.NextResultAsync();
                while (await reader.ReadAsync())
                {
                    lines.Add(reader.GetString(0));
                }
            }

            var plan = string.Join('\n', lines);
            WalksIndexes(plan);
        });
    }

    [Fact]
    public async Task A_claim_reads_none_of_the_rows_that_earlier_claims_leased()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("claimleased", async connection =>
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
                    held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at)
                SELECT 'exe_' || i, 'acct_1', 'sim/text', 'PENDING', 'key-' || i, 'hash', '{}', 1, 1, '{}', 600, i, i, 10000000 + i, i
                FROM generate_series(1, 2000) AS i
                """);
            await ClaimAsync(connection, "", max: 1000); // Leased, waiting for a place to start: the front of the queue.

            // The leased rows wait at the back of the due index, behind their lease, instead of at the front where every
            // claim read past them (under load a thousand rows, most of a claim's time).
            var plan = await ClaimAsync(connection, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ", max: 64);
            WalksIndexes(plan);
            System.Text.RegularExpressions.Regex.IsMatch(plan, "Rows Removed by Filter: [1-9]").ShouldBeFalse(plan);
            var claimed = await connection.QuerySingleAsync<(long Leased, long Min, long Max)>(
                "SELECT count(*), min(created_at), max(created_at) FROM executions WHERE lease_owner IS NOT NULL");
            claimed.ShouldBe((1064L, 1L, 1064L));

            // And a lease that runs out makes its row due again, for any node: a claim then takes them all.
            var later = await ClaimAsync(connection, "", max: 5000, now: 40_000L);
            later.Split('\n').Length.ShouldBe(2000);
        });
    }

    /// <summary>
    /// The accounts with PENDING work and the front of each one's queue are read from the due index in order, the rows
    /// claimed are found by primary key: no table is scanned and nothing is sorted but the few rows found (fair share,
    /// docs/routing.md).
    /// </summary>
    private static void WalksIndexes(string plan)
    {
        plan.ShouldContain("Index Scan using ix_executions_account_due on executions x", customMessage: plan);
        plan.ShouldContain("Index Scan using executions_pkey on executions", customMessage: plan);
        plan.ShouldNotContain("Seq Scan", customMessage: plan);
        plan.ShouldNotContain("Bitmap", customMessage: plan);
        foreach (var sort in System.Text.RegularExpressions.Regex.Matches(plan, @"Sort Key: ([^\n]*)").Select(m => m.Groups[1].Value))
        {
            System.Text.RegularExpressions.Regex.IsMatch(sort, @"^(due(_\d+)?\.account_id, due(_\d+)?\.next_attempt_at|placed\.place, placed\.next_attempt_at)$").ShouldBeTrue(plan);
        }
    }

    [Fact]
    public async Task With_many_accounts_the_claim_reads_the_front_of_each_queue_and_counts_only_their_calls()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("claimaccounts", async connection =>
        {
            // Of 5,000 accounts, 20 with 500 due each and 100 calls running for each.
            await connection.ExecuteAsync(
                """
                INSERT INTO accounts (id, created_at) SELECT 'acct_' || a, 0 FROM generate_series(1, 5000) AS a;
                INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
                    held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at)
                SELECT 'exe_' || a || '_' || i, 'acct_' || a, 'sim/text', CASE WHEN i <= 100 THEN 'PROCESSING' ELSE 'PENDING' END,
                    'key-' || i, 'hash', '{}', 1, 1, '{}', 600, i, i, 10000000 + i, i,
                    CASE WHEN i <= 100 THEN 'node' END, CASE WHEN i <= 100 THEN 40000 END
                FROM generate_series(1, 20) AS a, generate_series(1, 600) AS i;
                """);
            // As autovacuum leaves a table: with every row just written in order, the planner preferred walking all the
            // calls in lease order to fetching one account's from the heap, which a real table's spread makes dearer.
            await connection.ExecuteAsync("VACUUM ANALYZE executions");
            await connection.ExecuteAsync("ANALYZE accounts");

            var plan = await ClaimAsync(connection, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ", max: 64);

            WalksIndexes(plan);
            plan.ShouldContain("Index Only Scan using ix_executions_account_processing on executions r", customMessage: plan);
            plan.ShouldContain("Index Scan using accounts_pkey on accounts a", customMessage: plan);
            var claimed = await connection.QueryAsync<(string AccountId, long Count)>(
                "SELECT account_id, count(*) FROM executions WHERE status = 'PENDING' AND lease_owner IS NOT NULL GROUP BY account_id");
            claimed.Select(c => c.Count).ShouldAllBe(n => n == 3 || n == 4, "64 places over 20 accounts with as many in flight");
        });
    }

    private static async Task<string> ClaimAsync(Npgsql.NpgsqlConnection connection, string prefix, int max, long now = 30_000L)
    {
        await using var batch = PostgresDatabase.ClaimBatch(connection, PostgresDatabase.Statement(
            prefix + PostgresExecutionStore.ClaimSql, new { owner = "node", LeaseUntil = now + 10_000L, Now = now, max }));
        var lines = new List<string>();
        await using var reader = await batch.ExecuteReaderAsync();
        await reader.NextResultAsync();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetValue(0).ToString()!);
        }

        return string.Join('\n', lines);
    }

    [Fact]
    public async Task The_claim_settings_hold_for_its_batch_alone_and_make_PostgreSQL_warn_of_nothing()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("claimsettings", async connection =>
        {
            // SET LOCAL outside an explicit transaction took effect too, but PostgreSQL answered every claim with
            // "WARNING: SET LOCAL can only be used in transaction blocks", in its log and as a notice to the client.
            var notices = new List<string>();
            connection.Notice += (_, e) => notices.Add($"{e.Notice.Severity}: {e.Notice.MessageText}");
            const string Settings = "SELECT current_setting('enable_bitmapscan'), current_setting('enable_sort'), current_setting('synchronous_commit')";
            await connection.ExecuteAsync("SET synchronous_commit = on"); // As in production; the test cluster runs with it off.

            await using (var batch = PostgresDatabase.ClaimBatch(connection, PostgresDatabase.Statement(Settings, new { })))
            await using (var reader = await batch.ExecuteReaderAsync())
            {
                await reader.NextResultAsync();
                (await reader.ReadAsync()).ShouldBeTrue();
                new[] { reader.GetString(0), reader.GetString(1), reader.GetString(2) }.ShouldBe(["off", "off", "off"]);
            }

            // And no JIT compilation of the claim, which enable_sort = off would price far past its threshold.
            await using (var batch = PostgresDatabase.ClaimBatch(connection, PostgresDatabase.Statement("SELECT current_setting('jit')", new { })))
            await using (var reader = await batch.ExecuteReaderAsync())
            {
                await reader.NextResultAsync();
                (await reader.ReadAsync()).ShouldBeTrue();
                reader.GetString(0).ShouldBe("off");
            }

            // Local to the batch's implicit transaction: the pooled connection's next user gets the defaults.
            var after = await connection.QuerySingleAsync<(string, string, string)>(Settings);
            after.ShouldBe(("on", "on", "on"));
            notices.ShouldBeEmpty();
        });
    }
}
