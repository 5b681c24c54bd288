using System.Threading.Channels;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// An unbounded queue drained by one loop, started on the first write (so a store used without a host, as in the
/// contract tests, still runs it). The group-commit lanes are built on it.
/// </summary>
internal sealed class QueueLoop<T>(Func<ChannelReader<T>, Task> drain)
{
    private readonly Channel<T> _queue = Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _start = new();
    private Task? _loop;

    public void Enqueue(T item)
    {
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresDatabase));
        }

        if (_loop is null)
        {
            lock (_start)
            {
                _loop ??= Task.Run(() => drain(_queue.Reader), CancellationToken.None);
            }
        }
    }

    /// <summary>Takes no more items and waits for the loop to drain the ones queued.</summary>
    public Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        lock (_start)
        {
            return _loop ?? Task.CompletedTask;
        }
    }
}
