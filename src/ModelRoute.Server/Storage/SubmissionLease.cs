using ModelRoute.Server.Executions;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Storage;

/// <summary>
/// A fresh submission stored leased to this node's dispatcher (see <see cref="DispatchHandoff"/>), or stored
/// unleased for a claim (<see cref="LeaseOwner"/> null). Disposing it frees the dispatcher's place unless the
/// committed execution was handed over.
/// </summary>
public sealed class SubmissionLease : IDisposable
{
    private static readonly SubmissionLease Unleased = new(null, null, null);
    private readonly DispatchHandoff? _dispatch;
    private bool _handedOver;

    private SubmissionLease(DispatchHandoff? dispatch, string? owner, long? expiresAt)
    {
        _dispatch = dispatch;
        LeaseOwner = owner;
        LeaseExpiresAt = expiresAt;
    }

    /// <summary>The node id to store as the lease owner; null when the submission waits for a claim.</summary>
    public string? LeaseOwner { get; }

    /// <summary>Unix milliseconds.</summary>
    public long? LeaseExpiresAt { get; }

    /// <summary>A lease to <paramref name="node"/> if its dispatcher has room for one more, or none.</summary>
    public static SubmissionLease Reserve(NodeIdentity? node, DispatchHandoff? dispatch, TimeProvider time, TimeSpan duration) =>
        node is not null && dispatch is not null && dispatch.TryReserve()
            ? new SubmissionLease(dispatch, node.Id, (time.GetUtcNow() + duration).ToUnixTimeMilliseconds())
            : Unleased;

    /// <summary>After the commit: gives the stored execution to the dispatcher; false when it is not leased and waits for a claim.</summary>
    public bool HandOver(Execution created)
    {
        if (_dispatch is null)
        {
            return false;
        }

        _handedOver = true;
        var leaseEnd = DateTimeOffset.FromUnixTimeMilliseconds(LeaseExpiresAt!.Value);
        _dispatch.Offer(created with { LeaseOwner = LeaseOwner, LeaseExpiresAt = leaseEnd, NextAttemptAt = leaseEnd });
        return true;
    }

    public void Dispose()
    {
        if (_dispatch is not null && !_handedOver)
        {
            _handedOver = true; // Once only.
            _dispatch.Cancel();
        }
    }
}
