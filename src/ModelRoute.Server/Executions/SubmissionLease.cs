using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// A fresh submission to store leased to this node's dispatcher (see <see cref="DispatchHandoff"/>), or to store
/// unleased for a claim (<see cref="Terms"/> null). Disposing it frees the dispatcher's place unless the committed
/// execution was handed over: a replay, a refusal or a failed write gives the place back.
/// </summary>
public sealed class SubmissionLease : IDisposable
{
    private static readonly SubmissionLease Unleased = new(null, null);
    private readonly DispatchHandoff? _dispatch;
    private bool _handedOver;

    private SubmissionLease(DispatchHandoff? dispatch, LeaseTerms? terms)
    {
        _dispatch = dispatch;
        Terms = terms;
    }

    /// <summary>The lease owner and end to store with the row; null when the submission waits for a claim.</summary>
    public LeaseTerms? Terms { get; }

    /// <summary>A lease to <paramref name="node"/> if its dispatcher has room for one more, or none.</summary>
    public static SubmissionLease Reserve(NodeIdentity? node, DispatchHandoff? dispatch, TimeProvider time, TimeSpan duration) =>
        node is not null && dispatch is not null && dispatch.TryReserve()
            ? new SubmissionLease(dispatch, new LeaseTerms(node.Id, (time.GetUtcNow() + duration).ToUnixTimeMilliseconds()))
            : Unleased;

    /// <summary>After the commit: gives the stored execution to the dispatcher; false when it is not leased and waits for a claim.</summary>
    public bool HandOver(Execution created)
    {
        if (_dispatch is null)
        {
            return false;
        }

        _handedOver = true;
        var terms = Terms!.Value;
        var leaseEnd = DateTimeOffset.FromUnixTimeMilliseconds(terms.ExpiresAt);
        _dispatch.Offer(created with { LeaseOwner = terms.Owner, LeaseExpiresAt = leaseEnd, NextAttemptAt = leaseEnd });
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
