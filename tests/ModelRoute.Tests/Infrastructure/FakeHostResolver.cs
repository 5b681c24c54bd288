using System.Net;
using System.Net.Sockets;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// A scripted DNS: <c>answer(host, n)</c> gives the addresses of the n-th lookup (from 0) of that
/// host; <c>null</c> means the host does not resolve (a <see cref="SocketException"/>, as
/// <see cref="Dns"/> throws). Every lookup is recorded, in order.
/// </summary>
public sealed class FakeHostResolver(Func<string, int, string[]?> answer) : IHostResolver
{
    private readonly ConcurrentDictionary<string, int> _counts = new(StringComparer.OrdinalIgnoreCase);

    public ConcurrentQueue<string> Lookups { get; } = new();

    /// <summary>The same answer every time for every host.</summary>
    public static FakeHostResolver Always(params string[] addresses) => new((_, _) => addresses);

    /// <summary>Answers <paramref name="first"/> to the first lookup of a host and <paramref name="then"/> to every later one.</summary>
    public static FakeHostResolver Rebinding(string first, string then) => new((_, n) => n == 0 ? [first] : [then]);

    public int LookupsOf(string host) => Lookups.Count(h => string.Equals(h, host, StringComparison.OrdinalIgnoreCase));

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        Lookups.Enqueue(host);
        var n = _counts.AddOrUpdate(host, 0, (_, previous) => previous + 1);
        var addresses = answer(host, n) ?? throw new SocketException((int)SocketError.HostNotFound);
        return Task.FromResult(addresses.Select(IPAddress.Parse).ToArray());
    }
}
