using System.Data;
using System.Reflection;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// One SQLite file in WAL mode. SQLite has a single writer, so writes queue on an in-process
/// gate instead of spinning on SQLITE_BUSY; readers run beside them on their own connections.
/// </summary>
public sealed class SqliteDatabase : IStoreMigrations, IDisposable
{
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private readonly string _connectionString;

    static SqliteDatabase()
    {
        SQLitePCL.Batteries_V2.Init();
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    public SqliteDatabase(string connectionString)
    {
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
    }

    public async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // Durability first: a 202 means the execution is on disk, so every commit is synced.
        await connection.ExecuteAsync("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 30000;");
        return connection;
    }

    public async Task<T> ReadAsync<T>(Func<SqliteConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        return await read(connection);
    }

    /// <summary>Runs <paramref name="write"/> in one IMMEDIATE transaction; it commits unless it throws or asks to roll back.</summary>
    public async Task<T> WriteAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await OpenAsync(CancellationToken.None);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(IsolationLevel.Serializable, CancellationToken.None);
            var (result, commit) = await write(connection, transaction);
            if (commit)
            {
                await transaction.CommitAsync(CancellationToken.None);
            }
            else
            {
                await transaction.RollbackAsync(CancellationToken.None);
            }

            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    /// <summary>Applies the embedded migrations not yet recorded, each in its own transaction.</summary>
    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await connection.ExecuteAsync("PRAGMA journal_mode = WAL;");
        await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);");
        var applied = (await connection.QueryAsync<long>("SELECT version FROM schema_migrations")).ToHashSet();
        foreach (var (version, name, sql) in LoadMigrations())
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

    private static IEnumerable<(long Version, string Name, string Sql)> LoadMigrations()
    {
        var assembly = Assembly.GetExecutingAssembly();
        const string Prefix = "ModelRoute.Server.Storage.Sqlite.Migrations.";
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(Prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource[Prefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (long.Parse(name[..name.IndexOf('_', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture), name, reader.ReadToEnd());
        }
    }

    public void Dispose() => _writeGate.Dispose();
}
