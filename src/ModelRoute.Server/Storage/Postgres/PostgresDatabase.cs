using System.Data;
using System.Globalization;
using System.Reflection;
using Dapper;
using System.Collections.Concurrent;
using Npgsql;
using NpgsqlTypes;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// A PostgreSQL database shared by any number of gateway nodes. Writes run in READ COMMITTED
/// transactions: every state move is a conditional UPDATE (re-checked by PostgreSQL against the
/// row's latest version) or takes row locks, so no stronger isolation is needed.
/// </summary>
public sealed class PostgresDatabase : IStoreMigrations, IAsyncDisposable, IDisposable
{
    /// <summary>
    /// The channel every node LISTENs on. A message is one or more newline-separated payloads, each
    /// "&lt;execution id&gt; &lt;STATUS&gt;" or <see cref="WebhooksPayload"/> (sent by <see cref="PostgresNotifier"/>).
    /// </summary>
    public const string Channel = "modelroute";

    /// <summary>A payload that only says new webhook deliveries are due.</summary>
    public const string WebhooksPayload = "webhooks";

    // Any fixed number: the key of the advisory lock that serialises migrations across nodes.
    private const long MigrationLockKey = 0x6d6f64656c726f;

    // Writes queued for one shared transaction are taken at most this many at a time: enough to cover
    // one fsync's worth of submits at the target rates, few enough that one group holds its locks briefly.
    private const int MaxGroup = 128;

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _connectionString;
    private readonly GroupLane _balances;
    private readonly GroupLane _moves;
    private readonly List<IBatchLane> _batchLanes = [];

    static PostgresDatabase() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    public PostgresDatabase(string connectionString)
    {
        _connectionString = connectionString;
        _dataSource = new NpgsqlDataSourceBuilder(WithDefaults(connectionString)).Build();
        _balances = new GroupLane(_dataSource);
        _moves = new GroupLane(_dataSource);
    }

    /// <summary>
    /// Turns on automatic preparation unless the connection string says otherwise: the hot statements
    /// are a few fixed texts run thousands of times a second, and a prepared one skips parsing and
    /// planning on every call.
    /// </summary>
    internal static string WithDefaults(string connectionString)
    {
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!given.ContainsKey("Max Auto Prepare") && !given.ContainsKey("MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 64;
            if (!given.ContainsKey("Auto Prepare Min Usages") && !given.ContainsKey("AutoPrepareMinUsages"))
            {
                builder.AutoPrepareMinUsages = 2;
            }
        }

        // No reset when a connection goes back to the pool: the gateway keeps no session state (only SET
        // LOCAL, inside transactions; LISTEN is on a connection of its own), and the reset was seven
        // statements on every pooled write.
        if (!given.ContainsKey("No Reset On Close") && !given.ContainsKey("NoResetOnClose"))
        {
            builder.NoResetOnClose = true;
        }

        return builder.ConnectionString;
    }

