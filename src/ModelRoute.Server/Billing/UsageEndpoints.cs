using Microsoft.AspNetCore.Http.HttpResults;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Billing;

/// <summary>
/// Usage per model, UTC day, API key or account (docs/api.md#usage), answered from the totals kept at settlement
/// (<see cref="IUsageStore"/>), never from the executions: an account's own, and the operator's across accounts.
/// </summary>
public static class UsageEndpoints
{
    public static void MapUsageEndpoints(this RouteGroupBuilder account)
    {
        var usage = account.MapGroup("/usage").WithTags("Usage");
        usage.MapGet("", GetOwnAsync)
            .WithSummary("This account's usage by model, UTC day or API key: executions ended, how, and what they were charged")
            .WithName("getUsage").ProducesProblem(400)
            .WithDescription("Totals kept at settlement over [from, to) (UTC dates or times; the last 30 days by default), grouped by model, day or key.");
    }

    public static void MapAdminUsageEndpoints(this RouteGroupBuilder admin)
    {
        var usage = admin.MapGroup("/usage");
        usage.MapGet("", GetAnyAsync)
            .WithSummary("Usage across accounts (or of one, with account_id) by model, UTC day or account")
            .WithName("getAdminUsage").ProducesProblem(400)
            .WithDescription("The same totals for every account, or one with account_id, grouped by model, day or account.");
    }

    private static async Task<Results<Ok<UsageView>, ProblemHttpResult>> GetOwnAsync(
        HttpContext context, IUsageStore store, TimeProvider time, string? from, string? to, string? group_by, CancellationToken cancellationToken)
    {
        if (context.Request.Query.ContainsKey("account_id"))
        {
            return Refused(Problem.Validation("account_id", "An API key sees only its own account's usage; 'account_id' is for the admin key (GET /v1/admin/usage)."));
        }

        var (query, problem) = Parse(context.User.AccountId(), from, to, group_by, "model, day or key", time.GetUtcNow(), UsageGrouping.Model, UsageGrouping.Day, UsageGrouping.Key);
        return problem is not null ? Refused(problem) : TypedResults.Ok(await ReadAsync(store, query!, cancellationToken));
    }

    private static async Task<Results<Ok<UsageView>, ProblemHttpResult>> GetAnyAsync(
        IUsageStore store, IAccountStore accounts, TimeProvider time, string? from, string? to, string? group_by, string? account_id, CancellationToken cancellationToken)
    {
        var (query, problem) = Parse(account_id, from, to, group_by, "model, day or account", time.GetUtcNow(), UsageGrouping.Model, UsageGrouping.Day, UsageGrouping.Account);
        if (problem is not null)
        {
            return Refused(problem);
        }

        if (account_id is not null && await accounts.GetAccountAsync(account_id, cancellationToken) is null)
        {
            return Refused(Problem.NotFound("The account"));
        }

        return TypedResults.Ok(await ReadAsync(store, query!, cancellationToken));
    }

    private static (UsageQuery? Query, Problem? Problem) Parse(
        string? accountId, string? from, string? to, string? groupBy, string allowed, DateTimeOffset now, params UsageGrouping[] groupings)
    {
        // The grouping first: the cheapest check, and the one a client most often gets wrong.
        var grouping = groupBy is null
            ? UsageGrouping.Day
            : groupings.Cast<UsageGrouping?>().FirstOrDefault(g => string.Equals(g!.Value.ToString().ToLowerInvariant(), groupBy, StringComparison.Ordinal));
        if (grouping is null)
        {
            return (null, Problem.Validation("group_by", $"'group_by' must be one of {allowed} (default day)."));
        }

        var (range, problem) = UsageRange.Parse(from, to, now);
        return problem is not null ? (null, problem) : (new UsageQuery(accountId, range!.FromDay, range.ToDay, grouping.Value), null);
    }

    private static async Task<UsageView> ReadAsync(IUsageStore store, UsageQuery query, CancellationToken cancellationToken)
    {
        var rows = await store.ReadAsync(query, cancellationToken);
        return UsageView.Of(query.AccountId, new UsageRange(query.FromDay, query.ToDay), query.GroupBy, rows);
    }

    private static ProblemHttpResult Refused(Problem problem) => TypedResults.Problem(problem.ToProblemDetails());
}
