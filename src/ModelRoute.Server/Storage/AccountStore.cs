using Dapper;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Accounts, API keys and credits, on either engine (<see cref="ISqlDialect"/>). On SQLite the writes run on the
/// writer's prepared statements (<see cref="PreparedSql"/>); on PostgreSQL the same calls are plain Dapper.
/// </summary>
public sealed class AccountStore : IAccountStore
{
    private readonly ISqlDialect _db;
    private readonly IChangeBroadcast _broadcast;
    private readonly string _listLedgerSql;
    private readonly string _listAccountsSql;
    private readonly string _listKeysSql;
    private readonly string _recordKeyUseSql;

    /// <param name="broadcast">Tells other nodes' key caches of a revoked key or a disabled account; none for one node.</param>
    public AccountStore(ISqlDialect dialect, IChangeBroadcast? broadcast = null)
    {
        _db = dialect;
        _broadcast = broadcast ?? NoChangeBroadcast.Instance;
        var before = "@before" + dialect.NullableText;
        _listLedgerSql = $"SELECT * FROM ledger_entries WHERE account_id = @accountId AND ({before} IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit";
        _listAccountsSql = $"SELECT {AccountRow.Columns} FROM accounts WHERE ({before} IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit";
        _listKeysSql = $"SELECT {ApiKeyRow.Columns} FROM api_keys WHERE account_id = @accountId AND ({before} IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit";
        _recordKeyUseSql = $"UPDATE api_keys SET last_used_at = {dialect.Greatest}(COALESCE(last_used_at, 0), @at) WHERE id = @keyId";
    }

