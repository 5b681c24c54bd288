using Npgsql;
using static ModelRoute.Tests.Infrastructure.PostgresProcess;

namespace ModelRoute.Bench;

/// <summary>
/// A throwaway PostgreSQL cluster for the run (the approach of the tests' PostgresCluster): initdb and pg_ctl as the
/// postgres user, a private port and socket directory, removed at the end. Unlike the tests' cluster it keeps
/// PostgreSQL's durable defaults (fsync, synchronous_commit, full_page_writes on): durable submits are what is measured.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly string _bin;

    private PostgresServer(string directory, string bin, int port)
    {
        _directory = directory;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    public string Version { get; private set; } = "";

    /// <summary>
    /// Over the cluster's Unix socket, as a gateway on the database's own machine would connect (BENCH_PG_TCP=1: over
    /// loopback TCP instead). Both the gateway and the storage baseline use it.
    /// </summary>
    public string ConnectionString(string database, int maxPool = 100) =>
        $"Host={(Environment.GetEnvironmentVariable("BENCH_PG_TCP") == "1" ? "127.0.0.1" : _directory)};Port={Port};Username=postgres;Database={database};Maximum Pool Size={maxPool};Timeout=30;Command Timeout=60";

    public static async Task<PostgresServer> StartAsync()
    {
        var bin = FindBin();
        var directory = Path.Combine(Path.GetTempPath(), $"modelroute-benchpg-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        var port = GatewayHost.FreePort();
        await OwnAsync(directory);

        await AsPostgresAsync(bin, $"initdb -D {directory}/data -A trust -U postgres -E UTF8 --no-sync");
        await AsPostgresAsync(bin, $"pg_ctl -D {directory}/data -l {directory}/log -w -t 60 -o \"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB{ExtraOptions}\" start");
        var server = new PostgresServer(directory, bin, port);
        await using var connection = new NpgsqlConnection(server.ConnectionString("postgres"));
        await connection.OpenAsync();
        server.Version = connection.PostgreSqlVersion.ToString();
        return server;
    }

    /// <summary>The postmaster's process id (first line of postmaster.pid); its children are the cluster's other processes.</summary>
    public int PostmasterPid() =>
        int.Parse(File.ReadLines(Path.Combine(_directory, "data", "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);

    public async Task<string> CreateDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(ConnectionString("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync();
        return name;
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await AsPostgresAsync(_bin, $"pg_ctl -D {_directory}/data -m immediate -w stop");
        }
        catch (InvalidOperationException)
        {
            // Already stopped.
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }

    // For profiling: more server settings, e.g. BENCH_PG_OPTIONS="-c log_min_duration_statement=5".
    private static string ExtraOptions => Environment.GetEnvironmentVariable("BENCH_PG_OPTIONS") is { Length: > 0 } extra ? " " + extra : "";
}
