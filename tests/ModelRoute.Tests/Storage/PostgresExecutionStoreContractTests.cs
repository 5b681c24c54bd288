using ModelRoute.Server.Executions;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Tests.Infrastructure;

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
        var executions = new PostgresExecutionStore(_database, _notifier, ids, new ExecutionChanges(new GatewayMetrics()), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time);
        return (executions, new AccountStore(new PostgresDialect(_database, _notifier)));
    }

    /// <summary>
    /// Each start queued right before its outcome meets it in one group unless the lane took the start alone in
    /// between; among many pairs at least one must have been written as one statement.
    /// </summary>
    protected override void AssertPipelinedAttemptsWritten(int attempts) =>
        ((PostgresExecutionStore)Executions).FusedAttempts.ShouldBeInRange(1, attempts);

    protected override Task<IReadOnlyList<(string ExecutionId, string EventId, string EventType, string Payload)>> DeliveriesAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string, string, string)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string, string, string)>(c, DeliveriesSql)],
            CancellationToken.None);

    protected override IExecutionStore CreateNodeStore(TimeProvider time, ModelRoute.Server.Routing.NodeIdentity node, ModelRoute.Server.Routing.DispatchHandoff dispatch) =>
        new PostgresExecutionStore(_database!, _notifier!, new IdGenerator(time), new ExecutionChanges(new GatewayMetrics()),
            Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time, node, dispatch: dispatch);

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
