namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// Which store the HTTP tests run on: SQLite by default; PostgreSQL when MODELROUTE_TEST_STORE=postgres
/// (test.sh runs the HTTP suites a second time that way, so one set of test code covers both stores).
/// </summary>
public static class TestStore
{
    public static bool IsPostgres => string.Equals(Environment.GetEnvironmentVariable("MODELROUTE_TEST_STORE"), "postgres", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Settings for a store that outlives one gateway, for tests that start several on the same data:
    /// a data directory on SQLite, a database of its own on PostgreSQL (dropped by the returned cleanup).
    /// </summary>
    public static async Task<(Dictionary<string, string?> Settings, Func<Task> Cleanup)> SharedAsync(string directory)
    {
        var settings = new Dictionary<string, string?> { ["ModelRoute:DataDirectory"] = directory };
        if (!IsPostgres)
        {
            return (settings, () => Task.CompletedTask);
        }

        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync("shared");
        settings["ModelRoute:Store:Kind"] = "postgres";
        settings["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(database);
        return (settings, () => cluster.DropDatabaseAsync(database));
    }
}
