using System.Collections.Concurrent;

namespace ModelRoute.Server.Routing;

/// <summary>Provider calls running on this node, so a cancel or an expiry can stop them at once.</summary>
public sealed class InFlightExecutions
{
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);

    public void Register(string executionId, CancellationTokenSource cancellation) => _running[executionId] = cancellation;

    public void Unregister(string executionId) => _running.TryRemove(executionId, out _);

    public void Stop(string executionId)
    {
        if (_running.TryGetValue(executionId, out var cancellation))
        {
            try
            {
                cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Finished meanwhile.
            }
        }
    }
}

/// <summary>This process's name on leases, unique per start so a restarted node never mistakes old leases for its own.</summary>
public sealed class NodeIdentity
{
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
}
