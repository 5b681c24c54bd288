using Dapper;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// PostgreSQL stopped under a running gateway: every request that needs the store answers 503 STORE_UNAVAILABLE with
/// Retry-After, nothing is half stored, the outage is logged in one warning (not per request, not per worker tick, no
/// stack trace), and once the server is back the gateway serves again and logs one recovery line. The cluster is the
/// test's own, so stopping it disturbs no other test.
/// </summary>
public sealed class StoreOutageTests : IAsyncLifetime
{
    private const string OutageLine = "The store cannot be reached";
    private const string RecoveryLine = "The store answers again";

    private PostgresCluster _cluster = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _cluster = await PostgresCluster.StartPrivateAsync();
        var database = await _cluster.CreateDatabaseAsync("outage");
        _gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["ModelRoute:Store:Kind"] = "postgres",
            ["ModelRoute:Store:ConnectionString"] = _cluster.ConnectionString(database).Replace("Timeout=30", "Timeout=5", StringComparison.Ordinal),
        });
        _gateway.StartServer();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        _cluster.Dispose();
    }

    [Fact]
    public async Task With_the_database_stopped_requests_answer_503_with_retry_after_and_one_warning_then_work_again_once_it_is_back()
    {
        using var account = await _gateway.CreateAccountAsync();
        var before = await account.Client.SubmitTextAsync();
        before.Status.ShouldBe(202, before.Body);
        var existing = before.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(existing)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        using var admin = _gateway.Admin();
        var unusedKey = (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        using var uncached = _gateway.WithBearer(unusedKey);

        await _cluster.StopServerAsync();
        (await account.Client.GetApiAsync("/readyz")).Status.ShouldBe(503);
        await EveryRequestIsRefusedAsync(account, existing, admin, uncached);

        // The workers go on trying meanwhile (a dispatch poll of 20 ms and a sweep of 50 ms here): none logs per try.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Lines(OutageLine).Count.ShouldBe(1, _gateway.Logs.All);
        NoFailureLogged();

        await _cluster.StartServerAsync();
        await WorksAgainAsync(account);

        // Nothing refused was stored, in part or whole: no execution, no hold.
        await using var connection = _gateway.OpenStoreConnection();
        (await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM executions WHERE idempotency_key LIKE 'outage-%'")).ShouldBe(0);
        (await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM executions")).ShouldBe(21);
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);
    }

    /// <summary>Once the database is back: the recovery is logged once, and submissions complete again.</summary>
    private async Task WorksAgainAsync(TestAccount account)
    {
        await Eventually.HoldsAsync(() => Lines(RecoveryLine).Count == 1, "the recovery is logged");
        for (var i = 0; i < 20; i++)
        {
            var after = await account.Client.SubmitTextAsync($"after-{i}");
            after.Status.ShouldBe(202, after.Body);
            (await account.Client.WaitForTerminalAsync(after.Json.GetProperty("id").GetString()!)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        (await account.Client.GetApiAsync("/readyz")).Status.ShouldBe(200);
        Lines(OutageLine).Count.ShouldBe(1, _gateway.Logs.All);
        Lines(RecoveryLine).Count.ShouldBe(1, _gateway.Logs.All);
        NoFailureLogged();
    }

    /// <summary>Submissions, reads, a cancel, an uncached key and the admin API, in waves: each answers 503 with Retry-After.</summary>
    private static async Task EveryRequestIsRefusedAsync(TestAccount account, string existing, HttpClient admin, HttpClient uncached)
    {
        var refusedKeys = Enumerable.Range(0, 120).Select(i => $"outage-{i}").ToList();
        var requests = new List<Task<ApiResponse>>();
        foreach (var chunk in refusedKeys.Chunk(20))
        {
            requests.AddRange(chunk.Select(key => account.Client.SubmitTextAsync(key)));
            requests.Add(account.Client.GetApiAsync($"/v1/executions/{existing}"));
            requests.Add(account.Client.GetApiAsync("/v1/executions"));
            requests.Add(account.Client.GetApiAsync("/v1/balance"));
            requests.Add(account.Client.PostJsonAsync($"/v1/executions/{existing}/cancel", "{}"));
            requests.Add(uncached.GetApiAsync("/v1/balance")); // A key not yet cached: its lookup needs the store (not a 401).
            requests.Add(admin.GetApiAsync($"/v1/admin/accounts/{account.Id}"));
            await Task.WhenAll(requests);
        }

        foreach (var response in await Task.WhenAll(requests))
        {
            response.Status.ShouldBe(503, response.Body);
            response.ProblemCode.ShouldBe("STORE_UNAVAILABLE");
            int.Parse(response.Header("Retry-After")!, System.Globalization.CultureInfo.InvariantCulture).ShouldBeInRange(1, 10);
        }
    }

    private List<string> Lines(string text) => [.. _gateway.Logs.Lines.Where(l => l.Contains(text, StringComparison.Ordinal))];

    private void NoFailureLogged()
    {
        var lines = _gateway.Logs.Lines.ToList();
        lines.ShouldNotContain(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Critical", StringComparison.Ordinal), string.Join('\n', lines));
        lines.ShouldNotContain(l => l.Contains("   at ", StringComparison.Ordinal), "no stack trace: " + string.Join('\n', lines.Where(l => l.Contains("   at ", StringComparison.Ordinal)).Take(3)));
    }
}
