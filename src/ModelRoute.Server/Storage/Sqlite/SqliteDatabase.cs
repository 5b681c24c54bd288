using System.Data;
using System.Diagnostics;
using System.Threading.Channels;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// One SQLite file in WAL mode. SQLite has a single writer, so every write goes to one writer
/// loop on its own connection, which commits them in groups: the writes waiting when a commit
/// starts share the next transaction and its one fsync. A write that rolls back (or throws) leaves
/// the others in: one that had changed nothing yet needs no undoing, and for one that had, the
/// group runs again with a savepoint around each write. A write's caller hears back only
/// after the group's commit is on disk, so an answer still means durable. Readers run beside
/// the writer on pooled connections of their own.
/// </summary>
public sealed class SqliteDatabase : IStoreMigrations, IDisposable
{
    /// <summary>A group stops taking writes at this many, or once its writes have run this long, to bound the wait of the first.</summary>
    private const int MaxGroupSize = 512;
    private static readonly TimeSpan MaxGroupWork = TimeSpan.FromMilliseconds(8);

    private readonly Channel<PendingWrite> _background = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });

    // Writes a client is waiting on (submissions) go ahead of background work in each group, up to
    // this share of it, so that a burst is taken at once and durably while dispatch catches up later,
    // and background work still gets the rest of every group.
    private readonly Channel<PendingWrite> _urgent = Channel.CreateUnbounded<PendingWrite>(new UnboundedChannelOptions { SingleReader = true });
    private const int MaxUrgentPerGroup = MaxGroupSize * 3 / 4;

    // The writer's pending waits on each queue, kept between idle spells (see WaitForWrites).
    private Task<bool>? _urgentWait;
    private Task<bool>? _backgroundWait;
    private readonly string _connectionString;
    private readonly Lock _startLock = new();
    private Thread? _writer;
    private Task<bool> _checkpoint = Task.FromResult(false);
    private int _groupsSinceCheckpoint;
    private int _catchUpTries; // Left in this round: after the checkpoint beside the writer, while readers hold the WAL.

    private const int WriterBusyTimeoutMs = 30_000;

    // How long the writer waits, at most, for readers still on a snapshot from before the catch-up, and how many
    // groups in a row it tries (readers can outlast a wait) before it leaves the WAL to the next round.
    private const int CatchUpWaitMs = 5;
    private const int MaxCatchUpTries = 4;

    /// <summary>The writer catches up (see CatchUp) once the WAL holds this many frames (4 KiB pages): 64 MiB.</summary>
    public const int DefaultCatchUpAfterFrames = 16_384;
    private readonly int _catchUpAfterFrames;

    /// <summary>How many commits the writer makes before it asks for a checkpoint beside it.</summary>
    private const int GroupsPerCheckpoint = 64;

    static SqliteDatabase()
    {
        SQLitePCL.Batteries_V2.Init();
        // SQLite counts every allocation under a process-wide mutex to report its memory use, which nothing here reads.
        // It takes settings only before its first connection; a process that opened one already keeps the defaults.
        _ = SQLitePCL.raw.sqlite3_config(SQLitePCL.raw.SQLITE_CONFIG_MEMSTATUS, 0);
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    /// <param name="catchUpAfterFrames">How long the WAL may grow under steady writes before the writer stops for a moment to start it over.</param>
    public SqliteDatabase(string connectionString, int catchUpAfterFrames = DefaultCatchUpAfterFrames)
    {
        _catchUpAfterFrames = catchUpAfterFrames;
        var builder = new SqliteConnectionStringBuilder(connectionString)
        {
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        };
        if (Path.GetDirectoryName(Path.GetFullPath(builder.DataSource)) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }

        _connectionString = builder.ToString();

        // Microsoft.Data.Sqlite's async calls run synchronously, so every read holds a thread-pool
        // thread while it runs. With the pool's default floor (one thread per core) a burst of reads
        // waits for the pool to grow, which it does slowly; a higher floor lets them run at once.
        ThreadPool.GetMinThreads(out var workers, out var completionPorts);
        if (workers < MinPoolThreads)
        {
            ThreadPool.SetMinThreads(MinPoolThreads, completionPorts);
        }
    }

    private const int MinPoolThreads = 32;

    /// <summary>Opens a pooled connection for reading. Writes go through <see cref="WriteAsync{T}"/>.</summary>
    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    public async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await read(connection);
    }

    /// <summary>
    /// Runs <paramref name="write"/> on the writer's connection inside the current group's
    /// transaction; its changes are kept unless it throws or asks to roll back. Completes once
    /// the group is committed (synced to disk), with the write's result or its exception.
    /// <paramref name="write"/> may run twice (when another write of its group has to be undone alone), so it changes
    /// nothing but the database, and it should refuse before it changes anything: a write that changes rows and then
    /// rolls back costs its whole group a second run.
    /// </summary>
    /// <param name="urgent">A client is waiting on it: it goes ahead of background writes.</param>
    public Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken, bool urgent = false)
    {
        cancellationToken.ThrowIfCancellationRequested();
        EnsureWriter();
        var pending = new PendingWrite<T>(write, cancellationToken);
        if (!(urgent ? _urgent : _background).Writer.TryWrite(pending))
        {
            throw new ObjectDisposedException(nameof(SqliteDatabase));
        }

        return pending.Task;
    }

    private void EnsureWriter()
    {
        if (_writer is not null)
        {
            return;
        }

        lock (_startLock)
        {
            if (_writer is null)
            {
                // A thread of its own: every SQLite call blocks, so on the thread pool the writer would hold
                // one of its few threads (two on a 2-core host) for good and starve request handling.
                _writer = new Thread(WriterLoop) { IsBackground = true, Name = "sqlite-writer" };
                _writer.Start();
            }
        }
    }

    private void WriterLoop()
    {
        WriterThreadPriority.Raise();
        var group = new List<PendingWrite>(MaxGroupSize);
        SqliteConnection? connection = null;
        SqlitePreparedStatements? statements = null;
        try
        {
            while (WaitForWrites())
            {
                group.Clear();
                try
                {
                    if (connection is null)
                    {
                        connection = OpenWriter();
                        statements = SqlitePreparedStatements.Attach(connection);
                    }

                    RunGroup(connection, statements!, group);
                }
                catch (Exception ex)
                {
                    // The commit (or the connection) failed: no write of the group is on disk.
                    foreach (var write in group)
                    {
                        write.Fail(ex);
                    }

                    statements?.Dispose();
                    statements = null;
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            statements?.Dispose();
            connection?.Dispose();
        }
    }

    /// <summary>Blocks the writer's thread until a write is queued; false once both queues are closed and empty.</summary>
    private bool WaitForWrites()
    {
        while (true)
        {
            if (_urgent.Reader.TryPeek(out _) || _background.Reader.TryPeek(out _))
            {
                return true;
            }

            // A wait still pending from last time is kept, so that waits do not pile up on the quiet queue.
            _urgentWait = _urgentWait is { IsCompleted: false } ? _urgentWait : _urgent.Reader.WaitToReadAsync().AsTask();
            _backgroundWait = _backgroundWait is { IsCompleted: false } ? _backgroundWait : _background.Reader.WaitToReadAsync().AsTask();
            Task.WaitAny(_urgentWait, _backgroundWait);
            if (_urgentWait is { IsCompleted: true, Result: false } && _backgroundWait is { IsCompleted: true, Result: false })
            {
                return false;
            }
        }
    }


    private bool TryNext(ref int urgentTaken, out PendingWrite write)
    {
        if (urgentTaken < MaxUrgentPerGroup && _urgent.Reader.TryRead(out write!))
        {
            urgentTaken++;
            return true;
        }

        return _background.Reader.TryRead(out write!) || _urgent.Reader.TryRead(out write!);
    }

    private void RunGroup(SqliteConnection connection, SqlitePreparedStatements statements, List<PendingWrite> group)
    {
        var started = Stopwatch.GetTimestamp();
        var transaction = connection.BeginTransaction(IsolationLevel.Serializable);
        try
        {
            var urgent = 0;
            while (group.Count < MaxGroupSize && Stopwatch.GetElapsedTime(started) < MaxGroupWork && TryNext(ref urgent, out var write))
            {
                if (write.Cancelled)
                {
                    write.Cancel();
                    continue;
                }

                group.Add(write);
                if (!RunWithoutSavepoint(connection, transaction, write))
                {
                    // The write changed rows and then failed or asked to roll back: only a savepoint can take back its
                    // changes alone, so the group starts over with one around each write, and takes no more writes.
                    transaction.Rollback();
                    transaction.Dispose();
                    transaction = connection.BeginTransaction(IsolationLevel.Serializable);
                    Interlocked.Increment(ref _groupsRunAgain);
                    foreach (var again in group)
                    {
                        RunInSavepoint(connection, statements, transaction, again);
                    }

                    break;
                }
            }

            transaction.Commit();
        }
        finally
        {
            transaction.Dispose();
        }

        foreach (var write in group)
        {
            write.Complete();
        }

        if (_catchUpTries > 0 && _checkpoint.IsCompleted)
        {
            _catchUpTries = _checkpoint.Result && !CatchUp(connection) ? _catchUpTries - 1 : 0;
        }
        else if (++_groupsSinceCheckpoint >= GroupsPerCheckpoint && _checkpoint.IsCompleted)
        {
            _groupsSinceCheckpoint = 0;
            _catchUpTries = MaxCatchUpTries;
            _checkpoint = Task.Run(CheckpointAsync);
        }
    }

    /// <summary>
    /// Runs a write straight in the group's transaction, without a savepoint of its own: a savepoint makes SQLite copy every
    /// page the write changes into its sub-journal first, which was about a sixth of the writer's time. True when the
    /// write's outcome stands as run: it kept its changes, or it failed or rolled back having changed nothing. False
    /// when it changed rows and then failed or asked to roll back. The stores' writes refuse before they change
    /// anything (a replayed key, too little money), so that takes a bug or a broken constraint after a first statement.
    /// </summary>
    private static bool RunWithoutSavepoint(SqliteConnection connection, SqliteTransaction transaction, PendingWrite write)
    {
        var db = connection.Handle!;
        var before = SQLitePCL.raw.sqlite3_total_changes(db);
        try
        {
            // SQLite's async calls complete synchronously; a write that truly awaits holds the writer, as it must.
            if (write.RunAsync(connection, transaction).GetAwaiter().GetResult())
            {
                return true;
            }
        }
        catch (Exception ex)
        {
            write.Failed = ex;
        }

        if (SQLitePCL.raw.sqlite3_get_autocommit(db) != 0)
        {
            // SQLite rolled the whole transaction back (an I/O error, a full disk): the group is lost, as with a failed commit.
            if (write.Failed is { } failed)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failed);
            }

            throw new InvalidOperationException("The group's transaction ended inside a write.");
        }

        return SQLitePCL.raw.sqlite3_total_changes(db) == before;
    }

    /// <summary>Runs a write in a savepoint of its own, so that its changes go if it throws or asks to roll back, and the group's others stay.</summary>
    private static void RunInSavepoint(SqliteConnection connection, SqlitePreparedStatements statements, SqliteTransaction transaction, PendingWrite write)
    {
        write.Failed = null;
        statements.Execute("SAVEPOINT w", transaction);
        try
        {
            if (!write.RunAsync(connection, transaction).GetAwaiter().GetResult())
            {
                statements.Execute("ROLLBACK TO w", transaction);
            }
        }
        catch (Exception ex)
        {
            statements.Execute("ROLLBACK TO w", transaction);
            write.Failed = ex;
        }

        statements.Execute("RELEASE w", transaction);
    }

    private long _groupsRunAgain;

    /// <summary>How many groups were run again with a savepoint around each write (see <see cref="RunWithoutSavepoint"/>).</summary>
    internal long GroupsRunAgain => Interlocked.Read(ref _groupsRunAgain);

    /// <summary>
    /// Once the WAL is long, after a checkpoint beside the writer: copies back what the writer wrote while it ran (a
    /// few groups) and waits a moment for readers still on an older snapshot (RESTART), so that the whole WAL is
    /// copied and unread when the next group begins; SQLite then writes the WAL over from its start. Under steady
    /// writes there was never such a moment (the next group always began before the checkpoint ended), so the WAL
    /// grew by every commit, 1.5 GB after a minute at 2,000 submissions a second. It stops the writer for the copy
    /// and its fsync, 2–15 ms measured, hence only once the WAL is long. A reader that outlasts the wait means a
    /// try after the next group; after a few, the WAL is left to grow until the next round.
    /// </summary>
    /// <returns>True when the WAL is all copied and unread: the next group starts it over.</returns>
    private static bool CatchUp(SqliteConnection connection)
    {
        try
        {
            connection.Execute($"PRAGMA busy_timeout = {CatchUpWaitMs}");
            return connection.QuerySingle<(long Busy, long Log, long Copied)>("PRAGMA wal_checkpoint(RESTART)").Busy == 0;
        }
        catch (SqliteException)
        {
            return false; // Failing: the next try, or the next round, goes again.
        }
        finally
        {
            connection.Execute($"PRAGMA busy_timeout = {WriterBusyTimeoutMs}");
        }
    }

    /// <summary>
    /// Copies the WAL back into the database file on a connection of its own. The writer turns
    /// SQLite's automatic checkpoint off because it would run inside a commit, on the writer's
    /// thread, with an fsync of the database file: every caller in that group would wait for it.
    /// PASSIVE never blocks the writer; what it cannot copy now is copied next time. True when the
    /// WAL has grown long enough for the writer to catch up.
    /// </summary>
    private async Task<bool> CheckpointAsync()
    {
        try
        {
            await using var connection = await OpenAsync(CancellationToken.None);
            await connection.ExecuteAsync("PRAGMA busy_timeout = 1000");
            var (_, log, _) = await connection.QuerySingleAsync<(long Busy, long Log, long Copied)>("PRAGMA wal_checkpoint(PASSIVE)");
            return log >= _catchUpAfterFrames;
        }
        catch (SqliteException)
        {
            // Busy or failing: the WAL only grows until the next try.
            return false;
        }
    }

    private SqliteConnection OpenWriter()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        // Durability first: a 202 means the execution is on disk, so every commit is synced. A WAL that grew in a burst
        // is cut back to the catch-up's length when it starts over (journal_size_limit), so the disk gets the space back.
        connection.Execute($"PRAGMA synchronous = FULL; PRAGMA busy_timeout = {WriterBusyTimeoutMs}; PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = {_catchUpAfterFrames * 4096L};");
        return connection;
    }

    /// <summary>Applies the embedded migrations not yet recorded, each in its own transaction.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await connection.ExecuteAsync("PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL;");
        await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);");
        var applied = (await connection.QueryAsync<long>("SELECT version FROM schema_migrations")).ToHashSet();
        foreach (var (version, name, sql) in EmbeddedMigrations.Load("Sqlite"))
        {
            if (applied.Contains(version))
            {
                continue;
            }

            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken);
            await connection.ExecuteAsync(sql, transaction: transaction);
            await connection.ExecuteAsync(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@version, @name, datetime('now'))",
                new { version, name },
                transaction);
            await transaction.CommitAsync(cancellationToken);
        }
    }

    /// <summary>Stops taking writes; those already queued are still committed.</summary>
    public void Dispose()
    {
        _background.Writer.TryComplete();
        _urgent.Writer.TryComplete();
        _writer?.Join();
        _checkpoint.GetAwaiter().GetResult();
    }

    private abstract class PendingWrite
    {
        public Exception? Failed { get; set; }

        public abstract bool Cancelled { get; }

        /// <summary>Runs the write; false when it asked to roll back.</summary>
        public abstract Task<bool> RunAsync(SqliteConnection connection, SqliteTransaction transaction);

        /// <summary>After the commit: hands the caller its result, or the exception its own write threw.</summary>
        public abstract void Complete();

        public abstract void Fail(Exception exception);

        public abstract void Cancel();
    }

    private sealed class PendingWrite<T>(Func<SqliteConnection, SqliteTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken) : PendingWrite
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Task => _completion.Task;

        public override bool Cancelled => cancellationToken.IsCancellationRequested;

        public override async Task<bool> RunAsync(SqliteConnection connection, SqliteTransaction transaction)
        {
            var (result, commit) = await write(connection, transaction);
            _result = result;
            return commit;
        }

        public override void Complete()
        {
            if (Failed is { } exception)
            {
                _completion.TrySetException(exception);
            }
            else
            {
                _completion.TrySetResult(_result);
            }
        }

        public override void Fail(Exception exception) => _completion.TrySetException(exception);

        public override void Cancel() => _completion.TrySetCanceled(cancellationToken);
    }
}
