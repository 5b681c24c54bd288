using System.Text.Json.Serialization;
using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// An API key as shown to its owner and the operator; <see cref="Key"/> (the secret) only in the answer that created
/// it. <see cref="Held"/> is the open holds counting against <see cref="MaxSpendUsd"/>, null for a key without one.
/// </summary>
public sealed record ApiKeyView(
    string Id,
    string Object,
    string AccountId,
    string? Name,
    string Prefix,
    string CreatedAt,
    string? LastUsedAt,
    string? ExpiresAt,
    string? RevokedAt,
    string? MaxSpendUsd,
    string Spent,
    string? Held,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key = null)
{
    public static ApiKeyView From(ApiKeyRecord k, string? secret = null) => new(
        k.Id, "api_key", k.AccountId, k.Name, k.Prefix, ExecutionView.Timestamp(k.CreatedAt), ExecutionView.Timestamp(k.LastUsedAt),
        ExecutionView.Timestamp(k.ExpiresAt), ExecutionView.Timestamp(k.RevokedAt), k.MaxSpendMicros is { } max ? Money.Format(max) : null,
        Money.Format(k.SpentMicros), k.MaxSpendMicros is null ? null : Money.Format(k.HeldMicros), secret);
}

/// <summary>Governing accounts and API keys (docs/tenancy.md): the operator's list and switches, and an account's own keys.</summary>
public static class TenancyEndpoints
{
    public static void MapTenancyAdminEndpoints(this RouteGroupBuilder admin)
    {
        admin.MapGet("/accounts", ListAccountsAsync)
            .WithSummary("List accounts, newest first").WithName("listAccounts").Produces<ListView<AccountView>>(200).ProducesProblem(400)
            .WithDescription("Every account with its balance and status, a page at a time (limit, cursor).");
        admin.MapPost("/accounts/{id}/disable", (string id, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken ct) =>
                SetDisabledAsync(id, true, accounts, keys, time, ct))
            .WithSummary("Disable an account: its keys are refused with 403 ACCOUNT_DISABLED").WithName("disableAccount").Produces<AccountView>(200).ProducesProblem(404)
            .WithDescription("Its keys are refused on every node within a second; executions in flight finish.");
        admin.MapPost("/accounts/{id}/enable", (string id, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken ct) =>
                SetDisabledAsync(id, false, accounts, keys, time, ct))
            .WithSummary("Enable a disabled account").WithName("enableAccount").Produces<AccountView>(200).ProducesProblem(404)
            .WithDescription("Its keys work again.");
        admin.MapGet("/accounts/{id}/api-keys", ListAccountKeysAsync)
            .WithSummary("List an account's API keys").WithName("listAccountApiKeys").Produces<ListView<ApiKeyView>>(200).ProducesProblem(400).ProducesProblem(404)
            .WithDescription("The account's keys with their prefix, use, expiry and spend; never their secrets.");
        admin.MapDelete("/accounts/{id}/api-keys/{key_id}", (string id, string key_id, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken ct) =>
                RevokeAsync(id, key_id, accounts, keys, time, ct))
            .WithSummary("Revoke an account's API key").WithName("revokeAccountApiKey").Produces<ApiKeyView>(200).ProducesProblem(404)
            .WithDescription("The key is refused on every node within a second.");
    }

    public static void MapApiKeyEndpoints(this RouteGroupBuilder v1)
    {
        v1.MapGet("/api-keys", (HttpContext context, IAccountStore accounts, string? limit, string? cursor, CancellationToken ct) =>
                ListKeysAsync(context.User.AccountId(), accounts, limit, cursor, ct))
            .WithSummary("List this account's API keys").WithName("listApiKeys").WithTags("Account").Produces<ListView<ApiKeyView>>(200).ProducesProblem(400)
            .WithDescription("The account's keys with their prefix, use, expiry and spend; never their secrets.");
        v1.MapPost("/api-keys", (HttpContext context, IAccountStore accounts, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken ct) =>
                CreateKeyAsync(context.User.AccountId(), context.Request, accounts, ids, time, options, ct))
            .Accepts<ApiKeyRequestBody>("application/json").Produces<ApiKeyView>(201)
            .WithSummary("Create an API key for this account; the secret is shown once").WithName("createApiKey").WithTags("Account")
            .WithDescription("A new key for the calling key's account, optionally named, expiring or with a spend limit.");
        v1.MapDelete("/api-keys/{key_id}", (HttpContext context, string key_id, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken ct) =>
                RevokeAsync(context.User.AccountId(), key_id, accounts, keys, time, ct))
            .WithSummary("Revoke one of this account's API keys (the calling key included)").WithName("revokeApiKey").WithTags("Account").Produces<ApiKeyView>(200).ProducesProblem(404)
            .WithDescription("The key is refused on every node within a second.");
    }

