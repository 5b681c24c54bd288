using System.Text.Json.Serialization;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Billing;

/// <summary>
/// Usage as the API shows it (docs/api.md#usage): the range (<c>to</c> exclusive), the grouping, the totals and one row
/// per group. <see cref="AccountId"/> is the account whose usage it is, null for the operator's view of every account.
/// </summary>
public sealed record UsageView(
    string Object, string? AccountId, string From, string To, string GroupBy, string Currency, UsageTotalsView Totals, IReadOnlyList<UsageRowView> Data)
{
    /// <summary>
    /// The view of <paramref name="rows"/> as read for <paramref name="range"/>. Grouped by day, every day of the range
    /// has its row, zero when nothing ended that day, so that a chart of it has no gaps.
    /// </summary>
    public static UsageView Of(string? accountId, UsageRange range, UsageGrouping groupBy, IReadOnlyList<UsageRow> rows)
    {
        var data = groupBy == UsageGrouping.Day ? EveryDay(range, rows) : [.. rows.Select(r => UsageRowView.From(groupBy, r))];
        var totals = new UsageTotalsView(
            rows.Sum(r => r.Executions), rows.Sum(r => r.Completed), rows.Sum(r => r.Failed), rows.Sum(r => r.Cancelled), rows.Sum(r => r.Expired),
            Money.Format(rows.Sum(r => r.ChargedMicros)), Money.Format(rows.Sum(r => r.OverageMicros)));
        return new UsageView("usage", accountId, range.From, range.To, groupBy.ToString().ToLowerInvariant(), "usd", totals, data);
    }

    private static List<UsageRowView> EveryDay(UsageRange range, IReadOnlyList<UsageRow> rows)
    {
        var byDay = rows.ToDictionary(r => long.Parse(r.Group!, CultureInfo.InvariantCulture));
        var days = new List<UsageRowView>((int)(range.ToDay - range.FromDay));
        for (var day = range.FromDay; day < range.ToDay; day++)
        {
            var row = byDay.GetValueOrDefault(day) ?? new UsageRow(null, 0, 0, 0, 0, 0, 0, 0);
            days.Add(UsageRowView.From(UsageGrouping.Day, row with { Group = UsageRange.Format(day) }));
        }

        return days;
    }
}

/// <summary>The range's totals: executions ended, by how they ended, what they were charged and their overage.</summary>
public sealed record UsageTotalsView(long Executions, long Completed, long Failed, long Cancelled, long Expired, string Charged, string Overage);

/// <summary>One group's usage; the group's own member (model, day, api_key_id or account_id) comes first.</summary>
[JsonDerivedType(typeof(ModelUsageView))]
[JsonDerivedType(typeof(DayUsageView))]
[JsonDerivedType(typeof(KeyUsageView))]
[JsonDerivedType(typeof(AccountUsageView))]
public abstract record UsageRowView
{
    private protected UsageRowView(UsageRow row)
    {
        Executions = row.Executions;
        Completed = row.Completed;
        Failed = row.Failed;
        Cancelled = row.Cancelled;
        Expired = row.Expired;
        Charged = Money.Format(row.ChargedMicros);
        Overage = Money.Format(row.OverageMicros);
    }

    /// <summary>Executions that ended in the group: completed, failed, cancelled and expired.</summary>
    public long Executions { get; }

    public long Completed { get; }

    public long Failed { get; }

    public long Cancelled { get; }

    public long Expired { get; }

    /// <summary>What the executions were charged: actual costs capped at their holds (docs/api.md#money).</summary>
    public string Charged { get; }

    /// <summary>What their costs came to above their holds, not charged.</summary>
    public string Overage { get; }

    /// <summary>The view of one row; for <see cref="UsageGrouping.Day"/>, <see cref="UsageRow.Group"/> is already the date.</summary>
    public static UsageRowView From(UsageGrouping groupBy, UsageRow row) => groupBy switch
    {
        UsageGrouping.Model => new ModelUsageView(row),
        UsageGrouping.Day => new DayUsageView(row),
        UsageGrouping.Key => new KeyUsageView(row),
        _ => new AccountUsageView(row),
    };
}

public sealed record ModelUsageView : UsageRowView
{
    public ModelUsageView(UsageRow row) : base(row) => Model = row.Group!;

    [JsonPropertyOrder(-1)]
    public string Model { get; }
}

public sealed record DayUsageView : UsageRowView
{
    public DayUsageView(UsageRow row) : base(row) => Day = row.Group!;

    /// <summary>A UTC day, <c>2026-12-01</c>.</summary>
    [JsonPropertyOrder(-1)]
    public string Day { get; }
}

public sealed record KeyUsageView : UsageRowView
{
    public KeyUsageView(UsageRow row) : base(row) => ApiKeyId = row.Group;

    /// <summary>The API key's id; null for executions from before keys were recorded.</summary>
    [JsonPropertyOrder(-1)]
    public string? ApiKeyId { get; }
}

public sealed record AccountUsageView : UsageRowView
{
    public AccountUsageView(UsageRow row) : base(row) => AccountId = row.Group!;

    [JsonPropertyOrder(-1)]
    public string AccountId { get; }
}
