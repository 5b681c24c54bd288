using ModelRoute.Server.Executions;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Postgres;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The contract on PostgreSQL: a fresh database per test on the cluster named by
/// MODELROUTE_TEST_POSTGRES (e.g. "Host=127.0.0.1;Port=55432;Username=postgres"), dropped after.
/// Without the variable every test fails saying so, rather than passing without running: temporary,
/// until the shared throwaway-cluster fixture supplies <see cref="AdminConnectionString"/>.
/// </summary>
public sealed class PostgresExecutionStoreContractTests : ExecutionStoreContract
{
    private static readonly string? AdminConnectionString = Environment.GetEnvironmentVariable("MODELROUTE_TEST_POSTGRES");

    private readonly string _databaseName = "mr_contract_" + Guid.NewGuid().ToString("N");
    private PostgresDatabase? _database;

    protected override async Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time)
    {
        if (AdminConnectionString is null)
        {
            throw new InvalidOperationException("Set MODELROUTE_TEST_POSTGRES to a PostgreSQL cluster's admin connection string to run the PostgreSQL store contract.");
        }

        await AdminAsync($"CREATE DATABASE {_databaseName}");
        _database = new PostgresDatabase(new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = _databaseName }.ConnectionString);
        await _database.MigrateAsync(CancellationToken.None);
        var ids = new IdGenerator(time);
        var executions = new PostgresExecutionStore(_database, ids, new ExecutionChanges(new GatewayMetrics()), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time);
        return (executions, new PostgresAccountStore(_database));
    }

    protected override async Task DisposeStoresAsync()
    {
        if (_database is null)
        {
            return;
        }

        await _database.DisposeAsync();
        await AdminAsync($"DROP DATABASE IF EXISTS {_databaseName} WITH (FORCE)");
    }

    private static async Task AdminAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(AdminConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
