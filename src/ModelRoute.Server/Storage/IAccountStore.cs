namespace ModelRoute.Server.Storage;

public sealed record Account(string Id, string? Name, long BalanceMicros, long HeldMicros, DateTimeOffset CreatedAt, DateTimeOffset? DisabledAt = null, int? MaxConcurrency = null)
{
    public long AvailableMicros => BalanceMicros - HeldMicros;
}

/// <summary>
/// An API key as shown to its owner (never its hash). <see cref="HeldMicros"/> counts open holds against
/// <see cref="MaxSpendMicros"/> and is kept only for a key with a limit; <see cref="SpentMicros"/> is what its executions were charged.
/// </summary>
public sealed record ApiKeyRecord(
    string Id,
    string AccountId,
    string Prefix,
    string? Name,
    DateTimeOffset CreatedAt,
    DateTimeOffset? ExpiresAt = null,
    long? MaxSpendMicros = null,
    DateTimeOffset? LastUsedAt = null,
    DateTimeOffset? RevokedAt = null,
    long HeldMicros = 0,
    long SpentMicros = 0);

/// <summary>What a request's authentication needs to know of a key, cached by the gateway (see ApiKeyCache).</summary>
public sealed record ApiKeyLookup(string KeyId, string AccountId, DateTimeOffset? ExpiresAt, bool Revoked, bool SpendLimited, bool AccountDisabled);

public static class LedgerKinds
{
    public const string Credit = "credit";
    public const string Hold = "hold";
    public const string Release = "release";
    public const string Charge = "charge";
}

/// <summary>One money movement. Balance and held are the account's figures right after it.</summary>
public sealed record LedgerEntry(
    string Id,
    string AccountId,
    string? ExecutionId,
    string Kind,
    long AmountMicros,
    long BalanceMicros,
    long HeldMicros,
    string? Reference,
    DateTimeOffset CreatedAt);

public sealed record CreditOutcome(LedgerEntry Entry, bool Replayed);

/// <summary>Accounts, their API keys and their money outside executions.</summary>
public interface IAccountStore
{
    Task<Account> CreateAccountAsync(string id, string? name, DateTimeOffset now, CancellationToken cancellationToken);

    Task<Account?> GetAccountAsync(string id, CancellationToken cancellationToken);

    Task<ApiKeyRecord> CreateApiKeyAsync(ApiKeyRecord key, string keyHash, CancellationToken cancellationToken);

    /// <summary>The key with this SHA-256 hash and its account's state, if any (revoked and expired keys included).</summary>
    Task<ApiKeyLookup?> FindApiKeyAsync(string keyHash, CancellationToken cancellationToken);

    /// <summary>Newest first; <paramref name="before"/> is the account id to continue after.</summary>
    Task<IReadOnlyList<Account>> ListAccountsAsync(string? before, int limit, CancellationToken cancellationToken);

    /// <summary>Disables (at <paramref name="now"/>, kept if already disabled) or enables the account; null when there is none.</summary>
    Task<Account?> SetAccountDisabledAsync(string id, bool disabled, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The account's keys, newest first, revoked ones included; <paramref name="before"/> is the key id to continue after.</summary>
    Task<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string accountId, string? before, int limit, CancellationToken cancellationToken);

    /// <summary>Revokes the account's key (at <paramref name="now"/>, kept if already revoked); null when the account has no such key.</summary>
    Task<ApiKeyRecord?> RevokeApiKeyAsync(string accountId, string keyId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Records when keys were last used, in one write; an older time never replaces a newer one.</summary>
    Task RecordKeyUsesAsync(IReadOnlyCollection<KeyValuePair<string, DateTimeOffset>> uses, CancellationToken cancellationToken);

    /// <summary>
    /// Adds money. A repeated <paramref name="reference"/> for the same account answers the first
    /// credit again and adds nothing, so an operator's retry never credits twice. Null when there is no account.
    /// </summary>
    Task<CreditOutcome?> CreditAsync(string entryId, string accountId, long amountMicros, string? reference, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Newest first; <paramref name="before"/> is the entry id to continue after.</summary>
    Task<IReadOnlyList<LedgerEntry>> ListLedgerAsync(string accountId, string? before, int limit, CancellationToken cancellationToken);

    /// <summary>Sets or (null) removes the account's cap on executions in flight; the account as it is then, or null when there is none.</summary>
    Task<Account?> SetMaxConcurrencyAsync(string id, int? maxConcurrency, CancellationToken cancellationToken);

    /// <summary>Every capped account and its cap.</summary>
    Task<IReadOnlyDictionary<string, int>> ListConcurrencyCapsAsync(CancellationToken cancellationToken);
}

/// <summary>Health of the store, for readiness.</summary>
public interface IStoreHealth
{
    Task<bool> IsReadyAsync(CancellationToken cancellationToken);
}
