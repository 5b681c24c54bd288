using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Sqlite;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// docs/api.md#usage: a usage read touches the usage totals alone, never the executions, and finds an account's rows
/// through the primary key (account, day, …) and the operator's through the day index, so that it costs the same with
/// millions of executions stored and stays a range read as the totals grow.
/// </summary>
public sealed class UsagePlanTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("usage-plan");

    public static TheoryData<UsageGrouping> Groupings => new() { UsageGrouping.Model, UsageGrouping.Day, UsageGrouping.Key, UsageGrouping.Account };

    [Theory]
    [MemberData(nameof(Groupings))]
    public async Task On_SQLite_an_accounts_usage_is_a_range_of_the_primary_key_and_the_operators_a_range_of_days(UsageGrouping groupBy)
    {
        using var db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "u.db")}");
        await db.MigrateAsync(CancellationToken.None);
        await using var c = await db.OpenAsync(CancellationToken.None);
        var parameters = new { AccountId = "acct_1", From = 20_000L, To = 20_030L };

        var own = await PlanAsync(c, UsageStore.SqlFor(groupBy, oneAccount: true), parameters);
        var all = await PlanAsync(c, UsageStore.SqlFor(groupBy, oneAccount: false), parameters);

        own.ShouldContain("SEARCH usage_daily USING PRIMARY KEY (account_id=? AND day>? AND day<?)");
        all.ShouldContain("SEARCH usage_daily USING INDEX ix_usage_daily_day (day>? AND day<?)");
        foreach (var plan in new[] { own, all })
        {
            plan.ShouldNotContain("executions");
            plan.ShouldNotContain("SCAN usage_daily");
        }
    }

    [Fact]
    public async Task On_PostgreSQL_an_accounts_usage_reads_its_rows_through_the_primary_key_among_many_accounts()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("usageplan", async connection =>
        {
            // 2,000 accounts × 100 days × 2 models: 400,000 rows of totals, analyzed.
            await connection.ExecuteAsync(
                """
                INSERT INTO usage_daily (account_id, day, model, api_key_id, executions, completed, failed, cancelled, expired, charged_micros, overage_micros)
                SELECT 'acct_' || a, 20000 + d, m, '', 1, 1, 0, 0, 0, 10, 0
                FROM generate_series(1, 2000) a, generate_series(0, 99) d, unnest(ARRAY['sim/text', 'sim/image']) m;
                ANALYZE usage_daily;
                """);

            foreach (var groupBy in new[] { UsageGrouping.Model, UsageGrouping.Day, UsageGrouping.Key, UsageGrouping.Account })
            {
                var own = await ExplainAsync(connection, UsageStore.SqlFor(groupBy, oneAccount: true), "'acct_7'", 20_010, 20_040);
                var oneDay = await ExplainAsync(connection, UsageStore.SqlFor(groupBy, oneAccount: false), "NULL", 20_050, 20_051);

                own.ShouldContain("usage_daily_pkey", customMessage: own);
                own.ShouldNotContain("Seq Scan", customMessage: own);
                oneDay.ShouldContain("ix_usage_daily_day", customMessage: oneDay);
                (own + oneDay).ShouldNotContain("executions");
            }
        });
    }

    private static async Task<string> PlanAsync(SqliteConnection c, string sql, object parameters) =>
        string.Join(" | ", (await c.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>("EXPLAIN QUERY PLAN " + sql, parameters)).Select(p => p.Detail));

    private static async Task<string> ExplainAsync(Npgsql.NpgsqlConnection connection, string sql, string account, long from, long to)
    {
        var text = sql.Replace("@AccountId", account, StringComparison.Ordinal)
            .Replace("@From", from.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("@To", to.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        return string.Join('\n', await connection.QueryAsync<string>("EXPLAIN " + text));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        TestPaths.TryDelete(_directory);
    }
}
