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
    /// <summary>The channel every node LISTENs on; payloads are "&lt;execution id&gt; &lt;STATUS&gt;" or <see cref="WebhooksPayload"/>.</summary>
    public const string Channel = "modelroute";

    /// <summary>A payload that only says new webhook deliveries are due.</summary>
    public const string WebhooksPayload = "webhooks";

    // Any fixed number: the key of the advisory lock that serialises migrations across nodes.
    private const long MigrationLockKey = 0x6d6f64656c726f;

    private readonly NpgsqlDataSource _dataSource;
    private readonly string _connectionString;

    static PostgresDatabase() => DefaultTypeMap.MatchNamesWithUnderscores = true;

    public PostgresDatabase(string connectionString)
    {
        _connectionString = connectionString;
        _dataSource = NpgsqlDataSource.Create(connectionString);
    }

    public async Task<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        return await read(connection);
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

    /// <summary>Tells every node (this one included) on commit; <paramref name="payload"/> is read by <see cref="PostgresNotificationListener"/>.</summary>
    internal static Task NotifyAsync(NpgsqlConnection c, NpgsqlTransaction tx, string payload) =>
        c.ExecuteAsync("SELECT pg_notify(@Channel, @payload)", new { Channel, payload }, tx);

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

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    public void Dispose() => _dataSource.Dispose();
}
