using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Server.Storage.Sqlite;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The migrations that rekey execution_events and ledger_entries (dropping indexes no query used) keep every row of a
/// database made by the migrations before them, and events keep numbering on from the last one.
/// </summary>
public sealed class LeanIndexesMigrationTests : IDisposable
{
    private const string Rows =
        """
        INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at) VALUES
            ('evt_1', 'exe_1', 'acct_1', 'execution.created', 'PENDING', 1),
            ('evt_2', 'exe_1', 'acct_1', 'execution.started', 'PROCESSING', 2),
            ('evt_3', 'exe_2', 'acct_1', 'execution.created', 'PENDING', 3);
        INSERT INTO ledger_entries (id, account_id, execution_id, kind, amount_micros, balance_micros, held_micros, reference, created_at) VALUES
            ('led_1', 'acct_1', NULL, 'credit', 500, 500, 0, 'topup-1', 1),
            ('led_2', 'acct_1', 'exe_1', 'hold', 100, 500, 100, NULL, 2),
            ('led_3', 'acct_2', NULL, 'credit', 7, 7, 0, 'topup-1', 3);
        """;

    private readonly string _directory = TestPaths.NewTempDirectory("lean-indexes");

    [Fact]
    public async Task SQLite_keeps_every_event_and_ledger_entry_and_numbers_new_events_after_the_last()
    {
        var path = Path.Combine(_directory, "upgrade.db");
        await using (var connection = new SqliteConnection($"Data Source={path}"))
        {
            await connection.OpenAsync();
            await connection.ExecuteAsync("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)");
            foreach (var (version, name, sql) in Migrations(typeof(SqliteDatabase), "Sqlite").Where(m => m.Version < 5))
            {
                await connection.ExecuteAsync(sql);
                await connection.ExecuteAsync("INSERT INTO schema_migrations VALUES (@version, @name, 'then')", new { version, name });
            }

            await connection.ExecuteAsync(Rows);
        }

        using var db = new SqliteDatabase($"Data Source={path}");
        await db.MigrateAsync(CancellationToken.None);

        await using var c = await db.OpenAsync(CancellationToken.None);
        await AssertKeptAsync<SqliteException>(c);
        (await c.QueryAsync<string>("SELECT name FROM sqlite_master WHERE tbl_name IN ('execution_events', 'ledger_entries') AND type = 'index' AND sql IS NOT NULL ORDER BY name"))
            .ShouldBe(["ix_events_account", "ix_events_execution", "ux_ledger_credit_reference"]); // ix_events_account: the account feed's
    }

    [Fact]
    public async Task PostgreSQL_keeps_every_event_and_ledger_entry_and_numbers_new_events_after_the_last()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var name = await cluster.CreateDatabaseAsync("leanindexes");
        try
        {
            await using (var connection = new NpgsqlConnection(cluster.ConnectionString(name)))
            {
                await connection.OpenAsync();
                await connection.ExecuteAsync("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)");
                foreach (var (version, migration, sql) in Migrations(typeof(PostgresDatabase), "Postgres").Where(m => m.Version < 4))
                {
                    await connection.ExecuteAsync(sql);
                    await connection.ExecuteAsync("INSERT INTO schema_migrations VALUES (@version, @migration, now())", new { version, migration });
                }

                await connection.ExecuteAsync(Rows);
            }

            await using (var db = new PostgresDatabase(cluster.ConnectionString(name)))
            {
                await db.MigrateAsync(CancellationToken.None);
            }

            await using var c = new NpgsqlConnection(cluster.ConnectionString(name));
            await c.OpenAsync();
            await AssertKeptAsync<PostgresException>(c);
            (await c.QueryAsync<string>("SELECT indexname FROM pg_indexes WHERE tablename IN ('execution_events', 'ledger_entries') ORDER BY indexname"))
                .ShouldBe(["execution_events_pkey", "ix_events_account", "ledger_entries_pkey", "ux_ledger_credit_reference"]); // ix_events_account: the account feed's
        }
        finally
        {
            await cluster.DropDatabaseAsync(name);
        }
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        TestPaths.TryDelete(_directory);
    }

    /// <summary>
    /// Every row of <see cref="Rows"/> is there; numbering goes on after the last event, and a credit's reference is still
    /// unique within its account (<typeparamref name="TRefused"/>: the store's error).
    /// </summary>
    private static async Task AssertKeptAsync<TRefused>(System.Data.Common.DbConnection c)
        where TRefused : Exception
    {
        (await c.QueryAsync<string>("SELECT id || ':' || seq || ':' || execution_id FROM execution_events ORDER BY seq"))
            .ShouldBe(["evt_1:1:exe_1", "evt_2:2:exe_1", "evt_3:3:exe_2"]);
        (await c.QueryAsync<string>("SELECT id || ':' || account_id || ':' || kind || ':' || amount_micros FROM ledger_entries ORDER BY id"))
            .ShouldBe(["led_1:acct_1:credit:500", "led_2:acct_1:hold:100", "led_3:acct_2:credit:7"]);

        await c.ExecuteAsync("INSERT INTO execution_events (id, execution_id, account_id, type, status, created_at) VALUES ('evt_4', 'exe_2', 'acct_1', 't', 'PROCESSING', 4)");
        (await c.QuerySingleAsync<long>("SELECT seq FROM execution_events WHERE id = 'evt_4'")).ShouldBe(4);
        await Should.ThrowAsync<TRefused>(() => c.ExecuteAsync(
            "INSERT INTO ledger_entries (id, account_id, kind, amount_micros, balance_micros, held_micros, reference, created_at) VALUES ('led_4', 'acct_1', 'credit', 1, 501, 0, 'topup-1', 4)"));
    }

    /// <summary>A store's embedded migrations in order, as its database applies them.</summary>
    private static IEnumerable<(long Version, string Name, string Sql)> Migrations(Type store, string folder)
    {
        var assembly = store.Assembly;
        var prefix = $"ModelRoute.Server.Storage.{folder}.Migrations.";
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource[prefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (long.Parse(name[..name.IndexOf('_', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture), name, reader.ReadToEnd());
        }
    }
}
