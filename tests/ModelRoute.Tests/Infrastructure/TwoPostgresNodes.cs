namespace ModelRoute.Tests.Infrastructure;

/// <summary>Two gateway nodes, started, on one fresh database of the test run's PostgreSQL cluster: for what crosses nodes.</summary>
public sealed class TwoPostgresNodes : IAsyncDisposable
{
    private readonly PostgresCluster _cluster;
    private readonly string _database;

    private TwoPostgresNodes(PostgresCluster cluster, string database, GatewayFactory a, GatewayFactory b)
    {
        _cluster = cluster;
        _database = database;
        A = a;
        B = b;
    }

    public GatewayFactory A { get; }

    public GatewayFactory B { get; }

    /// <param name="name">The database's name prefix.</param>
    /// <param name="settings">Configuration both nodes get besides the store's.</param>
    public static async Task<TwoPostgresNodes> StartAsync(string name, IReadOnlyDictionary<string, string?>? settings = null)
    {
        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync(name);
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["ModelRoute:Store:Kind"] = "postgres",
            ["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(database),
        };
        var nodes = new TwoPostgresNodes(cluster, database, new GatewayFactory(all), new GatewayFactory(all));
        nodes.A.StartServer();
        nodes.B.StartServer();
        return nodes;
    }

    public async ValueTask DisposeAsync()
    {
        await A.DisposeAsync();
        await B.DisposeAsync();
        await _cluster.DropDatabaseAsync(_database);
    }
}
