namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// Which store the HTTP tests run on: SQLite by default; PostgreSQL when MODELROUTE_TEST_STORE=postgres
/// (test.sh runs the HTTP suites a second time that way, so one set of test code covers both stores).
/// </summary>
public static class TestStore
{
    public static bool IsPostgres => string.Equals(Environment.GetEnvironmentVariable("MODELROUTE_TEST_STORE"), "postgres", StringComparison.OrdinalIgnoreCase);
}
