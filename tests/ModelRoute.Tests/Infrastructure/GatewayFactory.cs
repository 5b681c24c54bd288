using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using ModelRoute.Server.Providers.Simulator;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// The real gateway on a real loopback socket (Kestrel), with its own SQLite file in a fresh
/// directory and the background workers tuned to test speed.
/// </summary>
public sealed class GatewayFactory : WebApplicationFactory<Program>
{
    public const string AdminKey = "test-admin-key-0123456789abcdefghij";

    private readonly Dictionary<string, string?> _settings;
    private readonly Action<IServiceCollection>? _services;

    /// <param name="settings">Configuration on top of the test defaults.</param>
    /// <param name="services">Replaces services after the gateway's own registrations (e.g. a fake DNS resolver).</param>
    public GatewayFactory(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null)
    {
        _services = services;
        DataDirectory = TestPaths.NewTempDirectory("gateway");
        _settings = TestGatewaySettings.Defaults(AdminKey, DataDirectory);
        if (TestStore.IsPostgres && settings?.ContainsKey("ModelRoute:Store:ConnectionString") != true)
        {
            // The same tests on PostgreSQL: a database of this gateway's own on the run's cluster.
            var cluster = PostgresCluster.SharedAsync().GetAwaiter().GetResult();
            _database = cluster.CreateDatabaseAsync("gateway").GetAwaiter().GetResult();
            _settings["ModelRoute:Store:Kind"] = "postgres";
            _settings["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(_database);
        }

        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }

        UseKestrel(0);
    }

    private readonly string? _database;

    public string DataDirectory { get; }

    /// <summary>Everything the gateway logged, at every level.</summary>
    public CapturedLogs Logs { get; } = new();

    /// <summary>Every simulator callback the gateway sent to itself, with the status it was answered.</summary>
    public ConcurrentQueue<(Uri Url, int Status, string Body)> SimulatorCallbacks { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        builder.ConfigureLogging(logging => logging.AddProvider(Logs).SetMinimumLevel(Microsoft.Extensions.Logging.LogLevel.Trace));
        builder.ConfigureServices(services =>
            services.AddHttpClient(nameof(SimulatorAdapter)).AddHttpMessageHandler(() => new RecordingHandler(SimulatorCallbacks)));
        if (_services is not null)
        {
            builder.ConfigureTestServices(_services);
        }
    }

    /// <summary>A connection to the gateway's own store (SQLite or PostgreSQL), for checks straight at the rows.</summary>
    public System.Data.Common.DbConnection OpenStoreConnection() =>
        _settings.TryGetValue("ModelRoute:Store:Kind", out var kind) && kind == "postgres"
            ? new Npgsql.NpgsqlConnection(_settings["ModelRoute:Store:ConnectionString"])
            : new Microsoft.Data.Sqlite.SqliteConnection(
                _settings.TryGetValue("ModelRoute:Store:ConnectionString", out var sqlite) && sqlite is not null
                    ? sqlite
                    : $"Data Source={Path.Combine(_settings["ModelRoute:DataDirectory"]!, "modelroute.db")}");

    public HttpClient Anonymous()
    {
        StartServer();
        return CreateClient();
    }

    public HttpClient Admin() => WithBearer(AdminKey);

    public HttpClient WithBearer(string token)
    {
        var client = Anonymous();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Creates an account through the admin API, gives it a key and credits it.</summary>
    public async Task<TestAccount> CreateAccountAsync(string creditUsd = "10.00")
    {
        using var admin = Admin();
        var account = await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"test"}""");
        account.Status.ShouldBe(201);
        var id = account.Json.GetProperty("id").GetString()!;
        var key = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/api-keys", "{}");
        key.Status.ShouldBe(201);
        if (creditUsd != "0")
        {
            var credit = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":"{{creditUsd}}","reference":"setup"}""");
            credit.Status.ShouldBe(201);
        }

        return new TestAccount(id, key.Json.GetProperty("key").GetString()!, WithBearer(key.Json.GetProperty("key").GetString()!));
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        TestPaths.TryDelete(DataDirectory);
        if (_database is not null)
        {
            await (await PostgresCluster.SharedAsync()).DropDatabaseAsync(_database);
        }
    }

    private sealed class RecordingHandler(ConcurrentQueue<(Uri, int, string)> log) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            log.Enqueue((request.RequestUri!, (int)response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken)));
            return response;
        }
    }
}

public sealed record TestAccount(string Id, string Key, HttpClient Client) : IDisposable
{
    public void Dispose() => Client.Dispose();
}
