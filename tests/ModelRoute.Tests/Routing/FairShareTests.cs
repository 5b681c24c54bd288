using System.Diagnostics;
using Dapper;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// Fair share between accounts (docs/routing.md): a provider's places are shared between the accounts with due work,
/// an account's cap holds on every node, and one account's work starts in the order it came.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class FairShareTests
{
    private static Dictionary<string, string?> Provider(int places) => new() { ["ModelRoute:Providers:sim:MaxConcurrency"] = places.ToString(System.Globalization.CultureInfo.InvariantCulture) };

    /// <summary>Submits <paramref name="count"/> executions, some at once, and answers their ids.</summary>
    private static async Task<List<string>> FloodAsync(HttpClient client, int count, int latencyMs)
    {
        var ids = new List<string>();
        for (var sent = 0; sent < count; sent += 25)
        {
            var batch = await Task.WhenAll(Enumerable.Range(0, Math.Min(25, count - sent)).Select(_ => client.SubmitTextAsync(simulate: $$"""{"latency_ms":{{latencyMs}}}""")));
            foreach (var response in batch)
            {
                response.Status.ShouldBe(202, response.Body);
                ids.Add(response.Json.GetProperty("id").GetString()!);
            }
        }

        return ids;
    }

    /// <summary>Each account's executions calling their provider now, read from the store.</summary>
    private static async Task<Dictionary<string, long>> ProcessingAsync(GatewayFactory gateway)
    {
        await using var connection = gateway.OpenStoreConnection();
        var rows = await connection.QueryAsync<(string AccountId, long Count)>("SELECT account_id, COUNT(*) FROM executions WHERE status = 'PROCESSING' GROUP BY account_id");
        return rows.ToDictionary(r => r.AccountId, r => r.Count);
    }

    [Fact]
    public async Task A_quiet_accounts_lone_execution_completes_within_five_seconds_behind_another_accounts_flood()
    {
        await using var gateway = new GatewayFactory(Provider(20));
        using var flooding = await gateway.CreateAccountAsync("100.00");
        using var quiet = await gateway.CreateAccountAsync();

        // 400 one-second calls on 20 places: twenty seconds of work queued first in first out.
        await FloodAsync(flooding.Client, 400, 1000);
        await Task.Delay(500);
        var clock = Stopwatch.StartNew();
        var lone = await quiet.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""");
        lone.Status.ShouldBe(202, lone.Body);
        var done = await quiet.Client.WaitForTerminalAsync(lone.Json.GetProperty("id").GetString()!, seconds: 30);
        clock.Stop();

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(5), $"the lone execution took {clock.Elapsed}");
    }

    [Fact]
    public async Task Three_flooding_accounts_each_get_a_third_of_the_providers_places()
    {
        await using var gateway = new GatewayFactory(Provider(12));
        var accounts = new List<TestAccount>();
        for (var i = 0; i < 3; i++)
        {
            accounts.Add(await gateway.CreateAccountAsync("100.00"));
        }

        try
        {
            // The first account's flood is queued before the others start theirs.
            foreach (var account in accounts)
            {
                await FloodAsync(account.Client, 120, 500);
            }

            // After the first calls have turned over, sample who holds the places for four seconds.
            await Task.Delay(1500);
            var held = accounts.ToDictionary(a => a.Id, _ => 0L);
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(4))
            {
                foreach (var (account, count) in await ProcessingAsync(gateway))
                {
                    held[account] += count;
                }

                await Task.Delay(50);
            }

            var total = held.Values.Sum();
            total.ShouldBeGreaterThan(0);
            foreach (var (account, count) in held)
            {
                var share = (double)count / total;
                share.ShouldBeInRange(1 / 3.0 * 0.85, 1 / 3.0 * 1.15, $"shares: {string.Join(", ", held.Values.Select(v => $"{(double)v / total:P0}"))}");
            }
        }
        finally
        {
            accounts.ForEach(a => a.Dispose());
        }
    }

    [Fact]
    public async Task One_accounts_executions_start_in_the_order_they_were_submitted()
    {
        await using var gateway = new GatewayFactory(Provider(3), RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();
        using var other = await gateway.CreateAccountAsync();
        var ids = new List<string>();
        var others = FloodAsync(other.Client, 30, 200);
        for (var i = 0; i < 30; i++)
        {
            var response = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":200}""");
            response.Status.ShouldBe(202, response.Body);
            ids.Add(response.Json.GetProperty("id").GetString()!);
        }

        await others;
        foreach (var id in ids)
        {
            (await account.Client.WaitForTerminalAsync(id, seconds: 60)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        // The order is the claims' (docs/routing.md#fair-share-between-accounts): what one claim takes starts on parallel
        // tasks, whose start times a loaded host may swap by any amount, so they are no measure of it.
        store.Claimed.Where(ids.Contains).Distinct().ShouldBe(ids, "claimed in the order submitted");
    }

    [Fact]
    public async Task A_submission_is_not_claimed_ahead_of_an_older_one_of_its_account_while_places_are_scarce()
    {
        // The first claim given back waits until released here: were the first submission handed to the dispatcher and
        // given back to its place, the second would be claimed while the first was still on its way back.
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releases = 0;
        await using var gateway = new GatewayFactory(Provider(1), services => RecordingExecutionStore.Install(services,
            s => s.BeforeReleasing = _ => Interlocked.Increment(ref releases) == 1 ? held.Task : Task.CompletedTask));
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();
        try
        {
            var first = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":50}""")).Json.GetProperty("id").GetString()!;
            var second = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""")).Json.GetProperty("id").GetString()!;
            await Eventually.HoldsAsync(() => store.Claimed.Contains(second), "the second claimed");
            held.SetResult();
            (await account.Client.WaitForTerminalAsync(first, seconds: 30)).GetProperty("status").GetString().ShouldBe("COMPLETED");

            store.Claimed.Where(id => id == first || id == second).Distinct().ShouldBe([first, second]);
        }
        finally
        {
            held.TrySetResult();
        }
    }

    [Fact]
    public async Task An_accounts_cap_holds_its_executions_in_flight_at_any_moment()
    {
        await using var gateway = new GatewayFactory();
        using var account = await gateway.CreateAccountAsync();
        using var admin = gateway.Admin();
        (await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":3}""")).Status.ShouldBe(200);

        var ids = await FloodAsync(account.Client, 40, 200);
        var most = await MostInFlightUntilDoneAsync([gateway], account.Id, ids.Count);

        most.ShouldBe(3, "never more than the cap, and the cap reached");
    }

    [Fact]
    public async Task An_accounts_cap_holds_across_two_nodes_on_one_PostgreSQL_database()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync("fairshare");
        try
        {
            var store = new Dictionary<string, string?>
            {
                ["ModelRoute:Store:Kind"] = "postgres",
                ["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(database),
            };
            await using var one = new GatewayFactory(store);
            await using var two = new GatewayFactory(store);
            using var account = await one.CreateAccountAsync();
            using var onTwo = two.WithBearer(account.Key);
            using var admin = one.Admin();
            (await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":4}""")).Status.ShouldBe(200);
            two.StartServer();
            await Task.Delay(TimeSpan.FromSeconds(1.5)); // The other node reads caps every second.

            var submitting = Task.WhenAll(FloodAsync(account.Client, 30, 200), FloodAsync(onTwo, 30, 200));
            var most = await MostInFlightUntilDoneAsync([one, two], account.Id, 60);
            await submitting;

            most.ShouldBe(4, "never more than the cap on both nodes together, and the cap reached");
        }
        finally
        {
            await cluster.DropDatabaseAsync(database);
        }
    }

    /// <summary>Samples the account's executions in flight until <paramref name="count"/> have ended; the most seen at once.</summary>
    private static async Task<long> MostInFlightUntilDoneAsync(GatewayFactory[] gateways, string accountId, int count)
    {
        var most = 0L;
        var deadline = Stopwatch.StartNew();
        await using var connection = gateways[0].OpenStoreConnection();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            var (processing, ended) = await connection.QuerySingleAsync<(long, long)>(
                """
                SELECT COALESCE(SUM(CASE WHEN status = 'PROCESSING' THEN 1 ELSE 0 END), 0),
                       COALESCE(SUM(CASE WHEN status IN ('COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED') THEN 1 ELSE 0 END), 0)
                FROM executions WHERE account_id = @accountId
                """,
                new { accountId });
            most = Math.Max(most, processing);
            if (ended >= count)
            {
                return most;
            }

            await Task.Delay(10);
        }

        var problems = gateways.SelectMany(g => g.Logs.Lines).Where(l => l.StartsWith("Error", StringComparison.Ordinal) || l.StartsWith("Warning", StringComparison.Ordinal)).Take(20);
        var states = await connection.QueryAsync<(string, string, long, long, string, long)>(
            "SELECT status, COALESCE(lease_owner, '-'), COALESCE(lease_expires_at, 0), next_attempt_at, COALESCE(attempt_log, ''), attempts FROM executions WHERE account_id = @accountId ORDER BY status DESC, next_attempt_at", new { accountId });
        throw new ShouldAssertException($"{count} executions did not end within a minute:\n{string.Join('\n', problems)}\n{string.Join('\n', states.Take(12))}\nnow {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}");
    }
}
