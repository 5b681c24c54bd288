using Dapper;

namespace ModelRoute.Server.Storage;

/// <summary>
/// <see cref="IUsageStore"/> on either engine (<see cref="ISqlDialect"/>): the text is the same on both. An account's
/// read is a range of its primary key (account, day, …); the operator's across accounts a range of the day index.
/// </summary>
public sealed class UsageStore(ISqlDialect dialect) : IUsageStore
{
    private static readonly Dictionary<(UsageGrouping, bool), string> Statements = BuildStatements();

    public Task<IReadOnlyList<UsageRow>> ReadAsync(UsageQuery query, CancellationToken cancellationToken) =>
        dialect.ReadAsync<IReadOnlyList<UsageRow>>(async c =>
        {
            var sql = Statements[(query.GroupBy, query.AccountId is not null)];
            var command = new CommandDefinition(sql, new { query.AccountId, From = query.FromDay, To = query.ToDay }, cancellationToken: cancellationToken);
            var rows = await c.QueryAsync<Row>(command);
            return [.. rows.Select(r => r.ToUsage(query.GroupBy))];
        }, cancellationToken);

    /// <summary>The statement of a grouping, for one account or for all of them (exposed for the plan tests).</summary>
    internal static string SqlFor(UsageGrouping groupBy, bool oneAccount) => Statements[(groupBy, oneAccount)];

    private static Dictionary<(UsageGrouping, bool), string> BuildStatements()
    {
        var statements = new Dictionary<(UsageGrouping, bool), string>();
        foreach (var groupBy in Enum.GetValues<UsageGrouping>())
        {
            var column = groupBy switch
            {
                UsageGrouping.Model => "model",
                UsageGrouping.Day => "day",
                UsageGrouping.Key => "api_key_id",
                _ => "account_id",
            };
            foreach (var oneAccount in new[] { true, false })
            {
                // The group as text, so that one row type reads every grouping on both engines; sums cast back to
                // bigint (PostgreSQL's sum of bigint is numeric).
                statements[(groupBy, oneAccount)] = $"""
                    SELECT CAST({column} AS TEXT) AS group_key,
                        CAST(sum(executions) AS BIGINT) AS executions, CAST(sum(completed) AS BIGINT) AS completed,
                        CAST(sum(failed) AS BIGINT) AS failed, CAST(sum(cancelled) AS BIGINT) AS cancelled,
                        CAST(sum(expired) AS BIGINT) AS expired, CAST(sum(charged_micros) AS BIGINT) AS charged_micros,
                        CAST(sum(overage_micros) AS BIGINT) AS overage_micros
                    FROM usage_daily
                    WHERE {(oneAccount ? "account_id = @AccountId AND " : "")}day >= @From AND day < @To
                    GROUP BY {column}
                    ORDER BY {column}
                    """;
            }
        }

        return statements;
    }

    private sealed class Row
    {
        public string GroupKey { get; set; } = "";
        public long Executions { get; set; }
        public long Completed { get; set; }
        public long Failed { get; set; }
        public long Cancelled { get; set; }
        public long Expired { get; set; }
        public long ChargedMicros { get; set; }
        public long OverageMicros { get; set; }

        public UsageRow ToUsage(UsageGrouping groupBy) => new(
            groupBy == UsageGrouping.Key && GroupKey == UsageEnding.NoKey ? null : GroupKey,
            Executions, Completed, Failed, Cancelled, Expired, ChargedMicros, OverageMicros);
    }
}
