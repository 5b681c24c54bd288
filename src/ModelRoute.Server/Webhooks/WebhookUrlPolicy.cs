using System.Net;
using System.Net.Sockets;

namespace ModelRoute.Server.Webhooks;

/// <summary>Resolves host names; a seam so that tests can make a DNS answer change between checks.</summary>
public interface IHostResolver
{
    Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}

public sealed class DnsHostResolver : IHostResolver
{
    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) => Dns.GetHostAddressesAsync(host, cancellationToken);
}

/// <summary>
/// Where webhooks may go (docs/api.md#webhooks): http(s) only, https unless allowed, and never to loopback,
/// private, link-local, unique-local or metadata addresses unless the operator allows private
/// networks. Checked at submission and again when connecting, against the address actually used.
/// </summary>
public sealed class WebhookUrlPolicy(IHostResolver resolver, IOptions<ModelRouteOptions> options)
{
    public async Task<string?> RefusalAsync(Uri url, CancellationToken cancellationToken)
    {
        var webhooks = options.Value.Webhooks;
        if (url.Scheme != Uri.UriSchemeHttps && !(url.Scheme == Uri.UriSchemeHttp && webhooks.AllowHttp))
        {
            return webhooks.AllowHttp ? "Webhook URLs must use http or https." : "Webhook URLs must use https.";
        }

        if (!string.IsNullOrEmpty(url.UserInfo))
        {
            return "Webhook URLs must not carry credentials.";
        }

        if (webhooks.AllowPrivateNetworks)
        {
            return null;
        }

        IPAddress[] addresses;
        try
        {
            addresses = IPAddress.TryParse(url.IdnHost.Trim('[', ']'), out var literal) ? [literal] : await resolver.ResolveAsync(url.IdnHost, cancellationToken);
        }
        catch (Exception ex) when (ex is SocketException or ArgumentException)
        {
            // ArgumentException: a name DNS cannot even ask for (say, over 255 characters).
            return "The webhook host does not resolve.";
        }

        return addresses.Length == 0 ? "The webhook host does not resolve."
            : addresses.Any(IsPrivate) ? "Webhook URLs must not point at loopback, private, link-local or metadata addresses."
            : null;
    }

    /// <summary>Whether a connection to this address is allowed now (the connect-time check).</summary>
    public bool MayConnect(IPAddress address) => options.Value.Webhooks.AllowPrivateNetworks || !IsPrivate(address);

    public static bool IsPrivate(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return IsPrivateIPv4(bytes);
        }

        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.IPv6Any) || address.IsIPv6LinkLocal || address.IsIPv6SiteLocal
            || address.IsIPv6Multicast || address.IsIPv6UniqueLocal)
        {
            return true;
        }

        // Every form that carries an IPv4 address is judged by it (docs/webhooks.md#where-webhooks-may-go).
        foreach (var embedded in EmbeddedIPv4(bytes))
        {
            if (IsPrivateIPv4(embedded))
            {
                return true;
            }
        }

        return (bytes[0] == 0x00 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b && bytes[4] == 0x00 && bytes[5] == 0x01) // 64:ff9b:1::/48, local-use NAT64
            || (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8); // documentation
    }

    /// <summary>
    /// The IPv4 addresses an IPv6 address may lead to: mapped (::ffff:0:0/96), translated (::ffff:0:0:0/96),
    /// compatible (::/96), NAT64 (64:ff9b::/96), 6to4 (2002::/16), Teredo (2001::/32: the server, and the
    /// client stored inverted) and ISATAP (an interface id of 0:5efe or 200:5efe under any prefix).
    /// </summary>
    private static IEnumerable<byte[]> EmbeddedIPv4(byte[] b)
    {
        var zeroTo8 = b.AsSpan(0, 8).IndexOfAnyExcept((byte)0) < 0;
        if (zeroTo8 && ((b[8] == 0 && b[9] == 0 && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0)))
            || (b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0)))
        {
            yield return b[12..16];
        }

        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0)
        {
            yield return b[12..16];
        }

        if (b[0] == 0x20 && b[1] == 0x02)
        {
            yield return b[2..6];
        }

        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00)
        {
            yield return b[4..8];
            yield return [(byte)~b[12], (byte)~b[13], (byte)~b[14], (byte)~b[15]];
        }

        if ((b[8] & 0xfd) == 0x00 && b[9] == 0x00 && b[10] == 0x5e && b[11] == 0xfe)
        {
            yield return b[12..16];
        }
    }

    private static bool IsPrivateIPv4(byte[] b) => b[0] switch
    {
        0 or 10 or 127 => true,
        100 => b[1] is >= 64 and <= 127,          // carrier-grade NAT
        169 => b[1] == 254,                        // link-local, cloud metadata
        172 => b[1] is >= 16 and <= 31,
        192 => (b[1] == 168) || (b[1] == 0 && b[2] is 0 or 2),
        198 => b[1] is 18 or 19 || (b[1] == 51 && b[2] == 100),
        203 => b[1] == 0 && b[2] == 113,
        >= 224 => true,                            // multicast, reserved, broadcast
        _ => false,
    };
}