    public async Task<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        return await read(connection);
    }

    /// <summary>
    /// Runs a write that is one statement, in its own implicit transaction: no BEGIN and no separate
    /// COMMIT round trip. (Statements are not cancelled midway, so the caller learns the outcome.)
    /// </summary>
    public async Task<T> WriteStatementAsync<T>(Func<NpgsqlConnection, Task<T>> write, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        return await write(connection);
    }

    /// <summary>Runs <paramref name="write"/> in one transaction; it commits unless it throws or asks to roll back.</summary>
    public async Task<T> WriteAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        var (result, commit) = await write(connection, transaction);
        if (commit)
        {
            // Not cancellable: once the work is done, a cancelled caller must not leave the outcome unknown to us.
            await transaction.CommitAsync(CancellationToken.None);
        }
        else
        {
            await transaction.RollbackAsync(CancellationToken.None);
        }

        return result;
    }

    /// <summary>
    /// Runs one write in a transaction shared with the other writes queued meanwhile in its
    /// <paramref name="lane"/>, so that they all commit with one fsync (group commit), and sends the
    /// group's statements together, in one round trip. This is for writes to hot rows: an account's
    /// balance row is locked by every settlement until the commit is flushed, so one transaction each
    /// would cap an account at one such write per fsync. Each lane is one loop of groups on a
    /// connection of its own, and the lanes run side by side: a write that touches no balance row (a
    /// non-terminal move) does not wait behind a group of endings. <paramref name="statement"/> must
    /// change nothing when it does not apply (there is no rollback of one write alone) and must return
    /// a result set (the group reads one per write). <paramref name="read"/> reads its result;
    /// <paramref name="finish"/> may run more statements in the transaction, or queue statements
    /// that return nothing (<see cref="GroupScope.Later"/>, <see cref="GroupScope.LockLate"/>), sent
    /// together with the COMMIT after every write's finish. If anything in a group fails (a write, or
    /// a deadlock with another node's group), nothing is committed and each of its writes runs again
    /// in a transaction of its own, so only the failing one fails.
    /// </summary>
    /// <param name="pair">
    /// Set for one of two writes of one row that are queued one right behind the other (<see cref="WritePair"/>).
    /// </param>
    public async Task<T> WriteGroupedAsync<TRead, T>(
        GroupedLane lane,
        NpgsqlBatchCommand statement,
        Func<NpgsqlDataReader, Task<TRead>> read,
        Func<TRead, GroupScope, Task<T>> finish,
        CancellationToken cancellationToken,
        WritePair? pair = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var item = new GroupedWrite<TRead, T>(statement, read, finish, cancellationToken) { Pair = pair };
        (lane == GroupedLane.Balances ? _balances : _moves).Enqueue(item);

        // Not cancellable once queued: as with WriteAsync's commit, the caller must learn the outcome.
        return await item.Completion;
    }

    /// <summary>
    /// Runs a claim (an UPDATE … RETURNING over the first due rows of an index) in one round trip, with the planner
    /// told to walk the index in order: no bitmap scan of every match and no sort. Statistics lag behind a growing
    /// backlog (autovacuum analyzes about once a minute), and with an estimate of a few rows PostgreSQL chose to read
    /// the whole backlog and sort it on every claim (5 ms at 10,000 pending). The settings are local to the transaction
    /// (set_config(…, true)), sent in the same batch as the claim: a batch is one implicit transaction, and they end with
    /// it. Not SET LOCAL: outside an explicit transaction block PostgreSQL takes it, but writes a WARNING to its log for
    /// every claim (and sends the client a notice). A claim only writes a lease,
    /// so its commit does not wait for the WAL flush (synchronous_commit = off): if the database server crashed before
    /// the next flush, the lease would be lost and the row claimable again, as when a lease runs out. Every other write
    /// commits durably, and its flush carries the claims committed before it. The fair-share claim sorts the few rows it
    /// found (docs/routing.md), which enable_sort = off prices at ten billion: far past jit_above_cost, so without jit = off
    /// PostgreSQL compiled every claim to machine code first, hundreds of milliseconds each.
    /// </summary>
    /// <param name="prepare">Run first in the same transaction, as a statement of its own (a lock the claim's snapshot must follow).</param>
    public Task<IReadOnlyList<TRow>> ClaimAsync<TRow>(NpgsqlBatchCommand claim, CancellationToken cancellationToken, NpgsqlBatchCommand? prepare = null) =>
        WriteStatementAsync<IReadOnlyList<TRow>>(async c =>
        {
            await using var batch = ClaimBatch(c, claim, prepare);
            await using var reader = await batch.ExecuteReaderAsync(CancellationToken.None);
            await reader.NextResultAsync(CancellationToken.None); // Past the settings' own row.
            if (prepare is not null)
            {
                await reader.NextResultAsync(CancellationToken.None);
            }

            var parse = reader.GetRowParser<TRow>();
            var rows = new List<TRow>();
            while (await reader.ReadAsync(CancellationToken.None))
            {
                rows.Add(parse(reader));
            }

            return rows;
        }, cancellationToken);

    /// <summary><paramref name="claim"/> after the settings of <see cref="ClaimAsync{TRow}"/> (and <paramref name="prepare"/>), as one batch.</summary>
    internal static NpgsqlBatch ClaimBatch(NpgsqlConnection connection, NpgsqlBatchCommand claim, NpgsqlBatchCommand? prepare = null)
    {
        var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand(
                    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true), set_config('synchronous_commit', 'off', true), set_config('jit', 'off', true)"),
            },
        };
        if (prepare is not null)
        {
            batch.BatchCommands.Add(prepare);
        }

        batch.BatchCommands.Add(claim);
        return batch;
    }

    /// <summary>
    /// A lane of statements sent a group at a time (<see cref="PostgresBatchLane{TItem, TResult}"/>): writes, or a read
    /// that many callers make at once; drained when the database closes.
    /// </summary>
    public PostgresBatchLane<TItem, TResult> CreateBatchLane<TItem, TResult>(
        Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> runGroup, Func<TItem, Task<TResult>> runAlone, int maxGroup)
    {
        var lane = new PostgresBatchLane<TItem, TResult>(runGroup, runAlone, maxGroup);
        lock (_batchLanes)
        {
            _batchLanes.Add(lane);
        }

        return lane;
    }

    /// <summary>A lane the database drains before it closes.</summary>
    public interface IBatchLane
    {
        /// <summary>Takes no more writes and waits for the ones queued.</summary>
        Task CompleteAsync();
    }

    private static readonly ConcurrentDictionary<(string Sql, Type Type), PositionalShape> Shapes = new();

    /// <summary>
    /// A batch statement with the public properties of <paramref name="parameters"/> as its
    /// parameters, typed as Dapper would type them (so SQL written for Dapper runs unchanged). The
    /// SQL's <c>@Name</c> placeholders are rewritten to <c>$n</c> once per text and shape: Npgsql sends
    /// positional SQL as it is, while named parameters make it parse and rewrite the text on every
    /// execution (a few percent of the gateway's CPU at a thousand writes a second).
    /// </summary>
    public static NpgsqlBatchCommand Statement(string sql, object parameters)
    {
        var shape = Shapes.GetOrAdd((sql, parameters.GetType()), static key => PositionalShape.For(key.Sql, key.Type));
        var command = new NpgsqlBatchCommand(shape.Sql);
        foreach (var (get, type) in shape.Parameters)
        {
            var parameter = new NpgsqlParameter { Value = get(parameters) ?? DBNull.Value };
            if (type is { } known)
            {
                parameter.NpgsqlDbType = known;
            }

            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>SQL with <c>$n</c> placeholders, and how to read the value of each n from the parameters object.</summary>
    internal sealed class PositionalShape(string sql, (Func<object, object?> Get, NpgsqlDbType? Type)[] parameters)
    {
        public string Sql { get; } = sql;

        public (Func<object, object?> Get, NpgsqlDbType? Type)[] Parameters { get; } = parameters;

        public static PositionalShape For(string sql, Type type)
        {
            var properties = type.GetProperties().ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
            var order = new List<System.Reflection.PropertyInfo>();
            var positions = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            var text = new System.Text.StringBuilder(sql.Length);
            for (var i = 0; i < sql.Length; i++)
            {
                var c = sql[i];
                if (c == '\'')
                {
                    // A literal is copied as it is: an @ inside it is no placeholder.
                    var end = sql.IndexOf('\'', i + 1);
                    end = end < 0 ? sql.Length - 1 : end;
                    text.Append(sql, i, end - i + 1);
                    i = end;
                    continue;
                }

                if (c == '@' && i + 1 < sql.Length && IsNameStart(sql[i + 1]) && (i == 0 || !IsNamePart(sql[i - 1])))
                {
                    var start = i + 1;
                    var end = start;
                    while (end < sql.Length && IsNamePart(sql[end]))
                    {
                        end++;
                    }

                    var name = sql[start..end];
                    if (!positions.TryGetValue(name, out var position))
                    {
                        var property = properties.GetValueOrDefault(name)
                            ?? throw new ArgumentException($"The SQL uses @{name}, which {type.Name} does not have.", nameof(type));
                        order.Add(property);
                        position = order.Count;
                        positions.Add(name, position);
                    }

                    text.Append('$').Append(position.ToString(CultureInfo.InvariantCulture));
                    i = end - 1;
                    continue;
                }

                text.Append(c);
            }

            return new PositionalShape(text.ToString(), [.. order.Select(p =>
                (Getter(p), DbTypeOf(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType)))]);
        }

        /// <summary>A compiled getter: PropertyInfo.GetValue goes through reflection on every call.</summary>
        private static Func<object, object?> Getter(System.Reflection.PropertyInfo property)
        {
            var target = System.Linq.Expressions.Expression.Parameter(typeof(object));
            var value = System.Linq.Expressions.Expression.Property(System.Linq.Expressions.Expression.Convert(target, property.DeclaringType!), property);
            return System.Linq.Expressions.Expression.Lambda<Func<object, object?>>(
                System.Linq.Expressions.Expression.Convert(value, typeof(object)), target).Compile();
        }

        private static bool IsNameStart(char c) => char.IsAsciiLetter(c) || c == '_';

        private static bool IsNamePart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';
    }

    private static NpgsqlDbType? DbTypeOf(Type type) =>
        type == typeof(string) ? NpgsqlDbType.Text
        : type == typeof(long) ? NpgsqlDbType.Bigint
        : type == typeof(int) ? NpgsqlDbType.Integer
        : type == typeof(bool) ? NpgsqlDbType.Boolean
        : type == typeof(string[]) ? NpgsqlDbType.Array | NpgsqlDbType.Text
        : type == typeof(long[]) || type == typeof(long?[]) ? NpgsqlDbType.Array | NpgsqlDbType.Bigint
        : type == typeof(int[]) || type == typeof(int?[]) ? NpgsqlDbType.Array | NpgsqlDbType.Integer
        : null;

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
                foreach (var item in group)
                {
                    item.Fail(ex);
                }

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
                        foreach (var item in group)
                        {
                            item.Error(ex);
                        }

                        await RollBackOrRunAloneAsync(group, transaction);
                        return;
                    }
                    catch (Exception ex)
                    {
                        // The outcome is unknown: running the writes again could apply them twice, so each caller hears of it.
                        foreach (var item in group)
                        {
                            item.Fail(ex);
                        }

                        return;
                    }

                    foreach (var item in group)
                    {
                        item.Complete();
                    }

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

    /// <summary>
    /// Sends <paramref name="messages"/> on <see cref="Channel"/> in one statement of its own (see
    /// <see cref="PostgresNotifier"/>). The statement writes no data, so its commit need not wait for a
    /// flush: synchronous_commit is turned off for it alone, which loses nothing and keeps it from
    /// holding PostgreSQL's notify lock through an fsync. Every data write still commits durably.
    /// </summary>
    internal async Task NotifyAsync(IReadOnlyList<string> messages, CancellationToken cancellationToken)
    {
        if (messages.Count == 0)
        {
            return;
        }

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var batch = new NpgsqlBatch(connection, transaction))
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL synchronous_commit = off"));
            var notify = new NpgsqlBatchCommand("SELECT pg_notify($1, m) FROM unnest($2::text[]) AS m");
            notify.Parameters.Add(new NpgsqlParameter { Value = Channel });
            notify.Parameters.Add(new NpgsqlParameter { Value = messages.ToArray() });
            batch.BatchCommands.Add(notify);
            await batch.ExecuteNonQueryAsync(cancellationToken);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// A connection of its own, outside the pool, for LISTEN: a pooled connection would be reset
    /// (and its LISTEN dropped) when returned, and would hold a pool slot forever.
    /// </summary>
    public async Task<NpgsqlConnection> OpenListenerAsync(CancellationToken cancellationToken)
    {
        var builder = new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false, KeepAlive = 15 };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Applies the embedded migrations not yet recorded, all in one transaction under a
    /// transaction-scoped advisory lock: nodes starting together wait for the first, then find
    /// everything applied. DDL is transactional in PostgreSQL, so a failure leaves nothing half done.
    /// </summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync("SELECT pg_advisory_xact_lock(@MigrationLockKey)", new { MigrationLockKey }, transaction);
        await connection.ExecuteAsync(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
            transaction: transaction);
        var applied = (await connection.QueryAsync<long>("SELECT version FROM schema_migrations", transaction: transaction)).ToHashSet();
        foreach (var (version, name, sql) in LoadMigrations())
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await connection.ExecuteAsync(sql, transaction: transaction);
            await connection.ExecuteAsync(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@version, @name, now())",
                new { version, name },
                transaction);
        }

        await transaction.CommitAsync(cancellationToken);
    }

    private static IEnumerable<(long Version, string Name, string Sql)> LoadMigrations()
    {
        var assembly = Assembly.GetExecutingAssembly();
        const string Prefix = "ModelRoute.Server.Storage.Postgres.Migrations.";
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(Prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource[Prefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (long.Parse(name[..name.IndexOf('_', StringComparison.Ordinal)], CultureInfo.InvariantCulture), name, reader.ReadToEnd());
        }
    }

    private IEnumerable<Task> DrainLanes()
    {
        lock (_batchLanes)
        {
            return [_balances.CompleteAsync(), _moves.CompleteAsync(), .. _batchLanes.Select(l => l.CompleteAsync())];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(DrainLanes());

        await _dataSource.DisposeAsync();
    }

    public void Dispose()
    {
        Task.WhenAll(DrainLanes()).GetAwaiter().GetResult();
        _dataSource.Dispose();
    }
}

/// <summary>
/// One of two writes of one row queued in one lane one right behind the other, where the second is known to apply
/// only after the first (an attempt's start, and its outcome queued before the start committed). When both go in one
/// group (and no other write between them), the leader's <see cref="Fuse"/> makes one statement for both (one new
/// version of the row instead of two) and both read its result; otherwise each is sent as it is. Each half's finish
/// asks <see cref="Partner"/> which way it went.
/// </summary>
/// <param name="key">The row's key: a follower joins the leader with the same key in its group.</param>
/// <param name="leads">The first of the two.</param>
/// <param name="state">What the leader's <paramref name="fuse"/> needs of this write.</param>
/// <param name="fuse">The leader's: the statement for both, given the leader's and the follower's <paramref name="state"/>.</param>
public sealed class WritePair(string key, bool leads, object state, Func<object, object, NpgsqlBatchCommand>? fuse = null)
{
    public string Key => key;

    public bool Leads => leads;

    public object State => state;

    public Func<object, object, NpgsqlBatchCommand>? Fuse => fuse;

    /// <summary>The other half, while both are in the group being written (set by the lane for each group).</summary>
    public WritePair? Partner { get; internal set; }
}

/// <summary>Which group-commit loop a grouped write joins (see <see cref="PostgresDatabase.WriteGroupedAsync{TRead, T}(GroupedLane, NpgsqlBatchCommand, Func{NpgsqlDataReader, Task{TRead}}, Func{TRead, PostgresDatabase.GroupScope, Task{T}}, CancellationToken, WritePair)"/>).</summary>
public enum GroupedLane
{
    /// <summary>Writes that lock an account's balance row: endings (they settle holds; submissions have a lane of their own).</summary>
    Balances,

    /// <summary>Writes that touch no balance row: moves between non-terminal states.</summary>
    Moves,
}
