using System.Data;
using Dapper;
using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>The group-commit lanes: writes queued together share one transaction, and joined pairs one statement (docs/architecture.md).</summary>
public sealed partial class PostgresDatabase
{
    /// <summary>The transaction a grouped write finishes in, and the statements it leaves for the group's last round trip.</summary>
    public sealed class GroupScope(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        private readonly List<(string Key, NpgsqlBatchCommand Command)> _last = [];
        private readonly Dictionary<string, MergedLate> _merged = new(StringComparer.Ordinal);
        private readonly Dictionary<string, MergedLate> _mergedLater = new(StringComparer.Ordinal);

        public NpgsqlConnection Connection { get; } = connection;

        public NpgsqlTransaction Transaction { get; } = transaction;

        /// <summary>Statements that return nothing, sent in one round trip with the commit, after every write of the group has finished.</summary>
        public List<NpgsqlBatchCommand> Later { get; } = [];

        /// <summary>
        /// A statement that locks a row other groups lock too (an account's balance): sent after <see cref="Later"/>,
        /// right before the commit in the same round trip, so that the lock is held for that round trip and the
        /// commit's flush only. The group sends these ordered by <paramref name="key"/> (the row's), so that two groups
        /// never lock the same rows in opposite orders.
        /// </summary>
        public void LockLate(string key, NpgsqlBatchCommand command) => _last.Add((key, command));

        /// <summary>
        /// <see cref="LockLate(string, NpgsqlBatchCommand)"/> for writes to one row that add up (an account's settlements):
        /// every item given for <paramref name="key"/> goes into one statement, made at the commit by
        /// <paramref name="merge"/> from them all in the order given, so that the row gets one new version per group
        /// rather than one per write. Every item given for one key must be of the same kind.
        /// </summary>
        public void LockLate<T>(string key, T item, Func<string, IReadOnlyList<T>, NpgsqlBatchCommand> merge)
        {
            if (!_merged.TryGetValue(key, out var late))
            {
                _merged[key] = late = new MergedLate<T>(merge);
            }

            ((MergedLate<T>)late).Items.Add(item);
        }

        /// <summary>
        /// <see cref="Later"/> for rows of one kind that many writes of the group add (the outbox's deliveries): every
        /// item given for <paramref name="kind"/> goes into one statement, made at the commit by <paramref name="merge"/>
        /// from them all in the order given, so that PostgreSQL runs one insert of many rows instead of one each.
        /// </summary>
        public void LaterMerged<T>(string kind, T item, Func<IReadOnlyList<T>, NpgsqlBatchCommand> merge)
        {
            if (!_mergedLater.TryGetValue(kind, out var later))
            {
                _mergedLater[kind] = later = new MergedLate<T>((_, items) => merge(items));
            }

            ((MergedLate<T>)later).Items.Add(item);
        }

        /// <summary>The statements left, then COMMIT, in one round trip.</summary>
        internal async Task CommitAsync()
        {
            await using var batch = new NpgsqlBatch(Connection, Transaction);
            foreach (var command in Later)
            {
                batch.BatchCommands.Add(command);
            }

            foreach (var (kind, later) in _mergedLater)
            {
                batch.BatchCommands.Add(later.Build(kind));
            }

            var merged = _merged.Select(m => (m.Key, Command: m.Value.Build(m.Key)));
            foreach (var (_, command) in _last.Concat(merged).OrderBy(l => l.Key, StringComparer.Ordinal))
            {
                batch.BatchCommands.Add(command);
            }

            batch.BatchCommands.Add(new NpgsqlBatchCommand("COMMIT"));
            Later.Clear();
            _mergedLater.Clear();
            _last.Clear();
            _merged.Clear();
            await batch.ExecuteNonQueryAsync(CancellationToken.None);
        }

        private abstract class MergedLate
        {
            public abstract NpgsqlBatchCommand Build(string key);
        }

        private sealed class MergedLate<T>(Func<string, IReadOnlyList<T>, NpgsqlBatchCommand> merge) : MergedLate
        {
            public List<T> Items { get; } = [];

            public override NpgsqlBatchCommand Build(string key) => merge(key, Items);
        }
    }

    /// <summary>One loop of group commits: everything queued while a group runs goes into the next.</summary>
    private sealed class GroupLane
    {
        private readonly NpgsqlDataSource _dataSource;
        private readonly QueueLoop<GroupedWrite> _writes;

        public GroupLane(NpgsqlDataSource dataSource)
        {
            _dataSource = dataSource;
            _writes = new QueueLoop<GroupedWrite>(RunGroupsAsync);
        }

