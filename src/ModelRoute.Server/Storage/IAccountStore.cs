namespace ModelRoute.Server.Storage;

public sealed record Account(string Id, string? Name, long BalanceMicros, long HeldMicros, DateTimeOffset CreatedAt, int? MaxConcurrency = null)
{
    public long AvailableMicros => BalanceMicros - HeldMicros;
}

public sealed record ApiKeyRecord(string Id, string AccountId, string Prefix, string? Name, DateTimeOffset CreatedAt);

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

    /// <summary>The account that owns the key with this SHA-256 hash, if any.</summary>
    Task<(string KeyId, string AccountId)?> FindApiKeyAsync(string keyHash, CancellationToken cancellationToken);

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
