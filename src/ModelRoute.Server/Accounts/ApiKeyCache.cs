using System.Collections.Concurrent;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// Keys that were found recently, so that an authenticated request does not cost a database read.
/// Keys are never revoked today, so an entry cannot go stale in a way that matters; it still ends
/// after <see cref="Lifetime"/>, which bounds how long a future revocation would take to apply.
/// Unknown keys are never cached: a key works the moment it is created.
/// </summary>
public sealed class ApiKeyCache(IAccountStore accounts, TimeProvider time)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(1);
    private const int MaxEntries = 10_000;
    private readonly ConcurrentDictionary<string, (string KeyId, string AccountId, DateTimeOffset Until)> _keys = new(StringComparer.Ordinal);

    public async Task<(string KeyId, string AccountId)?> FindAsync(string keyHash, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_keys.TryGetValue(keyHash, out var cached) && cached.Until > now)
        {
            return (cached.KeyId, cached.AccountId);
        }

        if (await accounts.FindApiKeyAsync(keyHash, cancellationToken) is not { } key)
        {
            return null;
        }

        if (_keys.Count >= MaxEntries)
        {
            _keys.Clear(); // Crude but bounded; the next requests refill it.
        }

        _keys[keyHash] = (key.KeyId, key.AccountId, now + Lifetime);
        return key;
    }
}
