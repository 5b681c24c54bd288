using ModelRoute.Server.Http;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

/// <summary>The operator's limits on an account: its cap on executions in flight (docs/routing.md, fair share).</summary>
public static class AccountLimitEndpoints
{
    /// <summary>The largest cap accepted; more is no cap at all on any real deployment.</summary>
    public const int MaxConcurrencyLimit = 1_000_000;

    public static void MapAccountLimitEndpoints(this RouteGroupBuilder admin) =>
        admin.MapPatch("/accounts/{id}", UpdateAccountAsync)
            .Accepts<UpdateAccountRequest>("application/json")
            .Produces<AccountView>()
            .ProducesProblem(400)
            .ProducesProblem(404)
            .WithSummary("Sets an account's limits: max_concurrency caps its executions in flight (null removes the cap).")
            .WithName("updateAccount")
            .WithDescription("Changes the limits given in the body and leaves the others; the answer is the account.");

    private static async Task<IResult> UpdateAccountAsync(
        string id, HttpRequest request, IAccountStore accounts, AccountConcurrencyCaps caps, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var (cap, problem) = await ReadAsync(request, options.Value, cancellationToken);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        var account = await accounts.SetMaxConcurrencyAsync(id, cap, cancellationToken);
        if (account is null)
        {
            return Problem.NotFound("The account").ToResult();
        }

        caps.Set(id, account.MaxConcurrency); // Here at once; other nodes read it within a second.
        return TypedResults.Ok(AccountView.From(account));
    }

    /// <summary>The body <c>{"max_concurrency": n | null}</c>, strictly: nothing else, no key twice.</summary>
    private static async Task<(int? Cap, Problem? Problem)> ReadAsync(HttpRequest request, ModelRouteOptions options, CancellationToken cancellationToken)
    {
        var (document, problem) = await JsonObjectBody.ReadAsync(
            request, options.Limits.MaxRequestBytes, "Send a JSON object, e.g. {\"max_concurrency\": 10}.",
            static name => name == "max_concurrency", "Unknown field; only 'max_concurrency' is accepted.", cancellationToken);
        if (problem is not null)
        {
            return (null, problem);
        }

        using (document)
        {
            // Given twice is refused when the body is read (JsonBody).
            JsonElement? value = document!.RootElement.TryGetProperty("max_concurrency", out var given) ? given : null;
            return value switch
            {
                null => (null, Problem.Validation("max_concurrency", "'max_concurrency' is required: a whole number of executions, or null for no cap.")),
                { ValueKind: JsonValueKind.Null } => (null, null),
                { ValueKind: JsonValueKind.Number } n when n.TryGetInt32(out var cap) && cap is >= 1 and <= MaxConcurrencyLimit
                    && !n.GetRawText().Contains('.') && !n.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase) => (cap, null),
                _ => (null, Problem.Validation("max_concurrency", $"'max_concurrency' must be a whole number from 1 to {MaxConcurrencyLimit}, or null for no cap.")),
            };
        }
    }
}

public sealed record UpdateAccountRequest(int? MaxConcurrency);
