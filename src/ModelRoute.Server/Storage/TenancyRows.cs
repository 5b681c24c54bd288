namespace ModelRoute.Server.Storage;

/// <summary>An <c>accounts</c> row as both stores read it (times are unix milliseconds).</summary>
internal sealed class AccountRow
{
    /// <summary>The columns an <see cref="AccountRow"/> reads, the same on both stores.</summary>
    public const string Columns = "id, name, balance_micros, held_micros, created_at, disabled_at, max_concurrency";

    public string Id { get; set; } = "";
    public string? Name { get; set; }
    public long BalanceMicros { get; set; }
    public long HeldMicros { get; set; }
    public long CreatedAt { get; set; }
    public long? DisabledAt { get; set; }
    public long? MaxConcurrency { get; set; }

    public Account ToAccount() => new(Id, Name, BalanceMicros, HeldMicros, ExecutionRow.FromMs(CreatedAt), ExecutionRow.FromMs(DisabledAt), (int?)MaxConcurrency);
}

/// <summary>An <c>api_keys</c> row as both stores read it, without its hash.</summary>
internal sealed class ApiKeyRow
{
    /// <summary>The columns an <see cref="ApiKeyRow"/> reads, the same on both stores (never the hash).</summary>
    public const string Columns = "id, account_id, prefix, name, created_at, expires_at, max_spend_micros, last_used_at, revoked_at, held_micros, spent_micros";

    public string Id { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string Prefix { get; set; } = "";
    public string? Name { get; set; }
    public long CreatedAt { get; set; }
    public long? ExpiresAt { get; set; }
    public long? MaxSpendMicros { get; set; }
    public long? LastUsedAt { get; set; }
    public long? RevokedAt { get; set; }
    public long HeldMicros { get; set; }
    public long SpentMicros { get; set; }

    public ApiKeyRecord ToRecord() => new(
        Id, AccountId, Prefix, Name, ExecutionRow.FromMs(CreatedAt), ExecutionRow.FromMs(ExpiresAt), MaxSpendMicros,
        ExecutionRow.FromMs(LastUsedAt), ExecutionRow.FromMs(RevokedAt), HeldMicros, SpentMicros);
}

/// <summary>A key found by its hash, with its account's state: what authentication reads.</summary>
internal sealed class ApiKeyLookupRow
{
    /// <summary>The lookup by hash, the same on both stores.</summary>
    public const string Sql = """
        SELECT k.id, k.account_id, k.expires_at, k.revoked_at, k.max_spend_micros, a.disabled_at
        FROM api_keys k JOIN accounts a ON a.id = k.account_id
        WHERE k.key_hash = @keyHash
        """;

    public string Id { get; set; } = "";
    public string AccountId { get; set; } = "";
    public long? ExpiresAt { get; set; }
    public long? RevokedAt { get; set; }
    public long? MaxSpendMicros { get; set; }
    public long? DisabledAt { get; set; }

    public ApiKeyLookup ToLookup() =>
        new(Id, AccountId, ExecutionRow.FromMs(ExpiresAt), RevokedAt is not null, MaxSpendMicros is not null, DisabledAt is not null);
}
