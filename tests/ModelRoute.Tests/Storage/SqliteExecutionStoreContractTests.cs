using ModelRoute.Server.Webhooks;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage.Sqlite;

namespace ModelRoute.Tests.Storage;

/// <summary>The contract on the embedded store: a new SQLite file in its own temporary directory.</summary>
public sealed class SqliteExecutionStoreContractTests : ExecutionStoreContract
{
    private string? _directory;
    private SqliteDatabase? _database;

    protected override async Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time)
    {
        _directory = TestPaths.NewTempDirectory("store-contract");
        _database = new SqliteDatabase($"Data Source={Path.Combine(_directory, "modelroute.db")}");
        await _database.MigrateAsync(CancellationToken.None);
        var ids = new IdGenerator(time);
        var executions = Commits(new SqliteExecutionStore(_database, ids, Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time), time);
        _usage = new UsageStore(new SqliteDialect(_database));
        return (executions, new AccountStore(new SqliteDialect(_database)));
    }

    private UsageStore? _usage;

    protected override IWebhookStore CreateWebhookStore() =>
        new WebhookStore(new SqliteDialect(_database!), new SqliteWebhookOutbox(_database!, new IdGenerator(Time)));

    protected override IUsageStore UsageTotals => _usage!;

    protected override async Task RerunUsageMigrationAsync()
    {
        await using (var c = await _database!.OpenAsync(CancellationToken.None))
        {
            await Dapper.SqlMapper.ExecuteAsync(c, "DROP TABLE usage_daily; DELETE FROM schema_migrations WHERE version = 10");
        }

        await _database.MigrateAsync(CancellationToken.None);
    }

    protected override Task<IReadOnlyList<(string ExecutionId, string? TraceParent)>> DeliveryTraceParentsAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string?)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string?)>(c, DeliveryTraceParentsSql)],
            CancellationToken.None);

    protected override Task<IReadOnlyList<(string ExecutionId, string EventId, string EventType, string Payload)>> DeliveriesAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string, string, string)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string, string, string)>(c, DeliveriesSql)],
            CancellationToken.None);

    [Fact]
    public async Task Refused_and_replayed_submissions_change_nothing_so_no_group_runs_twice()
    {
        // The writer runs a group's writes without savepoints, and runs the whole group again for a write that changed
        // rows before it refused: a submission refused for money, or answered as a replay or a reused key, must not be one.
        var account = await NewAccountAsync(20 * 10_000);
        (await Executions.SubmitAsync(NewExecution(account, 10_000, key: "same", hash: "h"), None)).Result.ShouldBe(SubmitResult.Created);
        var submissions = Enumerable.Range(0, 40).Select(_ => NewExecution(account, 10_000))
            .Concat(Enumerable.Range(0, 10).Select(_ => NewExecution(account, 10_000, key: "same", hash: "h")))
            .Concat(Enumerable.Range(0, 10).Select(_ => NewExecution(account, 10_000, key: "same", hash: "other")));

        var outcomes = await Task.WhenAll(submissions.Select(x => Task.Run(() => Executions.SubmitAsync(x, None))));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(19);
        outcomes.Count(o => o.Result == SubmitResult.InsufficientBalance).ShouldBe(21);
        outcomes.Count(o => o.Result == SubmitResult.Replayed).ShouldBe(10);
        outcomes.Count(o => o.Result == SubmitResult.KeyReused).ShouldBe(10);
        _database!.GroupsRunAgain.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    protected override IExecutionStore CreateNodeStore(TimeProvider time, NodeIdentity node, DispatchHandoff dispatch, IChangeBroadcast? broadcast = null) =>
        Commits(new SqliteExecutionStore(_database!, new IdGenerator(time), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time),
            time, broadcast, node, dispatch);

    protected override Task DisposeStoresAsync()
    {
        _database?.Dispose();
        if (_directory is not null)
        {
            TestPaths.TryDelete(_directory);
        }

        return Task.CompletedTask;
    }
}
