using Microsoft.AspNetCore.Http.HttpResults;
using ModelRoute.Server.Http;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

public sealed record AccountView(string Id, string Object, string? Name, string Balance, string Held, string Available, string Currency, string CreatedAt, string Status, string? DisabledAt, int? MaxConcurrency)
{
    public static AccountView From(Account a) =>
        new(a.Id, "account", a.Name, Money.Format(a.BalanceMicros), Money.Format(a.HeldMicros), Money.Format(a.AvailableMicros), "usd", ExecutionView.Timestamp(a.CreatedAt),
            a.DisabledAt is null ? "active" : "disabled", ExecutionView.Timestamp(a.DisabledAt), a.MaxConcurrency);
}

public sealed record BalanceView(string Object, string Balance, string Held, string Available, string Currency);

public sealed record LedgerEntryView(string Id, string Object, string Kind, string Amount, string Balance, string Held, string? ExecutionId, string? Reference, string CreatedAt)
{
    public static LedgerEntryView From(LedgerEntry e) =>
        new(e.Id, "ledger_entry", e.Kind, Money.Format(e.AmountMicros), Money.Format(e.BalanceMicros), Money.Format(e.HeldMicros), e.ExecutionId, e.Reference, ExecutionView.Timestamp(e.CreatedAt));
}

public sealed record CreateAccountRequest(string? Name);

/// <summary>
/// A provider's state on this node, for the operator, with its calls of the last five minutes on this node
/// (docs/api.md#provider-health): error rate and latency are null when it made none. No URL or credential is shown.
/// </summary>
public sealed record ProviderView(
    string Name, string Object, string Kind, int MaxConcurrency, int InFlight, string Circuit, int RecentCalls, double? ErrorRate, LatencyView? LatencyMs)
{
    public static ProviderView From(Providers.ProviderEndpoint p, RecentCalls calls) => new(
        p.Name, "provider", p.Options.Kind, p.Options.MaxConcurrency, p.InFlight, p.Circuit, calls.Count,
        calls.Count == 0 ? null : Math.Round(calls.Failures / (double)calls.Count, 4),
        calls.Count == 0 ? null : new LatencyView(calls.P50Ms, calls.P95Ms));
}

public sealed record LatencyView(long P50, long P95);

/// <summary>Executions ended on this node per second, over the last minute: all endings, and those COMPLETED.</summary>
public sealed record ThroughputView(int WindowSeconds, double EndedPerSecond, double CompletedPerSecond);

/// <summary>The providers list, with the answering node's throughput beside it.</summary>
public sealed record ProviderListView(string Object, IReadOnlyList<ProviderView> Data, bool HasMore, string? NextCursor, ThroughputView Throughput);

public sealed record CreditRequest(string AmountUsd, string? Reference);

