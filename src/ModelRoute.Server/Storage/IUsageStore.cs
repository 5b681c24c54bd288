namespace ModelRoute.Server.Storage;

/// <summary>How usage rows are grouped (docs/api.md#usage).</summary>
public enum UsageGrouping
{
    Model,
    Day,
    Key,
    Account,
}

/// <summary>
/// Usage over whole UTC days <see cref="FromDay"/> (inclusive) to <see cref="ToDay"/> (exclusive), each a number of days
/// since 1970-01-01, of one account, or of every account when <see cref="AccountId"/> is null (the operator's).
/// </summary>
public sealed record UsageQuery(string? AccountId, long FromDay, long ToDay, UsageGrouping GroupBy);

/// <summary>
/// One group's usage: the executions that ended in it, by how they ended, what they were charged and what their cost
/// came to above their holds. <see cref="Group"/> is the model, the account id, the key id (null for executions from
/// before keys were recorded) or the day as its number of days since 1970-01-01.
/// </summary>
public sealed record UsageRow(string? Group, long Executions, long Completed, long Failed, long Cancelled, long Expired, long ChargedMicros, long OverageMicros);

/// <summary>
/// The usage kept at settlement (<see cref="UsageEnding"/>), read from its rows alone: never from the executions, so a
/// read costs the same with millions of them stored (docs/api.md#usage).
/// </summary>
public interface IUsageStore
{
    /// <summary>One row per group with anything in the range, ordered by group.</summary>
    Task<IReadOnlyList<UsageRow>> ReadAsync(UsageQuery query, CancellationToken cancellationToken);
}
