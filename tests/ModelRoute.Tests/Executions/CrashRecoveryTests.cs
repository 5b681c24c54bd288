namespace ModelRoute.Tests.Executions;

/// <summary>docs/api.md#storage-and-scale: after kill -9 at any instant, a restart loses no accepted execution and no money.</summary>
[Collection(ProcessTests.Name)]
public sealed class CrashRecoveryTests : IDisposable
{
    private static readonly Dictionary<string, string> Settings = new()
    {
        ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
        ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:02",
        ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.100",
        ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.050",
        ["ModelRoute:Dispatch:CallbackPollInterval"] = "00:00:01",
        ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:00.050",
        ["ModelRoute:Polling:PermitsPerSecond"] = "100000",
        ["ModelRoute:Polling:Burst"] = "100000",
    };

    private readonly string _dataDirectory = TestPaths.NewTempDirectory("crash");

    [Fact]
    public async Task A_gateway_killed_mid_run_finishes_every_accepted_execution_after_restart_with_the_ledger_balanced()
    {
        string key;
        var expected = new Dictionary<string, string>();
        await using (var first = await GatewayProcess.StartAsync(_dataDirectory, Settings))
        {
            key = await first.CreateFundedKeyAsync("100.00");
            using var client = first.Client(key);
            for (var i = 0; i < 60; i++)
            {
                var (model, input, outcome) = (i % 6) switch
                {
                    0 => ("sim/text", $$$"""{"messages":[{"role":"user","content":"n{{{i}}}"}],"simulate":{"latency_ms":{{{200 + (i * 40)}}}}}""", "COMPLETED"),
                    1 => ("sim/text", """{"messages":[{"role":"user","content":"flaky"}],"simulate":{"fail":"server_error","fail_times":1,"latency_ms":300}}""", "COMPLETED"),
                    2 => ("sim/image", $$$"""{"prompt":"p{{{i}}}","simulate":{"latency_ms":{{{800 + (i * 30)}}}}}""", "COMPLETED"),
                    3 => ("sim/video", """{"prompt":"v","duration_seconds":2,"simulate":{"latency_ms":1500}}""", "COMPLETED"),
                    4 => ("sim/text", """{"messages":[{"role":"user","content":"no"}],"simulate":{"fail":"content_policy","latency_ms":600}}""", "FAILED"),
                    _ => ("sim/text", """{"messages":[{"role":"user","content":"fast"}],"simulate":{"latency_ms":0}}""", "COMPLETED"),
                };
                var submitted = await client.SubmitAsync(model, input, key: $"crash-{i}");
                submitted.Status.ShouldBe(202, submitted.Body);
                expected[submitted.Json.GetProperty("id").GetString()!] = outcome;
            }

            await Task.Delay(700); // some done, some in flight, some awaiting callbacks, some not started
            first.Kill();
        }

        await using var second = await GatewayProcess.StartAsync(_dataDirectory, Settings);
        using var restarted = second.Client(key);

        var finals = new Dictionary<string, JsonElement>();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        foreach (var id in expected.Keys)
        {
            finals[id] = await restarted.WaitForTerminalAsync(id, seconds: Math.Max(1, (int)(deadline - DateTime.UtcNow).TotalSeconds));
        }

        foreach (var (id, outcome) in expected)
        {
            finals[id].GetProperty("status").GetString().ShouldBe(outcome, $"{id}: {finals[id]}\n{second.Output}");
        }

        (await restarted.ExecutionsAsync()).Count.ShouldBe(expected.Count, "no execution lost, none invented");
        var charged = finals.Values
            .Where(e => e.GetProperty("status").GetString() == "COMPLETED")
            .Sum(e => HttpExtensions.Micros(e.GetProperty("cost").GetProperty("actual")));
        var (balance, held, _) = await restarted.BalanceAsync();
        held.ShouldBe(0);
        balance.ShouldBe(100_000_000 - charged);
        await Ledger.AssertBalancedAsync(restarted);
    }

    [Fact]
    public async Task Replaying_a_submission_after_a_crash_returns_the_original_execution()
    {
        string key;
        string id;
        await using (var first = await GatewayProcess.StartAsync(_dataDirectory, Settings))
        {
            key = await first.CreateFundedKeyAsync("1.00");
            using var client = first.Client(key);
            var submitted = await client.SubmitTextAsync(key: "after-crash", simulate: """{"latency_ms":400}""");
            submitted.Status.ShouldBe(202);
            id = submitted.Json.GetProperty("id").GetString()!;
            first.Kill();
        }

        await using var second = await GatewayProcess.StartAsync(_dataDirectory, Settings);
        using var restarted = second.Client(key);

        var replay = await restarted.SubmitTextAsync(key: "after-crash", simulate: """{"latency_ms":400}""");

        replay.Status.ShouldBe(200);
        replay.Json.GetProperty("id").GetString().ShouldBe(id);
        (await restarted.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Ledger.AssertBalancedAsync(restarted);
    }

    [Fact]
    public async Task A_gateway_killed_after_a_state_change_and_before_delivery_delivers_the_event_after_restart()
    {
        var settings = new Dictionary<string, string>(Settings)
        {
            ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "true",
            ["ModelRoute:Webhooks:AllowHttp"] = "true",
            ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:03", // the first attempt waits: the kill comes before it
            ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        };
        await using var receiver = await WebhookReceiver.StartAsync();
        string key;
        var ids = new List<string>();
        await using (var first = await GatewayProcess.StartAsync(_dataDirectory, settings))
        {
            key = await first.CreateFundedKeyAsync("1.00");
            using var client = first.Client(key);
            for (var i = 0; i < 5; i++)
            {
                ids.Add((await client.SubmitTextAsync(simulate: """{"latency_ms":0}""", extra: $",\"webhook_url\":\"{receiver.Url()}\"")).Json.GetProperty("id").GetString()!);
            }

            foreach (var id in ids)
            {
                (await client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
            }

            first.Kill();
        }

        receiver.Received.ShouldBeEmpty("the kill came before the first attempt was due");
        await using var second = await GatewayProcess.StartAsync(_dataDirectory, settings);

        await Eventually.HoldsAsync(() => receiver.Received.Count >= ids.Count, "every event was delivered after the restart", seconds: 60);
        receiver.Received.Select(w => w.Json.GetProperty("data").GetProperty("id").GetString()).Distinct().Order().ShouldBe(ids.Order());
        receiver.Received.ShouldAllBe(w => w.Json.GetProperty("type").GetString() == "execution.completed");
    }

    public void Dispose() => TestPaths.TryDelete(_dataDirectory);
}
