using Microsoft.Extensions.Time.Testing;
using ModelRoute.Server.Accounts;

namespace ModelRoute.Tests.Accounts;

public sealed class ApiKeyCacheTests
{
    private readonly KeyStore _store = new();
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero));

    private static ApiKeyLookup Key(string id, string account) => new(id, account, null, false, false, false);

    [Fact]
    public async Task A_found_key_is_read_from_the_store_once_within_its_lifetime_and_again_after()
    {
        _store.Answers.Enqueue(Key("key_1", "acct_1"));
        _store.Answers.Enqueue(Key("key_1", "acct_1"));
        var cache = new ApiKeyCache(_store, _time);

        (await cache.FindAsync("h1", CancellationToken.None))!.KeyId.ShouldBe("key_1");
        _time.Advance(ApiKeyCache.Lifetime - TimeSpan.FromSeconds(1));
        (await cache.FindAsync("h1", CancellationToken.None))!.AccountId.ShouldBe("acct_1");
        _store.Reads.ShouldBe(1);

        _time.Advance(TimeSpan.FromSeconds(2));
        (await cache.FindAsync("h1", CancellationToken.None))!.KeyId.ShouldBe("key_1");
        _store.Reads.ShouldBe(2);
    }

    [Fact]
    public async Task An_unknown_key_is_asked_again_every_time_so_a_new_key_works_at_once()
    {
        _store.Answers.Enqueue(null);
        _store.Answers.Enqueue(Key("key_2", "acct_2"));
        var cache = new ApiKeyCache(_store, _time);

        (await cache.FindAsync("h2", CancellationToken.None)).ShouldBeNull();
        (await cache.FindAsync("h2", CancellationToken.None))!.KeyId.ShouldBe("key_2");
        _store.Reads.ShouldBe(2);
    }

    [Fact]
    public async Task A_forgotten_key_or_account_is_read_again_at_the_next_request()
    {
        _store.Answers.Enqueue(Key("key_1", "acct_1"));
        _store.Answers.Enqueue(Key("key_2", "acct_2"));
        _store.Answers.Enqueue(Key("key_1", "acct_1") with { Revoked = true });
        _store.Answers.Enqueue(Key("key_2", "acct_2") with { AccountDisabled = true });
        var cache = new ApiKeyCache(_store, _time);
        await cache.FindAsync("h1", CancellationToken.None);
        await cache.FindAsync("h2", CancellationToken.None);

        cache.ForgetKey("key_1");
        cache.ForgetAccount("acct_2");

        (await cache.FindAsync("h1", CancellationToken.None))!.Revoked.ShouldBeTrue();
        (await cache.FindAsync("h2", CancellationToken.None))!.AccountDisabled.ShouldBeTrue();
        _store.Reads.ShouldBe(4);
    }

    [Fact]
    public async Task A_read_that_a_revocation_overtook_is_answered_but_not_kept()
    {
        var cache = new ApiKeyCache(_store, _time);
        _store.Answers.Enqueue(Key("key_1", "acct_1"));
        _store.Answers.Enqueue(Key("key_1", "acct_1") with { Revoked = true });
        _store.DuringRead = () => cache.ForgetKey("key_1"); // The revocation lands while the first read is under way.

        (await cache.FindAsync("h1", CancellationToken.None))!.Revoked.ShouldBeFalse();
        _store.DuringRead = null;

        (await cache.FindAsync("h1", CancellationToken.None))!.Revoked.ShouldBeTrue();
        _store.Reads.ShouldBe(2);
    }

    /// <summary>Answers key lookups from a queue and counts them; nothing else is used.</summary>
    private sealed class KeyStore : IAccountStore
    {
        public Queue<ApiKeyLookup?> Answers { get; } = new();

        public int Reads { get; private set; }

        public Action? DuringRead { get; set; }

        public Task<ApiKeyLookup?> FindApiKeyAsync(string keyHash, CancellationToken cancellationToken)
        {
            Reads++;
            DuringRead?.Invoke();
            return Task.FromResult(Answers.Dequeue());
        }

        public Task<Account> CreateAccountAsync(string id, string? name, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<Account?> GetAccountAsync(string id, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ApiKeyRecord> CreateApiKeyAsync(ApiKeyRecord key, string keyHash, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<CreditOutcome?> CreditAsync(string entryId, string accountId, long amountMicros, string? reference, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<LedgerEntry>> ListLedgerAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<Account>> ListAccountsAsync(string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<Account?> SetAccountDisabledAsync(string id, bool disabled, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ApiKeyRecord?> RevokeApiKeyAsync(string accountId, string keyId, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task RecordKeyUsesAsync(IReadOnlyCollection<KeyValuePair<string, DateTimeOffset>> uses, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<Account?> SetMaxConcurrencyAsync(string id, int? maxConcurrency, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyDictionary<string, int>> ListConcurrencyCapsAsync(CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