/// <summary>The operator's endpoints (admin key) and an account's own money.</summary>
public static class AccountEndpoints
{
    public static void MapAdminEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapPost("/accounts", CreateAccountAsync).Accepts<CreateAccountRequest>("application/json").Produces<AccountView>(201)
            .WithName("createAccount").WithSummary("Create an account")
            .WithDescription("A new account with a zero balance; give it credits and an API key next.");
        admin.MapGet("/accounts/{id}", GetAccountAsync)
            .WithName("getAccount").WithSummary("Get an account with its balance")
            .WithDescription("One account: its balance, held and available amounts (USD decimal strings), status and limits.");
        admin.MapPost("/accounts/{id}/api-keys", (string id, HttpRequest request, IAccountStore accounts, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken ct) =>
                TenancyEndpoints.CreateKeyAsync(id, request, accounts, ids, time, options, ct))
            .Accepts<TenancyEndpoints.ApiKeyRequestBody>("application/json").Produces<ApiKeyView>(201).ProducesProblem(404)
            .WithName("createAccountApiKey").WithSummary("Create an API key for an account")
            .WithDescription("A new key for the account, optionally named, expiring or with a spend limit; its secret is in this answer only.");
        admin.MapPost("/accounts/{id}/credits", CreditAsync).Accepts<CreditRequest>("application/json").Produces<LedgerEntryView>(201)
            .ProducesProblem(404).ProducesProblem(422)
            .WithName("creditAccount").WithSummary("Add credits to an account's balance")
            .WithDescription("Adds amount_usd to the balance as a ledger entry; a reference makes the credit idempotent (the same reference and amount answer with the first entry).");
        admin.MapGet("/providers", ListProviders)
            .WithName("listProviders")
            .WithSummary("List the providers with their circuit, calls in flight, error rate and p50/p95 latency on this node, and the node's throughput")
            .WithDescription("Each configured provider's state on this node, over its calls of the last five minutes; no URL or credential is shown.")
            .Produces<ProviderListView>(200);
        admin.MapTenancyAdminEndpoints();
    }

    private static Ok<ProviderListView> ListProviders(Providers.ProviderRegistry providers, ProviderHealth health)
    {
        var (ended, completed) = health.Throughput();
        return TypedResults.Ok(new ProviderListView(
            "list", [.. providers.All.Select(p => ProviderView.From(p, health.Calls(p.Name)))], false, null,
            new ThroughputView(ProviderHealth.ThroughputSeconds, Math.Round(ended, 2), Math.Round(completed, 2))));
    }

    public static void MapBalanceEndpoints(this RouteGroupBuilder v1)
    {
        v1.MapGet("/balance", GetBalanceAsync).WithTags("Account").Produces<BalanceView>(200)
            .WithName("getBalance").WithSummary("Get the account's balance")
            .WithDescription("The balance, what executions in flight hold of it, and what is available for new ones (USD decimal strings).");
        v1.MapGet("/ledger", ListLedgerAsync).WithTags("Account").Produces<ListView<LedgerEntryView>>(200).ProducesProblem(400)
            .WithName("listLedgerEntries").WithSummary("List the account's ledger entries")
            .WithDescription("Every credit, hold, charge and release, newest first, each with the balance just after it; a page at a time.");
    }

    private static async Task<IResult> CreateAccountAsync(HttpRequest request, IAccountStore accounts, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var (name, problem) = await ReadNameAsync(request, options.Value, cancellationToken);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        var account = await accounts.CreateAccountAsync(ids.New("acct"), name, time.GetUtcNow(), cancellationToken);
        return TypedResults.Created($"/v1/admin/accounts/{account.Id}", AccountView.From(account));
    }

    private static async Task<Results<Ok<AccountView>, ProblemHttpResult>> GetAccountAsync(string id, IAccountStore accounts, CancellationToken cancellationToken) =>
        await accounts.GetAccountAsync(id, cancellationToken) is { } account
            ? TypedResults.Ok(AccountView.From(account))
            : (ProblemHttpResult)Problem.NotFound("The account").ToResult();

    private static async Task<IResult> CreditAsync(string id, HttpRequest request, IAccountStore accounts, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var (document, problem) = await JsonObjectBody.ReadAsync(
            request, options.Value.Limits.MaxRequestBytes, "Send {\"amount_usd\": \"10.00\", \"reference\": \"…\"}.",
            static name => name is "amount_usd" or "reference", "Unknown field; send amount_usd and an optional reference.", cancellationToken);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        using (document)
        {
            var root = document!.RootElement;
            var amountText = root.TryGetProperty("amount_usd", out var amount)
                ? amount.ValueKind switch { JsonValueKind.String => amount.GetString(), JsonValueKind.Number => amount.GetRawText(), _ => null }
                : null;
            if (amountText is null || !Money.TryParseUsd(amountText, out var micros) || micros <= 0 || micros > 1_000_000 * Money.MicrosPerDollar)
            {
                return Problem.Validation("amount_usd", "'amount_usd' must be a positive USD amount up to 1000000 with at most six decimals, e.g. \"10.00\".").ToResult();
            }

            string? reference = null;
            if (root.TryGetProperty("reference", out var referenceElement) && referenceElement.ValueKind != JsonValueKind.Null)
            {
                if (referenceElement.ValueKind != JsonValueKind.String || referenceElement.GetString() is not { Length: >= 1 and <= 255 } r || SubmissionParser.HasHostileCharacters(r))
                {
                    return Problem.Validation("reference", "'reference' must be 1 to 255 printable characters.").ToResult();
                }

                reference = r;
            }

            var outcome = await accounts.CreditAsync(ids.New("txn"), id, micros, reference, time.GetUtcNow(), cancellationToken);
            if (outcome is null)
            {
                return Problem.NotFound("The account").ToResult();
            }

            if (outcome.Replayed && outcome.Entry.AmountMicros != micros)
            {
                return new Problem(422, ErrorCodes.IdempotencyKeyReused, "This reference was already used for a credit of another amount.", "reference").ToResult();
            }

            var view = LedgerEntryView.From(outcome.Entry);
            return outcome.Replayed ? TypedResults.Ok(view) : TypedResults.Created($"/v1/ledger/{view.Id}", view);
        }
    }

    private static async Task<IResult> GetBalanceAsync(HttpContext context, IAccountStore accounts, CancellationToken cancellationToken)
    {
        var account = await accounts.GetAccountAsync(context.User.AccountId(), cancellationToken);
        return account is null
            ? Problem.NotFound("The account").ToResult()
            : TypedResults.Ok(new BalanceView("balance", Money.Format(account.BalanceMicros), Money.Format(account.HeldMicros), Money.Format(account.AvailableMicros), "usd"));
    }

    private static Task<IResult> ListLedgerAsync(HttpContext context, IAccountStore accounts, string? limit, string? cursor, CancellationToken cancellationToken) =>
        Paging.ListAsync(
            limit, cursor, "txn", (before, take) => accounts.ListLedgerAsync(context.User.AccountId(), before, take, cancellationToken), e => e.Id, LedgerEntryView.From);

    private static async Task<(string? Name, Problem? Problem)> ReadNameAsync(HttpRequest request, ModelRouteOptions options, CancellationToken cancellationToken)
    {
        if (request.ContentLength is 0 || (request.ContentLength is null && !request.Headers.ContainsKey("Transfer-Encoding")))
        {
            return (null, null);
        }

        var (document, problem) = await JsonObjectBody.ReadAsync(
            request, options.Limits.MaxRequestBytes, "Send a JSON object, e.g. {\"name\": \"acme\"}.",
            static name => name == "name", "Unknown field; only 'name' is accepted.", cancellationToken);
        if (problem is not null)
        {
            return (null, problem);
        }

        using (document)
        {
            var root = document!.RootElement;
            if (!root.TryGetProperty("name", out var name) || name.ValueKind == JsonValueKind.Null)
            {
                return (null, null);
            }

            return name.ValueKind == JsonValueKind.String && name.GetString() is { Length: >= 1 and <= 200 } n && !SubmissionParser.HasHostileCharacters(n)
                ? (n, null)
                : (null, Problem.Validation("name", "'name' must be 1 to 200 printable characters."));
        }
    }
}
