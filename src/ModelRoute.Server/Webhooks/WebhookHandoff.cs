using System.Threading.Channels;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// Deliveries this node wrote already leased to itself, handed to its delivery worker after the
/// commit, so that a fresh event is sent without a claim first (one write and one wake-up fewer
/// between a state change and its webhook). Only what the worker can take soon is handed over:
/// the rest is written unleased and claimed as usual. If the node dies first, the lease runs out
/// and any node claims the delivery: nothing is lost.
/// </summary>
public sealed class WebhookHandoff
{
    /// <summary>Deliveries handed over and not yet started; beyond this, deliveries wait for a claim.</summary>
    public const int Capacity = 1024;

    private readonly Channel<WebhookDelivery> _deliveries = Channel.CreateUnbounded<WebhookDelivery>(new UnboundedChannelOptions { SingleReader = true });
    private int _waiting;

    public ChannelReader<WebhookDelivery> Reader => _deliveries.Reader;

    /// <summary>True while the worker has room: ExecutionCommits may then have new deliveries written leased to this node.</summary>
    public bool HasRoom => Volatile.Read(ref _waiting) < Capacity;

    public void Offer(IEnumerable<WebhookDelivery> deliveries)
    {
        foreach (var delivery in deliveries)
        {
            Interlocked.Increment(ref _waiting);
            _deliveries.Writer.TryWrite(delivery);
        }
    }

    /// <summary>The worker took one off the queue.</summary>
    public void Taken() => Interlocked.Decrement(ref _waiting);
}
