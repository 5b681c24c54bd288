using System.Diagnostics;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace ModelRoute.Bench;

/// <summary>
/// The storage's own limit: single-row durable inserts, one per transaction, into the same kind of database with
/// no gateway. Sequential (one connection) and with a few concurrent writers (a connection each). The sequential run
/// also times each commit: the storage's own latency tail (an fsync that stalls on a shared disk) is a floor under the
/// gateway's p99.
/// </summary>
public static class StorageBaseline
{
    public const int ConcurrentWriters = 4;

    private static readonly string Payload = "{\"model\":\"sim/text\",\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 200) + "\"}]},\"status\":\"PENDING\"}";

    public static async Task<BaselineResult> SqliteAsync(TimeSpan duration)
    {
        SQLitePCL.Batteries_V2.Init();
        var directory = Path.Combine(Path.GetTempPath(), $"modelroute-bench-baseline-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var connectionString = $"Data Source={Path.Combine(directory, "baseline.db")};Pooling=False;Default Timeout=30";
            await using (var setup = new SqliteConnection(connectionString))
            {
                await setup.OpenAsync();
                await ExecAsync(setup, "PRAGMA journal_mode=WAL; CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at INTEGER NOT NULL);");
            }

            async Task<long> Writer(int writer, long until, List<double>? commits)
            {
                await using var connection = new SqliteConnection(connectionString);
                await connection.OpenAsync();
                await ExecAsync(connection, "PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;");
                await using var insert = connection.CreateCommand();
                insert.CommandText = "INSERT INTO t (id, body, created_at) VALUES ($id, $body, $at)";
                var id = insert.Parameters.Add("$id", SqliteType.Text);
                var body = insert.Parameters.Add("$body", SqliteType.Text);
                var at = insert.Parameters.Add("$at", SqliteType.Integer);
                body.Value = Payload;
                long n = 0;
                while (Stopwatch.GetTimestamp() < until)
                {
                    id.Value = $"{writer}-{Guid.NewGuid():N}";
                    at.Value = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                    var started = Stopwatch.GetTimestamp();
                    await insert.ExecuteNonQueryAsync();
                    commits?.Add(LoadGenerator.Ms(Stopwatch.GetTimestamp() - started));
                    n++;
                }

                return n;
            }

            // Synchronous SQLite calls: each writer gets its own thread.
            return await MeasureAsync(duration, (w, until, commits) => Task.Run(() => Writer(w, until, commits)), "SQLite WAL, synchronous=FULL, one INSERT per transaction");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>On a database of its own, <paramref name="database"/>: a repeated bench runs it once per PostgreSQL run on one cluster.</summary>
    public static async Task<BaselineResult> PostgresAsync(PostgresServer server, TimeSpan duration, string database = "baseline")
    {
        await server.CreateDatabaseAsync(database);
        var connectionString = server.ConnectionString(database, 16);
        await using (var setup = new NpgsqlConnection(connectionString))
        {
            await setup.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at BIGINT NOT NULL)", setup);
            await create.ExecuteNonQueryAsync();
        }

        async Task<long> Writer(int writer, long until, List<double>? commits)
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var insert = new NpgsqlCommand("INSERT INTO t (id, body, created_at) VALUES ($1, $2, $3)", connection);
            var id = new NpgsqlParameter<string> { Value = "" };
            var at = new NpgsqlParameter<long>();
            insert.Parameters.Add(id);
            insert.Parameters.Add(new NpgsqlParameter<string> { Value = Payload });
            insert.Parameters.Add(at);
            await insert.PrepareAsync();
            long n = 0;
            while (Stopwatch.GetTimestamp() < until)
            {
                id.TypedValue = $"{writer}-{Guid.NewGuid():N}";
                at.TypedValue = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                var started = Stopwatch.GetTimestamp();
                await insert.ExecuteNonQueryAsync();
                commits?.Add(LoadGenerator.Ms(Stopwatch.GetTimestamp() - started));
                n++;
            }

            return n;
        }

        return await MeasureAsync(duration, Writer, "PostgreSQL, fsync=on, synchronous_commit=on, one INSERT per transaction (autocommit)");
    }

    private static async Task<BaselineResult> MeasureAsync(TimeSpan duration, Func<int, long, List<double>?, Task<long>> writer, string description)
    {
        var commits = new List<double>();
        var sequential = await RateAsync(1, commits);
        var concurrent = await RateAsync(ConcurrentWriters, null);
        return new BaselineResult(description, sequential, ConcurrentWriters, concurrent, commits.Count > 0 ? LatencyStats.From(commits) : null);

        async Task<double> RateAsync(int writers, List<double>? latencies)
        {
            var started = Stopwatch.GetTimestamp();
            var until = started + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            var counts = await Task.WhenAll(Enumerable.Range(0, writers).Select(w => writer(w, until, latencies)));
            var seconds = LoadGenerator.Ms(Stopwatch.GetTimestamp() - started) / 1000.0;
            return Math.Round(counts.Sum() / seconds, 1);
        }
    }

    private static async Task ExecAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}

/// <param name="SequentialCommit">Each insert's time in the sequential run (one writer, so no concurrency in it).</param>
public sealed record BaselineResult(string Description, double SequentialInsertsPerSecond, int Writers, double ConcurrentInsertsPerSecond, LatencyStats? SequentialCommit);
