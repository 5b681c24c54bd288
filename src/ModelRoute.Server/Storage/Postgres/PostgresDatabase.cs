using System.Data;
using System.Globalization;
using System.Reflection;
using Dapper;
using Npgsql;

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
    private readonly System.Threading.Channels.Channel<GroupedWrite> _grouped = System.Threading.Channels.Channel.CreateUnbounded<GroupedWrite>(new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _groupStart = new();
    private Task? _groupLoop;

    static PostgresDatabase() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    public PostgresDatabase(string connectionString)
    {
        _connectionString = connectionString;
        _dataSource = new NpgsqlDataSourceBuilder(WithDefaults(connectionString)).Build();
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
    /// Runs <paramref name="write"/> in a transaction shared with other writes queued meanwhile, so that
    /// they all commit with one fsync (group commit). This is for writes to hot rows: an account's
    /// balance row is locked by every submit and every settlement, and a lock is held until the commit
    /// is flushed, so one transaction each would cap an account at one write per fsync. A write run
    /// here must leave nothing behind when it returns without having changed anything (there is no
    /// rollback of one write alone). If any write of a group throws, the group is rolled back and each
    /// of its writes runs again in a transaction of its own, so only the failing one fails.
    /// </summary>
    public async Task<T> WriteGroupedAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var item = new GroupedWrite<T>(this, write, cancellationToken);
        if (!_grouped.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresDatabase));
        }

        if (_groupLoop is null)
        {
            lock (_groupStart)
            {
                _groupLoop ??= Task.Run(RunGroupsAsync, CancellationToken.None);
            }
        }

        // Not cancellable once queued: as with WriteAsync's commit, the caller must learn the outcome.
        return await item.Completion;
    }

    private async Task RunGroupsAsync()
    {
        var reader = _grouped.Reader;
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

            if (group.Count == 1)
            {
                await group[0].RunAloneAsync();
            }
            else if (group.Count > 1)
            {
                await CommitGroupAsync(group);
            }

            group.Clear();
        }
    }

    private async Task CommitGroupAsync(List<GroupedWrite> group)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(CancellationToken.None);
            await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, CancellationToken.None);
            var failed = false;
            foreach (var item in group)
            {
                if (!await item.TryRunInGroupAsync(connection, transaction))
                {
                    failed = true;
                    break;
                }
            }

            if (!failed)
            {
                try
                {
                    await transaction.CommitAsync(CancellationToken.None);
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

            await transaction.RollbackAsync(CancellationToken.None);
        }
        catch (Exception)
        {
            // Opening, rolling back or the connection failed before any commit: fall through and run each write alone.
        }

        // One write failed or the group met a deadlock with another node's: each write alone, together.
        await Task.WhenAll(group.Select(item => item.RunAloneAsync()));
    }

    private abstract class GroupedWrite
    {
        public abstract bool CancelIfRequested();

        /// <summary>Runs the write in the group's transaction; false if it threw (the group must roll back).</summary>
        public abstract Task<bool> TryRunInGroupAsync(NpgsqlConnection connection, NpgsqlTransaction transaction);

        public abstract void Complete();

        public abstract void Fail(Exception exception);

        public abstract Task RunAloneAsync();
    }

    private sealed class GroupedWrite<T>(PostgresDatabase database, Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> write, CancellationToken cancellationToken) : GroupedWrite
    {
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;

        public Task<T> Completion => _completion.Task;

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);

        public override async Task<bool> TryRunInGroupAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
        {
            try
            {
                _result = await write(connection, transaction);
                return true;
            }
            catch (Exception)
            {
                return false; // Run again alone, where its exception reaches its caller.
            }
        }

        public override void Complete() => _completion.TrySetResult(_result);

        public override void Fail(Exception exception) => _completion.TrySetException(exception);

        public override async Task RunAloneAsync()
        {
            try
            {
                _completion.TrySetResult(await database.WriteAsync(async (c, tx) => (await write(c, tx), true), CancellationToken.None));
            }
            catch (Exception ex)
            {
                _completion.TrySetException(ex);
            }
        }
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

    public async ValueTask DisposeAsync()
    {
        _grouped.Writer.TryComplete();
        if (_groupLoop is { } loop)
        {
            await loop;
        }

        await _dataSource.DisposeAsync();
    }

    public void Dispose()
    {
        _grouped.Writer.TryComplete();
        _groupLoop?.GetAwaiter().GetResult();
        _dataSource.Dispose();
    }
}
