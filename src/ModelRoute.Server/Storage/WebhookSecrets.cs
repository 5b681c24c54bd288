using System.Security.Cryptography;

namespace ModelRoute.Server.Storage;

/// <summary>
/// New webhook signing secrets: <c>whsec_</c> and 24 random bytes in base64. Here, below the stores, because an
/// account gets its default secret in the write that creates it.
/// </summary>
public static class WebhookSecrets
{
    public const string Prefix = "whsec_";

    public static string New() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
}
