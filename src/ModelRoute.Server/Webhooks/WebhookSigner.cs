using System.Security.Cryptography;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// Standard Webhooks signatures: <c>v1,</c> + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
/// where the key is the base64 part of a <c>whsec_</c> secret (docs/webhooks.md#delivery-rules).
/// </summary>
public static class WebhookSigner
{
    public const string SecretPrefix = Storage.WebhookSecrets.Prefix;

    public static string NewSecret() => Storage.WebhookSecrets.New();

    public static string Sign(string secret, string messageId, long timestamp, string body)
    {
        var key = Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        var signed = Encoding.UTF8.GetBytes($"{messageId}.{timestamp}.{body}");
        return "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, signed));
    }

    /// <summary>The <c>webhook-signature</c> header: one signature per live secret, space-separated.</summary>
    public static string Header(IEnumerable<string> secrets, string messageId, long timestamp, string body) =>
        string.Join(' ', secrets.Select(s => Sign(s, messageId, timestamp, body)));
}
