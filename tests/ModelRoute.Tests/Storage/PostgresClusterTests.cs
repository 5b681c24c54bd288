using Npgsql;

namespace ModelRoute.Tests.Storage;

public sealed class PostgresClusterTests
{
    [Fact]
    public async Task The_test_run_starts_its_own_postgresql_and_hands_out_empty_databases()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var name = await cluster.CreateDatabaseAsync("cluster_check");
        try
        {
            await using var connection = new NpgsqlConnection(cluster.ConnectionString(name));
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT current_setting('server_version_num')::int, (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')", connection);
            await using var reader = await command.ExecuteReaderAsync();
            (await reader.ReadAsync()).ShouldBeTrue();
            reader.GetInt32(0).ShouldBeGreaterThanOrEqualTo(150000);
            reader.GetInt64(1).ShouldBe(0);
        }
        finally
        {
            await cluster.DropDatabaseAsync(name);
        }
    }
}
