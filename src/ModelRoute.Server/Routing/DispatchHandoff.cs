using System.Threading.Channels;

namespace ModelRoute.Server.Routing;

/// <summary>
/// Fresh submissions this node stored already leased to its own dispatcher, handed over after the
/// commit, so that they start without a claim: one write, one wake-up and one scan fewer between a
/// <c>202</c> and the provider call. Only what the dispatcher can start soon is handed over, and
/// nothing while submissions crowd in (then they are stored unleased and claimed as usual, after
/// the burst, see <see cref="SubmissionLoad"/>). If the node dies first, the lease runs out and any
/// node claims the execution: nothing is lost.
/// </summary>
public sealed class DispatchHandoff(SubmissionLoad submissions)
{
    /// <summary>Executions reserved or handed over and not yet started; beyond this, submissions wait for a claim.</summary>
    public const int Capacity = 64;

    private readonly Channel<Execution> _executions = Channel.CreateUnbounded<Execution>(new UnboundedChannelOptions { SingleReader = true });
    private SemaphoreSlim? _slots;
    private int _waiting;
    private volatile bool _providersFull;

    public ChannelReader<Execution> Reader => _executions.Reader;

    /// <summary>The dispatcher takes hand-offs from now on; <paramref name="slots"/> are its free places.</summary>
    public void Open(SemaphoreSlim slots) => Volatile.Write(ref _slots, slots);

    /// <summary>No more hand-offs (the dispatcher is stopping); what is queued is for it to give back.</summary>
    public void Close() => Volatile.Write(ref _slots, null);

    /// <summary>
    /// Told by each claim whether the providers' free places bound it. While they do, nothing is handed over: a fresh
    /// submission is stored unleased, at its place in its account's queue. Handed over, it would have to be given back
    /// to that place by a write of its own, and a later submission of the same account, stored or given back before
    /// that write landed, was claimed ahead of it (first in, first out within an account, docs/routing.md).
    /// </summary>
    public void ProvidersFull(bool full) => _providersFull = full;

    /// <summary>
    /// Takes a place for one submission about to be stored, if the dispatcher is running, has room, the providers
    /// have places free and submissions are not crowding in. A place taken must end in <see cref="Offer"/> or
    /// <see cref="Cancel"/>.
    /// </summary>
    public bool TryReserve()
    {
        if (Volatile.Read(ref _slots) is not { } slots || submissions.IsBusy || _providersFull)
        {
            return false;
        }

        var waiting = Interlocked.Increment(ref _waiting);
        if (waiting <= Capacity && waiting <= slots.CurrentCount)
        {
            return true;
        }

        Interlocked.Decrement(ref _waiting);
        return false;
    }

    /// <summary>The reserved submission was not stored (a replay, a refusal, a failure): its place is free again.</summary>
    public void Cancel() => Interlocked.Decrement(ref _waiting);

    /// <summary>The reserved submission is committed, leased to this node: the dispatcher starts it.</summary>
    public void Offer(Execution execution) => _executions.Writer.TryWrite(execution);

    /// <summary>The dispatcher took one off the queue.</summary>
    public void Taken() => Interlocked.Decrement(ref _waiting);
}
