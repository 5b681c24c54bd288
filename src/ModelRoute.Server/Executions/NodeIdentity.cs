namespace ModelRoute.Server.Executions;

/// <summary>This process's name on leases, unique per start so a restarted node never mistakes old leases for its own.</summary>
public sealed class NodeIdentity
{
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
}
