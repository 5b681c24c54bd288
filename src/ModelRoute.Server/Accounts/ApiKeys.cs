using System.Security.Claims;
using System.Security.Cryptography;

namespace ModelRoute.Server.Accounts;

/// <summary>API keys: <c>mr_</c> + 32 random bytes; only the SHA-256 is stored (docs/api.md#concepts).</summary>
public static class ApiKeys
{
    public const string Prefix = "mr_";

    public static string NewKey() => Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>What is shown later to recognise a key: its first characters only.</summary>
    public static string Display(string key) => key[..Math.Min(key.Length, 10)] + "…";

    public static bool LooksLikeKey(string token) => token.StartsWith(Prefix, StringComparison.Ordinal) && token.Length is > 10 and < 200;

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

public static class Claims
{
    public const string AccountIdType = "modelroute:account_id";
    public const string ApiKeyIdType = "modelroute:api_key_id";
    public const string AdminRole = "admin";

    /// <summary>Present when the request's key has a <c>max_spend_usd</c>: its submissions check and hold against it.</summary>
    public const string SpendLimitedType = "modelroute:key_spend_limited";

    public static string AccountId(this ClaimsPrincipal user) => user.FindFirstValue(AccountIdType) ?? throw new InvalidOperationException("Not an account principal.");

    public static string ApiKeyId(this ClaimsPrincipal user) => user.FindFirstValue(ApiKeyIdType) ?? "";

    /// <summary>The key a submission is made with, as its execution records it.</summary>
    public static Storage.SubmittingKey SubmittingKey(this ClaimsPrincipal user) =>
        new(user.FindFirstValue(ApiKeyIdType), user.HasClaim(c => c.Type == SpendLimitedType));
}
