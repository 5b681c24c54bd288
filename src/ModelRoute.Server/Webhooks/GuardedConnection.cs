using System.Net;
using System.Net.Sockets;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// The connect step of every outbound client that must not reach the gateway's own network (webhook deliveries,
/// artifact copies: docs/artifacts.md): the host is resolved here and only addresses the policy allows are dialled,
/// so a DNS answer that changed since the URL was checked is caught on the address actually used.
/// </summary>
public static class GuardedConnection
{
    public static async ValueTask<Stream> ConnectAsync(
        SocketsHttpConnectionContext context,
        IHostResolver resolver,
        Func<IPAddress, bool> mayConnect,
        Func<string, Exception> refused,
        CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await resolver.ResolveAsync(host, cancellationToken);
        var allowed = addresses.Where(mayConnect).ToArray();
        if (allowed.Length == 0)
        {
            throw refused(host);
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