    /// <summary>The body of a key creation, for the OpenAPI document (it is read by <see cref="ApiKeyRequest"/>).</summary>
    public sealed record ApiKeyRequestBody(string? Name, string? ExpiresAt, string? MaxSpendUsd);

    /// <summary>Creates a key for <paramref name="accountId"/> (admin and own endpoints alike).</summary>
    public static async Task<IResult> CreateKeyAsync(
        string accountId, HttpRequest request, IAccountStore accounts, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var (body, problem) = await ApiKeyRequest.ReadAsync(request, options.Value.Limits.MaxRequestBytes, now, cancellationToken);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        if (await accounts.GetAccountAsync(accountId, cancellationToken) is null)
        {
            return Problem.NotFound("The account").ToResult();
        }

        var secret = ApiKeys.NewKey();
        var record = await accounts.CreateApiKeyAsync(
            new ApiKeyRecord(ids.New("key"), accountId, ApiKeys.Display(secret), body!.Name, now, body.ExpiresAt, body.MaxSpendMicros),
            ApiKeys.Hash(secret),
            cancellationToken);
        var location = request.Path.StartsWithSegments("/v1/admin") ? $"/v1/admin/accounts/{accountId}/api-keys/{record.Id}" : $"/v1/api-keys/{record.Id}";
        return TypedResults.Created(location, ApiKeyView.From(record, secret));
    }

    private static Task<IResult> ListAccountsAsync(IAccountStore accounts, string? limit, string? cursor, CancellationToken cancellationToken) =>
        Paging.ListAsync(limit, cursor, "acct", (before, take) => accounts.ListAccountsAsync(before, take, cancellationToken), a => a.Id, AccountView.From);

    private static async Task<IResult> SetDisabledAsync(string id, bool disabled, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken cancellationToken)
    {
        var account = await accounts.SetAccountDisabledAsync(id, disabled, time.GetUtcNow(), cancellationToken);
        if (account is null)
        {
            return Problem.NotFound("The account").ToResult();
        }

        keys.ForgetAccount(id);
        return TypedResults.Ok(AccountView.From(account));
    }

    private static async Task<IResult> ListAccountKeysAsync(string id, IAccountStore accounts, string? limit, string? cursor, CancellationToken cancellationToken) =>
        await accounts.GetAccountAsync(id, cancellationToken) is null
            ? Problem.NotFound("The account").ToResult()
            : await ListKeysAsync(id, accounts, limit, cursor, cancellationToken);

    private static Task<IResult> ListKeysAsync(string accountId, IAccountStore accounts, string? limit, string? cursor, CancellationToken cancellationToken) =>
        Paging.ListAsync(
            limit, cursor, "key", (before, take) => accounts.ListApiKeysAsync(accountId, before, take, cancellationToken), k => k.Id, k => ApiKeyView.From(k));

    private static async Task<IResult> RevokeAsync(string accountId, string keyId, IAccountStore accounts, ApiKeyCache keys, TimeProvider time, CancellationToken cancellationToken)
    {
        // Another account's key is not found, as if it did not exist.
        var key = await accounts.RevokeApiKeyAsync(accountId, keyId, time.GetUtcNow(), cancellationToken);
        if (key is null)
        {
            return Problem.NotFound("The API key").ToResult();
        }

        keys.ForgetKey(keyId);
        return TypedResults.Ok(ApiKeyView.From(key));
    }
}
