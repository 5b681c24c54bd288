using System.Threading.Channels;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// One loop that takes the writes queued while its previous group ran (at most <paramref name="maxGroup"/>) and
/// hands them to <paramref name="runGroup"/> together: one multi-row statement, so one round trip and one commit
/// for the group, where a statement each would pay both per write. If the group throws, each of its writes runs
/// through <paramref name="runAlone"/>, one at a time, so that only a failing one fails. Made by
/// <see cref="PostgresDatabase.CreateBatchLane"/>, which drains it before closing.
/// </summary>
public sealed class PostgresBatchLane<TItem, TResult>(
    Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> runGroup,
    Func<TItem, Task<TResult>> runAlone,
    int maxGroup) : PostgresDatabase.IBatchLane
{
    private readonly Channel<Queued> _queue = Channel.CreateUnbounded<Queued>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _start = new();
    private Task? _loop;

    /// <summary>
    /// Queues <paramref name="item"/> for the next group. Not cancellable once queued: as with a commit, the caller
    /// must learn the outcome.
    /// </summary>
    public Task<TResult> RunAsync(TItem item)
    {
        var queued = new Queued(item);
        if (!_queue.Writer.TryWrite(queued))
        {
            throw new ObjectDisposedException(nameof(PostgresDatabase));
        }

        if (_loop is null)
        {
            lock (_start)
            {
                _loop ??= Task.Run(RunGroupsAsync, CancellationToken.None);
            }
        }

        return queued.Completion.Task;
    }

    /// <inheritdoc />
    public Task CompleteAsync()
    {
        _queue.Writer.TryComplete();
        lock (_start)
        {
            return _loop ?? Task.CompletedTask;
        }
    }

    private async Task RunGroupsAsync()
    {
        var reader = _queue.Reader;
        var group = new List<Queued>(maxGroup);
        var items = new List<TItem>(maxGroup);
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < maxGroup && reader.TryRead(out var queued))
            {
                group.Add(queued);
                items.Add(queued.Item);
            }

            IReadOnlyList<TResult>? results = null;
            try
            {
                results = await runGroup(items);
            }
            catch (Exception)
            {
                // Each alone, below. A group that failed after its commit would run again; the writes given to a
                // lane are idempotent (a submission's key), so a second run finds the first one's work.
            }

            if (results is not null)
            {
                for (var i = 0; i < group.Count; i++)
                {
                    group[i].Completion.TrySetResult(results[i]);
                }
            }
            else
            {
                foreach (var queued in group)
                {
                    try
                    {
                        queued.Completion.TrySetResult(await runAlone(queued.Item));
                    }
                    catch (Exception ex)
                    {
                        queued.Completion.TrySetException(ex);
                    }
                }
            }

            group.Clear();
            items.Clear();
        }
    }

    private sealed class Queued(TItem item)
    {
        public TItem Item { get; } = item;

        public TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
