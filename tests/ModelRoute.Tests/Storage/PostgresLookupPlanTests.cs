using Dapper;
using ModelRoute.Server.Storage.Postgres;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The writes that touch one row by id must find it through the primary key (an endpoint's deliveries through the
/// endpoint's index) however big a backlog is. With
/// statistics taken while almost every row had ended, PostgreSQL once chose to scan a whole partial index (the due
/// executions, the open ones, the due deliveries) whose predicate the statement's status condition matched:
/// 15 ms a move with 30,000 PENDING rows, and dispatch stalled for most of a minute after a burst.
/// </summary>
public sealed class PostgresLookupPlanTests
{
    public static TheoryData<string> PlanModes => new() { "force_custom_plan", "force_generic_plan" };

    [Theory]
    [MemberData(nameof(PlanModes))]
    public async Task Writes_by_id_use_the_primary_key_even_when_the_statistics_predate_a_backlog(string planMode)
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("lookupplan", async connection =>
        {
            // Statistics taken while every row had ended (after a quiet spell), then a burst leaves 20,000 waiting.
            await InsertAsync(connection, "done", "COMPLETED", "succeeded");
            await connection.ExecuteAsync("ANALYZE executions; ANALYZE webhook_deliveries");
            await InsertAsync(connection, "exe", "PENDING", "pending");
            await connection.ExecuteAsync($"SET plan_cache_mode = {planMode}");

            var start = TransitionValues.For(
                ExecutionTransition.StartAttempt("exe_10000", "node", DateTimeOffset.FromUnixTimeMilliseconds(60_000), "sim", "sim-text", "hash"), 40_000)
                with { EventId = "evt_x", EventType = "execution.processing" };
            var outcome = TransitionValues.For(
                ExecutionTransition.Complete("exe_10000", [ExecutionStatus.Processing], "{}", [], new ModelRoute.Server.Billing.Usage(InputTokens: 1),
                    1, new AttemptRecord(1, "sim", "sim-text", "completed", DateTimeOffset.FromUnixTimeMilliseconds(40_000), 1), "node"), 40_001)
                with { EventId = "evt_y", EventType = "execution.completed" };
            var statements = new (string What, string Sql, object Parameters, string Key)[]
            {
                ("a state move", PostgresExecutionStore.MoveSql, start, "executions_pkey"),
                ("an attempt's start and outcome as one move", PostgresExecutionStore.FusedAttemptSql, PostgresExecutionStore.FusedValues(start, outcome), "executions_pkey"),
                ("giving a claim back", PostgresExecutionStore.ReleaseClaimSql, new { id = "exe_10000", owner = "node", NotBefore = 41_000L }, "executions_pkey"),
                ("renewing a lease", PostgresExecutionStore.RenewLeaseSql, new { id = "exe_10000", owner = "node", Until = 70_000L }, "executions_pkey"),
                ("recording delivery attempts", PostgresWebhookOutbox.RecordAttemptsSql,
                    new
                    {
                        DeliveryIds = new[] { "whd_exe10000", "whd_exe10001" }, Owners = new[] { "node", "node" }, Statuses = new[] { "succeeded", "pending" },
                        Nows = new[] { 40_000L, 40_001L }, Nexts = new long?[] { null, 50_000L }, StatusCodes = new int?[] { 200, 500 },
                        Errors = new string?[] { null, "The receiver answered 500." }, AttemptIds = new[] { "wha_1", "wha_2" }, LatencyMs = new[] { 3L, 4L },
                        Bodies = new string?[] { null, "down" }, Truncated = new[] { false, false },
                    },
                    "webhook_deliveries_pkey"),
                ("failing an endpoint's pending deliveries", PostgresWebhookOutbox.FailPendingSql,
                    new { endpointId = "whe_1", reason = "gone", now = 40_000L }, "ix_webhook_deliveries_endpoint"),
            };

            foreach (var (what, sql, parameters, key) in statements)
            {
                var plan = await ExplainAsync(connection, sql, parameters);
                plan.ShouldContain(key, customMessage: $"{what} ({planMode}):\n{plan}");
                plan.ShouldNotContain("using ix_executions", customMessage: $"{what} ({planMode}):\n{plan}");
                plan.ShouldNotContain("using ix_webhook_deliveries_due", customMessage: $"{what} ({planMode}):\n{plan}");
            }
        });
    }

    private static Task InsertAsync(NpgsqlConnection connection, string prefix, string status, string deliveryStatus) =>
        connection.ExecuteAsync(
            """
            INSERT INTO executions (id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros,
                held_micros, price, timeout_seconds, created_at, updated_at, expires_at, next_attempt_at, lease_owner, lease_expires_at)
            SELECT @prefix || '_' || i, 'acct_1', 'sim/text', @status, @prefix || '-' || i, 'hash', '{}', 1, 1, '{}', 600, i, i, 10000000 + i, i, 'node', 50000
            FROM generate_series(1, 20000) AS i;
            INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status,
                next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at)
            SELECT 'whd_' || @prefix || i, 'evt_' || @prefix || i, 'acct_1', @prefix || '_' || i, 'whe_' || (i % 100), 'https://example.com/hook', 'execution.completed', '{}',
                @deliveryStatus, i, i, i, 'node', 50000
            FROM generate_series(1, 20000) AS i;
            """,
            new { prefix, status, deliveryStatus });

    /// <summary>
    /// The plan of the statement, prepared on the server (so that plan_cache_mode decides between a plan for these
    /// values and a generic one, as for the store's own prepared statements) and explained as executed with the values.
    /// </summary>
    private static async Task<string> ExplainAsync(NpgsqlConnection connection, string sql, object parameters)
    {
        var statement = PostgresDatabase.Statement(sql, parameters);
        await connection.ExecuteAsync("DEALLOCATE ALL");
        var types = string.Join(", ", statement.Parameters.Select(p => p.DataTypeName ?? throw new InvalidOperationException("untyped parameter")));
        await using (var prepare = new NpgsqlCommand($"PREPARE lookup({types}) AS " + statement.CommandText, connection))
        {
            await prepare.ExecuteNonQueryAsync();
        }

        // EXECUTE is a utility statement, which takes no bound parameters: the values go in as literals.
        var values = string.Join(", ", statement.Parameters.Select(p => $"{Literal(p.Value)}::{p.DataTypeName}"));
        await using var explain = new NpgsqlCommand($"EXPLAIN EXECUTE lookup({values})", connection);

        var lines = new List<string>();
        await using var reader = await explain.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join('\n', lines);
    }

    private static string Literal(object? value) => value switch
    {
        null or DBNull => "NULL",
        string text => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'",
        System.Collections.IEnumerable items => "ARRAY[" + string.Join(", ", items.Cast<object?>().Select(Literal)) + "]",
        bool flag => flag ? "true" : "false",
        IFormattable number => number.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new NotSupportedException(value.GetType().Name),
    };
}
