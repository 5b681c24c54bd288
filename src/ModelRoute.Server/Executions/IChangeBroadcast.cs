namespace ModelRoute.Server.Executions;

/// <summary>
/// Tells the other nodes what this node committed, after the commit (docs/architecture.md): executions, deliveries,
/// and the account and key changes their caches must drop: with PostgreSQL a NOTIFY
/// (Storage.Postgres.PostgresNotifier); a single SQLite node has no one to tell (<see cref="NoChangeBroadcast"/>).
/// </summary>
public interface IChangeBroadcast
{
    /// <summary>The execution moved to <paramref name="status"/>: other nodes wake their waiters, and their dispatchers for PENDING work.</summary>
    void ExecutionChanged(string executionId, ExecutionStatus status);

    /// <summary>Deliveries were written that any node's webhook worker may claim.</summary>
    void WebhooksWritten();

    /// <summary>The account was disabled or enabled: other nodes drop what they cached of its keys (docs/tenancy.md).</summary>
    void AccountChanged(string accountId);

    /// <summary>The key was revoked: other nodes drop it from their caches (docs/tenancy.md).</summary>
    void KeyRevoked(string keyId);
}

/// <summary>One node only: nobody else to tell.</summary>
public sealed class NoChangeBroadcast : IChangeBroadcast
{
    public static readonly NoChangeBroadcast Instance = new();

    public void ExecutionChanged(string executionId, ExecutionStatus status)
    {
    }

    public void WebhooksWritten()
    {
    }

    public void AccountChanged(string accountId)
    {
    }

    public void KeyRevoked(string keyId)
    {
    }
}