        public void Enqueue(GroupedWrite item) => _writes.Enqueue(item);

        /// <summary>Takes no more writes and waits for the ones queued.</summary>
        public Task CompleteAsync() => _writes.CompleteAsync();

        private async Task RunGroupsAsync(System.Threading.Channels.ChannelReader<GroupedWrite> reader)
        {
            var group = new List<GroupedWrite>(MaxGroup);
            while (await reader.WaitToReadAsync(CancellationToken.None))
            {
                // Everything queued while the previous group committed goes into this one.
                while (group.Count < MaxGroup && reader.TryRead(out var item))
                {
                    if (!item.CancelIfRequested())
                    {
                        group.Add(item);
                    }
                }

                if (group.Count > 0)
                {
                    await CommitGroupAsync(group);
                }

                group.Clear();
            }
        }

        private async Task CommitGroupAsync(List<GroupedWrite> group)
        {
            NpgsqlConnection opened;
            try
            {
                opened = await _dataSource.OpenConnectionAsync(CancellationToken.None);
            }
            catch (Exception ex)
            {
                // No connection (the server is down, the pool exhausted): nothing was sent, so each caller hears of it
                // now. Running each write alone, as below, would only open again, and a write alone would loop.
                ForEach(group, item => item.Fail(ex));
                return;
            }

            try
            {
                await using var connection = opened;
                await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, CancellationToken.None);
                var scope = new GroupScope(connection, transaction);
                if (await RunGroupAsync(group, scope))
                {
                    try
                    {
                        await scope.CommitAsync();
                    }
                    catch (PostgresException ex)
                    {
                        // The server refused a statement or the COMMIT itself: either way nothing was committed.
                        ForEach(group, item => item.Error(ex));
                        await RollBackOrRunAloneAsync(group, transaction);
                        return;
                    }
                    catch (Exception ex)
                    {
                        // The outcome is unknown: running the writes again could apply them twice, so each caller hears of it.
                        ForEach(group, item => item.Fail(ex));
                        return;
                    }

                    ForEach(group, static item => item.Complete());
                    return;
                }

                await RollBackOrRunAloneAsync(group, transaction);
                return;
            }
            catch (Exception)
            {
                // Beginning, rolling back or the connection failed before any commit: fall through and run each write alone.
            }

            await RunEachAloneAsync(group);
        }

        private static void ForEach(List<GroupedWrite> group, Action<GroupedWrite> act)
        {
            foreach (var item in group)
            {
                act(item);
            }
        }

        /// <summary>After a failed statement: a write alone has its answer; a group rolls back and each of its writes runs alone.</summary>
        private async Task RollBackOrRunAloneAsync(List<GroupedWrite> group, NpgsqlTransaction transaction)
        {
            try
            {
                await transaction.RollbackAsync(CancellationToken.None);
            }
            catch (InvalidOperationException)
            {
                // A failed COMMIT already ended the transaction.
            }

            if (group.Count == 1)
            {
                group[0].FailWithOwnError();
                return;
            }

            await RunEachAloneAsync(group);
        }

