using ModelRoute.Server.Webhooks;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Storage.Postgres;

namespace ModelRoute.Tests.Storage;

/// <summary>The contract on PostgreSQL: a fresh database per test on the test run's own cluster, dropped after.</summary>
public sealed class PostgresExecutionStoreContractTests : ExecutionStoreContract
{
    private PostgresCluster? _cluster;
    private string? _databaseName;
    private PostgresDatabase? _database;
    private PostgresNotifier? _notifier;

    protected override async Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time)
    {
        _cluster = await PostgresCluster.SharedAsync();
        _databaseName = await _cluster.CreateDatabaseAsync("contract");
        _database = new PostgresDatabase(_cluster.ConnectionString(_databaseName));
        await _database.MigrateAsync(CancellationToken.None);
        var ids = new IdGenerator(time);
        _notifier = new PostgresNotifier(_database, time, Microsoft.Extensions.Logging.Abstractions.NullLogger<PostgresNotifier>.Instance);
        var executions = Commits(new PostgresExecutionStore(_database, ids, Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time), time, _notifier);
        _usage = new UsageStore(new PostgresDialect(_database));
        return (executions, new AccountStore(new PostgresDialect(_database), _notifier));
    }

    private UsageStore? _usage;

    protected override IWebhookStore CreateWebhookStore() =>
        new WebhookStore(new PostgresDialect(_database!), new PostgresWebhookOutbox(_database!, new IdGenerator(Time)));

    protected override IUsageStore UsageTotals => _usage!;

    protected override async Task RerunUsageMigrationAsync()
    {
        await using (var c = new Npgsql.NpgsqlConnection(_cluster!.ConnectionString(_databaseName!)))
        {
            await Dapper.SqlMapper.ExecuteAsync(c, "DROP TABLE usage_daily; DELETE FROM schema_migrations WHERE version = 9");
        }

        await _database!.MigrateAsync(CancellationToken.None);
    }

    protected override Task<IReadOnlyList<(string ExecutionId, string? TraceParent)>> DeliveryTraceParentsAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string?)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string?)>(c, DeliveryTraceParentsSql)],
            CancellationToken.None);

    protected override Task<IReadOnlyList<(string ExecutionId, string EventId, string EventType, string Payload)>> DeliveriesAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string, string, string)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string, string, string)>(c, DeliveriesSql)],
            CancellationToken.None);

    protected override IExecutionStore CreateNodeStore(
        TimeProvider time, NodeIdentity node, ModelRoute.Server.Routing.DispatchHandoff dispatch, IChangeBroadcast? broadcast = null) =>
        Commits(new PostgresExecutionStore(_database!, new IdGenerator(time), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time),
            time, broadcast ?? _notifier, node, dispatch);

    protected override async Task DisposeStoresAsync()
    {
        if (_database is null)
        {
            return;
        }

        await _notifier!.DisposeAsync();
        await _database.DisposeAsync();
        await _cluster!.DropDatabaseAsync(_databaseName!);
    }
}
