using System.Data;
using Dapper;
using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// A PostgreSQL database shared by any number of gateway nodes. Writes run in READ COMMITTED
/// transactions: every state move is a conditional UPDATE (re-checked by PostgreSQL against the
/// row's latest version) or takes row locks, so no stronger isolation is needed.
/// </summary>
public sealed partial class PostgresDatabase : IStoreMigrations, IAsyncDisposable, IDisposable
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
        foreach (var (version, name, sql) in EmbeddedMigrations.Load("Postgres"))
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