        // One write failed or the group met a deadlock with another node's: each write alone, one at a time.
        private async Task RunEachAloneAsync(List<GroupedWrite> group)
        {
            foreach (var item in group)
            {
                await CommitGroupAsync([item]);
            }
        }
    }

    /// <summary>
    /// All the group's first statements in one round trip, then each write's finish (the queued statements go with the
    /// commit). The two halves of a <see cref="WritePair"/> found in the group send one statement, the leader's.
    /// </summary>
    private static async Task<bool> RunGroupAsync(List<GroupedWrite> group, GroupScope scope)
    {
        var failed = false;
        try
        {
            var sending = PairUp(group);
            await using var batch = new NpgsqlBatch(scope.Connection, scope.Transaction);
            foreach (var item in sending)
            {
                batch.BatchCommands.Add(item.TakeStatement());
            }

            await using var reader = await batch.ExecuteReaderAsync(CancellationToken.None);
            for (var i = 0; i < sending.Count; i++)
            {
                if (i > 0 && !await reader.NextResultAsync(CancellationToken.None))
                {
                    throw new InvalidOperationException("A grouped statement returned no result.");
                }

                await sending[i].ReadAsync(reader);
            }

            foreach (var item in group)
            {
                item.ReadFromLeader();
            }
        }
        catch (Exception ex)
        {
            foreach (var item in group)
            {
                item.Error(ex);
            }

            return false;
        }

        foreach (var item in group)
        {
            failed |= !await item.FinishAsync(scope);
            if (failed)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Joins each pair's follower to its leader when both are in the group (the leader queued first; a follower whose
    /// leader went in an earlier group is sent alone): the leader sends one statement for both
    /// (<see cref="WritePair.Fuse"/>) and the follower reads what it returned. A write that is no pair's (a cancel, an
    /// expiry) may change the same row, so no follower moves across one to its leader's place: the two are then sent
    /// as they are. Answers the writes that send a statement.
    /// </summary>
    private static List<GroupedWrite> PairUp(List<GroupedWrite> group)
    {
        Dictionary<string, GroupedWrite>? leaders = null;
        HashSet<string>? seen = null;
        var barrier = -1; // The index in sending of the last write that is no pair's.
        var sending = new List<GroupedWrite>(group.Count);
        foreach (var item in group)
        {
            item.Leader = null;
            if (item.Pair is { } pair)
            {
                pair.Partner = null;
            }
        }

        foreach (var item in group)
        {
            if (item.Pair is not { } pair)
            {
                barrier = sending.Count;
            }
            else if (pair.Leads)
            {
                // One pair per row in a group: a second leader of a row (never queued so by the dispatcher) is sent as it is.
                leaders ??= new(StringComparer.Ordinal);
                if ((seen ??= new(StringComparer.Ordinal)).Add(pair.Key))
                {
                    leaders[pair.Key] = item;
                }
                else
                {
                    leaders.Remove(pair.Key);
                }
            }
            else if (leaders is not null && leaders.Remove(pair.Key, out var leader) && sending.IndexOf(leader) > barrier)
            {
                leader.Pair!.Partner = pair;
                pair.Partner = leader.Pair;
                item.Leader = leader;
                continue;
            }

            sending.Add(item);
        }

        return sending;
    }

    private abstract class GroupedWrite
    {
        public WritePair? Pair { get; init; }

        /// <summary>The pair's leader, in a group in which its statement is this write's too.</summary>
        public GroupedWrite? Leader { get; set; }

        public abstract bool CancelIfRequested();

        /// <summary>The first statement, fresh: a batch command belongs to one batch only.</summary>
        public abstract NpgsqlBatchCommand TakeStatement();

        public abstract Task ReadAsync(NpgsqlDataReader reader);

        /// <summary>A follower sent no statement: it reads what its leader's statement returned.</summary>
        public abstract void ReadFromLeader();

        /// <summary>False if it threw (the group must roll back).</summary>
        public abstract Task<bool> FinishAsync(GroupScope scope);

        /// <summary>Remembers what failed, for the caller if the write fails alone.</summary>
        public abstract void Error(Exception exception);

        public abstract void Complete();

        public abstract void Fail(Exception exception);

        public abstract void FailWithOwnError();
    }

    private sealed class GroupedWrite<TRead, T>(
        NpgsqlBatchCommand statement,
        Func<NpgsqlDataReader, Task<TRead>> read,
        Func<TRead, GroupScope, Task<T>> finish,
        CancellationToken cancellationToken) : GroupedWrite
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TRead _read = default!;
        private T _result = default!;
        private Exception? _error;
        private bool _used;

        public Task<T> Completion => _completion.Task;

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);

        public override NpgsqlBatchCommand TakeStatement()
        {
            _error = null;
            if (Pair is { Leads: true, Partner: { } follower })
            {
                return Pair.Fuse!(Pair.State, follower.State);
            }

            if (!_used)
            {
                _used = true;
                return statement;
            }

            var copy = new NpgsqlBatchCommand(statement.CommandText);
            foreach (NpgsqlParameter parameter in statement.Parameters)
            {
                copy.Parameters.Add(parameter.Clone());
            }

            return copy;
        }

        public override async Task ReadAsync(NpgsqlDataReader reader) => _read = await read(reader);

        public override void ReadFromLeader()
        {
            if (Leader is not null)
            {
                _error = null;
                _read = ((GroupedWrite<TRead, T>)Leader)._read;
            }
        }

        public override async Task<bool> FinishAsync(GroupScope scope)
        {
            try
            {
                _result = await finish(_read, scope);
                return true;
            }
            catch (Exception ex)
            {
                _error = ex;
                return false;
            }
        }

        public override void Error(Exception exception) => _error ??= exception;

        public override void Complete() => _completion.TrySetResult(_result);

        public override void Fail(Exception exception) => _completion.TrySetException(exception);

        public override void FailWithOwnError() =>
            _completion.TrySetException(_error ?? new InvalidOperationException("A grouped write failed without an error."));
    }
}
