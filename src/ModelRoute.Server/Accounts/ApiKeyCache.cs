using System.Collections.Concurrent;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// Keys that were found recently, so that an authenticated request does not cost a database read. A revoked key or a
/// disabled account must be refused everywhere within a second (docs/tenancy.md): this node forgets the entries at
/// once (<see cref="ForgetKey"/>, <see cref="ForgetAccount"/>), and on PostgreSQL the other nodes hear of it by a
/// notification and forget them too, while entries there also live only <see cref="SharedLifetime"/>, in case a
/// notification is lost. Expiry is not cached away: the caller compares the entry's expiry with the clock at every
/// request. Unknown keys are never cached: a key works the moment it is created.
/// </summary>
public sealed class ApiKeyCache(IAccountStore accounts, TimeProvider time, TimeSpan? lifetime = null)
{
    /// <summary>How long an entry lives with one node (SQLite), where every change goes through <see cref="ForgetKey"/> or <see cref="ForgetAccount"/>.</summary>
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long an entry lives when other nodes change keys too (PostgreSQL): the most a lost notification (or one sent
    /// before this node's listener was connected) can cost. Half the one-second promise, leaving the rest for the request.
    /// </summary>
    public static readonly TimeSpan SharedLifetime = TimeSpan.FromMilliseconds(500);

    private const int MaxEntries = 10_000;
    private readonly TimeSpan _lifetime = lifetime ?? Lifetime;
    private readonly ConcurrentDictionary<string, (ApiKeyLookup Key, DateTimeOffset Until)> _keys = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _generation;

    public async Task<ApiKeyLookup?> FindAsync(string keyHash, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_keys.TryGetValue(keyHash, out var cached) && cached.Until > now)
        {
            return cached.Key;
        }

        // A change forgotten while the read ran may not be in what it read: then the answer is used once, not kept.
        var generation = Interlocked.Read(ref _generation);
        if (await accounts.FindApiKeyAsync(keyHash, cancellationToken) is not { } key)
        {
            return null;
        }

        lock (_gate)
        {
            if (_generation == generation)
            {
                if (_keys.Count >= MaxEntries)
                {
                    _keys.Clear(); // Crude but bounded; the next requests refill it.
                }

                _keys[keyHash] = (key, now + _lifetime);
            }
        }

        return key;
    }

    /// <summary>Drops the key (revoked): the next request with it reads the store.</summary>
    public void ForgetKey(string keyId) => Forget(e => e.KeyId == keyId);

    /// <summary>Drops every key of the account (disabled or enabled).</summary>
    public void ForgetAccount(string accountId) => Forget(e => e.AccountId == accountId);

    /// <summary>Drops everything (e.g. after notifications may have been missed).</summary>
    public void Clear() => Forget(_ => true);

    private void Forget(Func<ApiKeyLookup, bool> which)
    {
        lock (_gate)
        {
            _generation++;
            foreach (var (hash, entry) in _keys)
            {
                if (which(entry.Key))
                {
                    _keys.TryRemove(hash, out _);
                }
            }
        }
    }
}
