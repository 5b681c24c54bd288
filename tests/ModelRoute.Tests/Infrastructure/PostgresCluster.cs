using Npgsql;
using static ModelRoute.Tests.Infrastructure.PostgresProcess;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// A throwaway PostgreSQL 15 cluster for the test run: initdb and pg_ctl as the postgres user,
/// on a private port and socket directory, removed when the test process exits or is ended. Each test class
/// gets a database of its own. There is no skipping: a machine without PostgreSQL fails these tests.
/// </summary>
public sealed class PostgresCluster
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static PostgresCluster? _shared;

    private readonly string _directory;
    private readonly string _bin;

    private PostgresCluster(string directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <summary>The cluster of this test process, started on first use.</summary>
    public static async Task<PostgresCluster> SharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_shared is null)
            {
                _shared = await StartAsync();
                AppDomain.CurrentDomain.ProcessExit += (_, _) => _shared.Stop();
            }

            return _shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    public string ConnectionString(string database) =>
        $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Maximum Pool Size=50;Timeout=30;Command Timeout=60";

    /// <summary>A new, empty database; its name.</summary>
    public async Task<string> CreateDatabaseAsync(string purpose)
    {
        var name = $"{purpose}_{Guid.NewGuid():N}"[..Math.Min(60, purpose.Length + 33)].ToLowerInvariant();
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    /// <summary>Runs <paramref name="test"/> on a connection to a new database with the gateway's schema, dropped afterwards.</summary>
    public async Task WithMigratedDatabaseAsync(string purpose, Func<NpgsqlConnection, Task> test)
    {
        var name = await CreateDatabaseAsync(purpose);
        try
        {
            await using (var database = new ModelRoute.Server.Storage.Postgres.PostgresDatabase(ConnectionString(name)))
            {
                await database.MigrateAsync(CancellationToken.None);
            }

            await using var connection = new NpgsqlConnection(ConnectionString(name));
            await connection.OpenAsync();
            await test(connection);
        }
        finally
        {
            await DropDatabaseAsync(name);
        }
    }

    public async Task DropDatabaseAsync(string name)
    {
        NpgsqlConnection.ClearAllPools();
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// A cluster of the calling test's own, for a test that stops and starts the server (a store outage) without
    /// disturbing the tests sharing <see cref="SharedAsync"/>. Stopped and removed by <see cref="Dispose"/>.
    /// </summary>
    public static async Task<PostgresCluster> StartPrivateAsync()
    {
        // One start at a time: a start clears stale folders, and must not take another start's new one for stale.
        await Gate.WaitAsync();
        try
        {
            return await StartAsync();
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Stops the server (fast shutdown: sessions are ended, as in an operator's restart); its data stays.</summary>
    public Task StopServerAsync() => AsPostgresAsync(_bin, $"pg_ctl -D {_directory}/data -m fast -w -t 60 stop");

    /// <summary>Starts the server again after <see cref="StopServerAsync"/>, on the same port.</summary>
    public Task StartServerAsync() => StartServerAsync(_bin, _directory, Port);

    /// <summary>Stops a private cluster and removes its folder.</summary>
    public void Dispose() => Stop();

    private static async Task<PostgresCluster> StartAsync()
    {
        var bin = FindBin();
        RemoveStaleClusters();
        var directory = Path.Combine(Path.GetTempPath(), $"modelroute-pg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var port = GatewayProcess.FreePort();
        await OwnAsync(directory);

        await AsPostgresAsync(bin, $"initdb -D {directory}/data -A trust -U postgres -E UTF8 --no-sync");
        await StartServerAsync(bin, directory, port);
        await StartWatchdogAsync(bin, directory);
        return new PostgresCluster(directory, bin, port);
    }

    // Durability of the database server is not under test here; speed is welcome.
    private static Task StartServerAsync(string bin, string directory, int port) =>
        AsPostgresAsync(bin, $"pg_ctl -D {directory}/data -l {directory}/log -w -t 60 -o \"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300\" start");

    private void Stop()
    {
        try
        {
            AsPostgresAsync(_bin, $"pg_ctl -D {_directory}/data -m immediate -w stop").GetAwaiter().GetResult();
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }

        TestPaths.TryDelete(_directory);
    }

    /// <summary>
    /// A test host that is ended rather than left to exit (as `dotnet test` ends it after a filtered run) never runs
    /// the exit handler, and its cluster kept running. A watchdog outside the host's process tree (detached with
    /// setsid, so that ending the tree does not end it) stops the cluster and removes its folder once the host is gone.
    /// </summary>
    private static Task StartWatchdogAsync(string bin, string directory)
    {
        var stop = $"{bin}/pg_ctl -D {directory}/data -m immediate -w stop";
        var script = $"while kill -0 {Environment.ProcessId} 2>/dev/null; do sleep 1; done; {(IsRoot ? $"su postgres -c '{stop}'" : stop)}; rm -rf {directory}";
        return RunAsync("bash", ["-c", $"setsid bash -c \"{script}\" </dev/null >/dev/null 2>&1 &"]);
    }

    /// <summary>A test process killed before its exit handler ran leaves its folder; a server no longer running means it can go.</summary>
    private static void RemoveStaleClusters()
    {
        foreach (var stale in Directory.GetDirectories(Path.GetTempPath(), "modelroute-pg-*"))
        {
            var pidFile = Path.Combine(stale, "data", "postmaster.pid");
            // A folder this young may be another test process's cluster still starting (no postmaster.pid yet).
            var young = DateTime.UtcNow - Directory.GetCreationTimeUtc(stale) < TimeSpan.FromMinutes(5);
            var running = young || File.Exists(pidFile)
                && int.TryParse(File.ReadLines(pidFile).FirstOrDefault(), out var pid)
                && Directory.Exists($"/proc/{pid}");
            if (!running)
            {
                TestPaths.TryDelete(stale);
            }
        }
    }
}
