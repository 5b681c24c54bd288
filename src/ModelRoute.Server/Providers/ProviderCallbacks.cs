using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace ModelRoute.Server.Providers;

/// <summary>
/// Callback URLs for async providers. Each attempt gets a random token in its URL; only its
/// hash is stored, and a callback must present it (docs/architecture.md, One execution, end to end).
/// </summary>
public sealed class ProviderCallbacks(IOptions<ModelRouteOptions> options, IServer server)
{
    public static string NewToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    public static bool Matches(string? token, string? storedHash) =>
        token is { Length: > 0 } && storedHash is { Length: > 0 }
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(token)), Encoding.ASCII.GetBytes(storedHash));

    public Uri? UrlFor(string provider, string executionId, string token)
    {
        var baseUrl = options.Value.PublicBaseUrl ?? LocalAddress();
        return baseUrl is null
            ? null
            : new Uri($"{baseUrl.TrimEnd('/')}/v1/provider-callbacks/{Uri.EscapeDataString(provider)}/{executionId}?token={token}");
    }

    private string? LocalAddress()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return address?
            .Replace("://+", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://*", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal)
            .Replace("://[::]", "://[::1]", StringComparison.Ordinal);
    }
}
