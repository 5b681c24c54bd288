using System.Net;
using System.Net.Sockets;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// Where provider outputs may be fetched from (docs/artifacts.md): the webhook network policy (http or https only,
/// https unless allowed, no credentials in the URL, no loopback, private, link-local or metadata address), except for
/// hosts the operator trusts: the BaseUrl host and port of the provider that made the output, and
/// <see cref="ArtifactOptions.TrustedHosts"/>. Checked before each request (each redirect included) and again when
/// connecting, against the address actually used.
/// </summary>
public sealed class ArtifactUrlPolicy(IHostResolver resolver, IOptions<ModelRouteOptions> options)
{
    private readonly IReadOnlyList<(string Host, int? Port)> _trusted =
        [.. options.Value.Artifacts.TrustedHosts.Select(ParseTrustedHost).OfType<(string, int?)>()];

    public bool AllowHttp => options.Value.Artifacts.AllowHttp ?? options.Value.Webhooks.AllowHttp;

    public bool AllowPrivateNetworks => options.Value.Artifacts.AllowPrivateNetworks ?? options.Value.Webhooks.AllowPrivateNetworks;

    /// <summary>Whether the operator trusts <paramref name="url"/>'s host for outputs of <paramref name="provider"/>.</summary>
    public bool IsTrusted(Uri url, string? provider)
    {
        if (provider is not null && options.Value.Providers.TryGetValue(provider, out var p)
            && Uri.TryCreate(p.BaseUrl, UriKind.Absolute, out var baseUrl) && SameHost(baseUrl.IdnHost, url) && baseUrl.Port == url.Port)
        {
            return true;
        }

        return _trusted.Any(t => SameHost(t.Host, url) && (t.Port is null || t.Port == url.Port));
    }

    /// <summary>Why <paramref name="url"/> may not be fetched, or null when it may (the connect-time check still applies).</summary>
    public async Task<string?> RefusalAsync(Uri url, bool trusted, CancellationToken cancellationToken)
    {
        if (url.Scheme != Uri.UriSchemeHttps && !(url.Scheme == Uri.UriSchemeHttp && (AllowHttp || trusted)))
        {
            return AllowHttp ? "is neither http nor https" : "is not https";
        }

        if (!string.IsNullOrEmpty(url.UserInfo))
        {
            return "carries credentials";
        }

        if (trusted || AllowPrivateNetworks)
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
            return null; // Not judged here: the connection attempt fails, and a failed copy is tried again.
        }

        return addresses.Any(WebhookUrlPolicy.IsPrivate) ? "points at a loopback, private, link-local or metadata address" : null;
    }

    /// <summary>Whether an untrusted fetch may connect to this address (the connect-time check).</summary>
    public bool MayConnect(IPAddress address) => AllowPrivateNetworks || !WebhookUrlPolicy.IsPrivate(address);

    /// <summary>A <see cref="ArtifactOptions.TrustedHosts"/> entry, <c>name</c> or <c>name:port</c>; null when it is neither.</summary>
    public static (string Host, int? Port)? ParseTrustedHost(string? entry)
    {
        if (string.IsNullOrWhiteSpace(entry) || entry.Contains('/', StringComparison.Ordinal) || entry.Contains('@', StringComparison.Ordinal))
        {
            return null;
        }

        return Uri.TryCreate("http://" + entry.Trim(), UriKind.Absolute, out var uri) && uri.AbsolutePath == "/" && string.IsNullOrEmpty(uri.Query)
            ? (uri.IdnHost, uri.IsDefaultPort && !entry.TrimEnd().EndsWith(":80", StringComparison.Ordinal) ? null : uri.Port)
            : null;
    }

    private static bool SameHost(string host, Uri url) => string.Equals(host.Trim('[', ']'), url.IdnHost.Trim('[', ']'), StringComparison.OrdinalIgnoreCase);
}