    public Task<Account> CreateAccountAsync(string id, string? name, DateTimeOffset now, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
        {
            await c.ExecutePreparedAsync(
                "INSERT INTO accounts (id, name, created_at, webhook_secret) VALUES (@id, @name, @Now, @Secret)",
                new { id, name, Now = now.ToUnixTimeMilliseconds(), Secret = WebhookSecrets.New() },
                tx);
            return (new Account(id, name, 0, 0, DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds())), true);
        }, cancellationToken);

    public Task<Account?> GetAccountAsync(string id, CancellationToken cancellationToken) =>
        _db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<AccountRow>(
            $"SELECT {AccountRow.Columns} FROM accounts WHERE id = @id", new { id }))?.ToAccount(), cancellationToken);

    public Task<ApiKeyRecord> CreateApiKeyAsync(ApiKeyRecord key, string keyHash, CancellationToken cancellationToken) =>
        _db.WriteAsync(async (c, tx) =>
        {
            await c.ExecutePreparedAsync(
                """
                INSERT INTO api_keys (id, account_id, key_hash, prefix, name, created_at, expires_at, max_spend_micros)
                VALUES (@Id, @AccountId, @keyHash, @Prefix, @Name, @CreatedAt, @ExpiresAt, @MaxSpendMicros)
                """,
                new { key.Id, key.AccountId, keyHash, key.Prefix, key.Name, CreatedAt = key.CreatedAt.ToUnixTimeMilliseconds(), ExpiresAt = key.ExpiresAt?.ToUnixTimeMilliseconds(), key.MaxSpendMicros },
                tx);
            return (key with { CreatedAt = ExecutionRow.FromMs(key.CreatedAt.ToUnixTimeMilliseconds()), ExpiresAt = ExecutionRow.FromMs(key.ExpiresAt?.ToUnixTimeMilliseconds()) }, true);
        }, cancellationToken);

    public Task<ApiKeyLookup?> FindApiKeyAsync(string keyHash, CancellationToken cancellationToken) =>
        _db.ReadAsync(async c => (await c.QueryFirstOrDefaultAsync<ApiKeyLookupRow>(ApiKeyLookupRow.Sql, new { keyHash }))?.ToLookup(), cancellationToken);

    public Task<CreditOutcome?> CreditAsync(string entryId, string accountId, long amountMicros, string? reference, DateTimeOffset now, CancellationToken cancellationToken) =>
        _db.WriteAsync<CreditOutcome?>(async (c, tx) =>
        {
            if (_db.LockAccountSql is { } lockAccount && await c.ExecuteScalarAsync<string?>(lockAccount, new { accountId }, tx) is null)
            {
                return (null, false);
            }

            if (reference is not null)
            {
                var existing = await c.QueryFirstOrDefaultPreparedAsync<LedgerRow>(
                    "SELECT * FROM ledger_entries WHERE account_id = @accountId AND kind = 'credit' AND reference = @reference",
                    new { accountId, reference },
                    tx);
                if (existing is not null)
                {
                    return (new CreditOutcome(existing.ToEntry(), Replayed: true), false);
                }
            }

            var account = await c.QueryFirstOrDefaultPreparedAsync<(long Balance, long Held)?>(
                "UPDATE accounts SET balance_micros = balance_micros + @amountMicros WHERE id = @accountId RETURNING balance_micros, held_micros",
                new { accountId, amountMicros },
                tx);
            if (account is not { } a)
            {
                return (null, false);
            }

            var entry = new LedgerEntry(entryId, accountId, null, LedgerKinds.Credit, amountMicros, a.Balance, a.Held, reference, DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()));
            await c.ExecutePreparedAsync(
                """
                INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, reference, created_at)
                VALUES (@Id, @AccountId, NULL, 'credit', @AmountMicros, @BalanceMicros, @HeldMicros, @Reference, @CreatedAt)
                """,
                new { entry.Id, entry.AccountId, entry.AmountMicros, entry.BalanceMicros, entry.HeldMicros, entry.Reference, CreatedAt = now.ToUnixTimeMilliseconds() },
                tx);
            return (new CreditOutcome(entry, Replayed: false), true);
        }, cancellationToken);

    public Task<IReadOnlyList<LedgerEntry>> ListLedgerAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyList<LedgerEntry>>(async c =>
            [.. (await c.QueryAsync<LedgerRow>(_listLedgerSql, new { accountId, before, limit })).Select(r => r.ToEntry())],
            cancellationToken);

    public Task<IReadOnlyList<Account>> ListAccountsAsync(string? before, int limit, CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyList<Account>>(async c =>
            [.. (await c.QueryAsync<AccountRow>(_listAccountsSql, new { before, limit })).Select(r => r.ToAccount())],
            cancellationToken);

    public async Task<Account?> SetAccountDisabledAsync(string id, bool disabled, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var account = await _db.WriteAsync(async (c, tx) =>
        {
            // Disabling again keeps the first time; enabling clears it.
            var row = await c.QueryFirstOrDefaultPreparedAsync<AccountRow>(
                $"UPDATE accounts SET disabled_at = CASE WHEN @disabled THEN COALESCE(disabled_at, @now) ELSE NULL END WHERE id = @id RETURNING {AccountRow.Columns}",
                new { id, disabled, now = now.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToAccount(), row is not null);
        }, cancellationToken);
        if (account is not null)
        {
            _broadcast.AccountChanged(id);
        }

        return account;
    }

    public Task<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyList<ApiKeyRecord>>(async c =>
            [.. (await c.QueryAsync<ApiKeyRow>(_listKeysSql, new { accountId, before, limit })).Select(r => r.ToRecord())],
            cancellationToken);

    public async Task<ApiKeyRecord?> RevokeApiKeyAsync(string accountId, string keyId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var key = await _db.WriteAsync(async (c, tx) =>
        {
            // Revoking again keeps the first time.
            var row = await c.QueryFirstOrDefaultPreparedAsync<ApiKeyRow>(
                $"UPDATE api_keys SET revoked_at = COALESCE(revoked_at, @now) WHERE id = @keyId AND account_id = @accountId RETURNING {ApiKeyRow.Columns}",
                new { accountId, keyId, now = now.ToUnixTimeMilliseconds() },
                tx);
            return (row?.ToRecord(), row is not null);
        }, cancellationToken);
        if (key is not null)
        {
            _broadcast.KeyRevoked(keyId);
        }

        return key;
    }

    public Task RecordKeyUsesAsync(IReadOnlyCollection<KeyValuePair<string, DateTimeOffset>> uses, CancellationToken cancellationToken) =>
        _db.WriteEachAsync(async (c, tx) =>
        {
            // One key per statement: holding one key row while waiting for another could deadlock with a submission
            // or a settlement, which lock an account's keys.
            foreach (var (keyId, at) in uses)
            {
                await c.ExecutePreparedAsync(_recordKeyUseSql, new { keyId, at = at.ToUnixTimeMilliseconds() }, tx);
            }

            return uses.Count;
        }, cancellationToken);

    public async Task<Account?> SetMaxConcurrencyAsync(string id, int? maxConcurrency, CancellationToken cancellationToken)
    {
        var changed = await _db.WriteAsync(async (c, tx) =>
            (await c.ExecutePreparedAsync("UPDATE accounts SET max_concurrency = @maxConcurrency WHERE id = @id", new { id, maxConcurrency }, tx), true),
            cancellationToken);
        return changed == 0 ? null : await GetAccountAsync(id, cancellationToken);
    }

    public Task<IReadOnlyDictionary<string, int>> ListConcurrencyCapsAsync(CancellationToken cancellationToken) =>
        _db.ReadAsync<IReadOnlyDictionary<string, int>>(async c =>
            (await c.QueryAsync<(string Id, long Cap)>("SELECT id, max_concurrency FROM accounts WHERE max_concurrency IS NOT NULL", new { }))
                .ToDictionary(r => r.Id, r => (int)r.Cap, StringComparer.Ordinal),
            cancellationToken);
}
