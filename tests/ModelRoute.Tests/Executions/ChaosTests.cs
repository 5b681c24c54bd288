using System.Data.Common;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using Xunit.Abstractions;

namespace ModelRoute.Tests.Executions;

/// <summary>
/// Crash survival (docs/architecture.md, "Surviving a crash") under fire: real gateway processes, a mixed workload with webhooks, one node killed
/// with SIGKILL mid-run and restarted. At the end every execution ended exactly once, no hold is
/// open, the ledger balances and every terminal event reached the receiver.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class ChaosTests(ITestOutputHelper output) : IDisposable
{
    private static readonly int Count = int.TryParse(Environment.GetEnvironmentVariable("MODELROUTE_CHAOS_COUNT"), out var n) ? n : 2000;
    private readonly string _directory = TestPaths.NewTempDirectory("chaos");

    [Fact]
    public async Task Three_nodes_on_postgresql_survive_one_being_killed_mid_run()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync("chaos");
        try
        {
            var connectionString = cluster.ConnectionString(database);
            await RunAsync(
                nodes: 3,
                new Dictionary<string, string> { ["ModelRoute:Store:Kind"] = "postgres", ["ModelRoute:Store:ConnectionString"] = connectionString },
                () => new NpgsqlConnection(connectionString));
        }
        finally
        {
            await cluster.DropDatabaseAsync(database);
        }
    }

    [Fact]
    public async Task One_node_on_sqlite_survives_being_killed_mid_run()
    {
        var file = Path.Combine(_directory, "shared", "modelroute.db");
        await RunAsync(
            nodes: 1,
            new Dictionary<string, string> { ["ModelRoute:Store:ConnectionString"] = $"Data Source={file}" },
            () => new SqliteConnection($"Data Source={file}"));
    }

    private async Task RunAsync(int nodes, Dictionary<string, string> store, Func<DbConnection> database)
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var settings = Settings(store);
        var gateways = new GatewayProcess?[nodes];
        for (var i = 0; i < nodes; i++)
        {
            gateways[i] = await GatewayProcess.StartAsync(Directory.CreateDirectory(Path.Combine(_directory, $"node{i}")).FullName, settings);
        }

        try
        {
            var key = await SetUpAccountAsync(gateways[0]!, receiver.Url());
            var plan = Enumerable.Range(0, Count).Select(Workload).ToList();
            var ids = await SubmitKillingTheLastNodeHalfwayAsync(gateways, settings, key, plan);

            await using var db = database();
            await EveryExecutionEndedExactlyOnceAsync(db, ids, plan);
            await NoMoneyIsLostOrInventedAsync(db);
            await EveryTerminalEventWasDeliveredAsync(db, receiver);

            // The price of at-least-once: provider calls repeated because a node died mid-call.
            var attempts = await db.QueryAsync<(string Id, long Attempts)>("SELECT id, attempts FROM executions");
            var expectedAttempts = ids.ToDictionary(p => p.Value, p => plan[p.Key].ExpectedAttempts);
            var duplicates = attempts.Sum(a => Math.Max(0, a.Attempts - expectedAttempts[a.Id]));
            var duplicateDeliveries = receiver.Received.Count - receiver.Received.Select(r => r.Id).Distinct().Count();
            output.WriteLine($"{nodes} node(s), {Count} executions: {duplicates} duplicated provider dispatches, {duplicateDeliveries} duplicated webhook deliveries.");
        }
        finally
        {
            foreach (var gateway in gateways)
            {
                if (gateway is not null)
                {
                    await gateway.DisposeAsync();
                }
            }
        }
    }

    private static Dictionary<string, string> Settings(Dictionary<string, string> store) => new(store)
    {
        ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
        ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:03",
        ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.200",
        ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.100",
        ["ModelRoute:Dispatch:CallbackPollInterval"] = "00:00:02",
        ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:00.050",
        ["ModelRoute:Dispatch:RetryMaxDelay"] = "00:00:00.500",
        ["ModelRoute:Polling:PermitsPerSecond"] = "100000",
        ["ModelRoute:Polling:Burst"] = "100000",
        ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "true",
        ["ModelRoute:Webhooks:AllowHttp"] = "true",
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.500",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:01",
        ["ModelRoute:Webhooks:RetrySchedule:3"] = "00:00:02",
        ["ModelRoute:Webhooks:RetrySchedule:4"] = "00:00:05",
        ["ModelRoute:Webhooks:RetrySchedule:5"] = "00:00:10",
    };

    /// <summary>Submits the plan from eight clients; halfway, the last node is killed (SIGKILL) and started again.</summary>
    private async Task<ConcurrentDictionary<int, string>> SubmitKillingTheLastNodeHalfwayAsync(
        GatewayProcess?[] gateways, Dictionary<string, string> settings, string key, List<Work> plan)
    {
        var ids = new ConcurrentDictionary<int, string>();
        var next = -1;
        var killAt = Count / 2;
        var killed = new TaskCompletionSource();

        async Task SubmitAllAsync()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Count)
            {
                if (i == killAt)
                {
                    // SIGKILL mid-run, then start it again on the same store while the others carry on.
                    gateways[^1]!.Kill();
                    gateways[^1] = await GatewayProcess.StartAsync(Path.Combine(_directory, $"node{gateways.Length - 1}"), settings);
                    killed.SetResult();
                }

                ids[i] = await SubmitWithFailoverAsync(gateways, key, plan[i], $"chaos-{i}");
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(SubmitAllAsync)));
        await killed.Task;
        return ids;
    }

    private static async Task EveryExecutionEndedExactlyOnceAsync(DbConnection db, ConcurrentDictionary<int, string> ids, List<Work> plan)
    {
        await Eventually.HoldsAsync(
            async () => await db.ExecuteScalarAsync<long>("SELECT count(*) FROM executions WHERE status IN ('PENDING', 'PROCESSING', 'AWAITING_WEBHOOK')") == 0,
            "every execution reached a terminal state",
            seconds: 240);

        (await db.ExecuteScalarAsync<long>("SELECT count(*) FROM executions")).ShouldBe(Count);
        (await db.QueryAsync<string>(
            """
            SELECT execution_id FROM execution_events
            WHERE type IN ('execution.completed', 'execution.failed', 'execution.cancelled', 'execution.expired')
            GROUP BY execution_id HAVING count(*) <> 1
            """)).ShouldBeEmpty("one terminal event per execution");
        var finals = (await db.QueryAsync<(string Id, string Status, string? Error, string AttemptLog)>("SELECT id, status, error, attempt_log FROM executions"))
            .ToDictionary(e => e.Id);
        var wrong = ids.Where(p => !finals.TryGetValue(p.Value, out var e) || e.Status != plan[p.Key].Expected)
            .Select(p => $"#{p.Key} {plan[p.Key].Model} expected {plan[p.Key].Expected}: {(finals.TryGetValue(p.Value, out var e) ? $"{e.Status} {e.Error} {e.AttemptLog}" : "missing")}")
            .ToList();
        wrong.ShouldBeEmpty(string.Join('\n', wrong.Take(10)));
    }

    private static async Task NoMoneyIsLostOrInventedAsync(DbConnection db)
    {
        var account = await db.QuerySingleAsync<(long Balance, long Held)>("SELECT balance_micros, held_micros FROM accounts");
        account.Held.ShouldBe(0);
        var credits = await db.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE kind = 'credit'");
        var charges = await db.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(amount_micros), 0) FROM ledger_entries WHERE kind = 'charge'");
        var actual = await db.ExecuteScalarAsync<long>("SELECT COALESCE(SUM(CASE WHEN actual_micros < held_micros THEN actual_micros ELSE held_micros END), 0) FROM executions WHERE status = 'COMPLETED'");
        account.Balance.ShouldBe(credits - charges);
        charges.ShouldBe(actual);
        (await db.ExecuteScalarAsync<long>(
            "SELECT count(*) FROM (SELECT execution_id FROM ledger_entries WHERE kind = 'release' GROUP BY execution_id HAVING count(*) <> 1) x")).ShouldBe(0);
    }

    /// <summary>Every terminal event reached the receiver at least once.</summary>
    private static async Task EveryTerminalEventWasDeliveredAsync(DbConnection db, WebhookReceiver receiver)
    {
        var terminalEvents = (await db.QueryAsync<string>(
            "SELECT id FROM execution_events WHERE type IN ('execution.completed', 'execution.failed', 'execution.cancelled', 'execution.expired')")).ToHashSet();
        await Eventually.HoldsAsync(
            () => terminalEvents.IsSubsetOf(receiver.Received.Select(r => r.Id).ToHashSet()),
            "every terminal event was delivered",
            seconds: 120);
    }

    private sealed record Work(string Model, string Input, string Expected, int ExpectedAttempts);

    private static Work Workload(int i) => (i % 20) switch
    {
        < 8 => new("sim/text", $$$"""{"messages":[{"role":"user","content":"fast {{{i}}}"}],"simulate":{"latency_ms":{{{i % 50}}}}}""", "COMPLETED", 1),
        < 12 => new("sim/text", $$$"""{"messages":[{"role":"user","content":"slow {{{i}}}"}],"simulate":{"latency_ms":{{{500 + (i % 1000)}}}}}""", "COMPLETED", 1),
        < 15 => new("sim/text", """{"messages":[{"role":"user","content":"flaky"}],"simulate":{"fail":"server_error","fail_times":1,"latency_ms":20}}""", "COMPLETED", 2),
        < 17 => new("sim/text", """{"messages":[{"role":"user","content":"refused"}],"simulate":{"fail":"content_policy","latency_ms":20}}""", "FAILED", 1),
        _ => new("sim/image", $$$"""{"prompt":"p{{{i}}}","simulate":{"latency_ms":{{{200 + (i % 600)}}}}}""", "COMPLETED", 1),
    };

    /// <summary>Submits through the nodes in turn; a dead node's share goes to the next one with the same key.</summary>
    private static async Task<string> SubmitWithFailoverAsync(GatewayProcess?[] gateways, string key, Work work, string idempotencyKey)
    {
        for (var attempt = 0; ; attempt++)
        {
            var gateway = gateways[((idempotencyKey.GetHashCode(StringComparison.Ordinal) & 0xffff) + attempt) % gateways.Length];
            try
            {
                using var client = gateway!.Client(key);
                var response = await client.SubmitAsync(work.Model, work.Input, idempotencyKey);
                response.Status.ShouldBeOneOf(200, 202);
                return response.Json.GetProperty("id").GetString()!;
            }
            catch (Exception ex) when (ex is HttpRequestException or System.Net.Sockets.SocketException && attempt < 1200)
            {
                // A node being killed or restarted (a connection cut while it opens surfaces as a bare SocketException);
                // with one node, wait for it.
                await Task.Delay(100);
            }
        }
    }

    private static async Task<string> SetUpAccountAsync(GatewayProcess gateway, string webhookUrl)
    {
        using var admin = gateway.Client(GatewayFactory.AdminKey);
        var account = (await admin.PostJsonAsync("/v1/admin/accounts", "{}")).Json.GetProperty("id").GetString()!;
        var key = (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/credits", """{"amount_usd":"1000"}""")).Status.ShouldBe(201);
        using var client = gateway.Client(key);
        (await client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{webhookUrl}}"}""")).Status.ShouldBe(201);
        return key;
    }

    public void Dispose() => TestPaths.TryDelete(_directory);
}
