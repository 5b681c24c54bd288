using System.Threading.Channels;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// One loop that takes the writes queued while its previous group ran (at most <c>maxGroup</c>) and
/// hands them to <c>runGroup</c> together: one multi-row statement, so one round trip and one commit
/// for the group, where a statement each would pay both per write. If the group throws, each of its writes runs
/// through <c>runAlone</c>, one at a time, so that only a failing one fails. Made by
/// <see cref="PostgresDatabase.CreateBatchLane"/>, which drains it before closing.
/// </summary>
public sealed class PostgresBatchLane<TItem, TResult> : PostgresDatabase.IBatchLane
{
    private readonly Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> _runGroup;
    private readonly Func<TItem, Task<TResult>> _runAlone;
    private readonly int _maxGroup;
    private readonly QueueLoop<Queued> _writes;

    internal PostgresBatchLane(Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> runGroup, Func<TItem, Task<TResult>> runAlone, int maxGroup)
    {
        _runGroup = runGroup;
        _runAlone = runAlone;
        _maxGroup = maxGroup;
        _writes = new QueueLoop<Queued>(RunGroupsAsync);
    }

    /// <summary>
    /// Queues <paramref name="item"/> for the next group. Not cancellable once queued: as with a commit, the caller
    /// must learn the outcome.
    /// </summary>
    public Task<TResult> RunAsync(TItem item)
    {
        var queued = new Queued(item);
        _writes.Enqueue(queued);
        return queued.Completion.Task;
    }

    /// <inheritdoc />
    public Task CompleteAsync() => _writes.CompleteAsync();

    private async Task RunGroupsAsync(ChannelReader<Queued> reader)
    {
        var group = new List<Queued>(_maxGroup);
        var items = new List<TItem>(_maxGroup);
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < _maxGroup && reader.TryRead(out var queued))
            {
                group.Add(queued);
                items.Add(queued.Item);
            }

            IReadOnlyList<TResult>? results = null;
            try
            {
                results = await _runGroup(items);
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
                        queued.Completion.TrySetResult(await _runAlone(queued.Item));
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
