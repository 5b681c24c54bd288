namespace ModelRoute.Tests.Routing;

public sealed class FailoverTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Providers:primary:Kind"] = "simulator",
        ["ModelRoute:Providers:primary:Timeout"] = "00:00:00.500",
        ["ModelRoute:Providers:backup:Kind"] = "simulator",
        ["ModelRoute:Models:sim/failover:Modality"] = "text",
        ["ModelRoute:Models:sim/failover:Pricing:InputPerMTok"] = "1.00",
        ["ModelRoute:Models:sim/failover:Routes:0:Provider"] = "primary",
        ["ModelRoute:Models:sim/failover:Routes:0:Model"] = "text-a",
        ["ModelRoute:Models:sim/failover:Routes:0:Priority"] = "0",
        ["ModelRoute:Models:sim/failover:Routes:1:Provider"] = "backup",
        ["ModelRoute:Models:sim/failover:Routes:1:Model"] = "text-b",
        ["ModelRoute:Models:sim/failover:Routes:1:Priority"] = "1",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task When_the_first_route_keeps_answering_503_the_second_route_serves_it_and_both_are_recorded()
    {
        using var account = await _gateway.CreateAccountAsync();

        // The simulator fails attempts 1–3: all of them land on the primary route (three tries per route).
        var id = (await account.Client.SubmitAsync("sim/failover", """{"messages":[{"role":"user","content":"hi"}],"simulate":{"fail":"server_error","fail_times":3,"latency_ms":0}}"""))
            .Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("provider").GetString().ShouldBe("backup");
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Select(a => a.GetProperty("provider").GetString()).ShouldBe(["primary", "primary", "primary", "backup"]);
        log.Take(3).ShouldAllBe(a => a.GetProperty("error").GetProperty("provider_status").GetInt32() == 503);
        done.GetProperty("output").GetProperty("text").GetString()!.ShouldContain("text-b");
    }

    [Fact]
    public async Task When_the_first_route_times_out_the_second_route_serves_it()
    {
        using var account = await _gateway.CreateAccountAsync();

        // 1 s of work: longer than primary's 0.5 s timeout, well within backup's default.
        var id = (await account.Client.SubmitAsync("sim/failover", """{"messages":[{"role":"user","content":"slow"}],"simulate":{"latency_ms":1000}}"""))
            .Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Select(a => a.GetProperty("provider").GetString()).ShouldBe(["primary", "primary", "primary", "backup"]);
        log.Take(3).ShouldAllBe(a => a.GetProperty("error").GetProperty("code").GetString() == "PROVIDER_TIMEOUT");
    }

    [Fact]
    public async Task An_input_error_does_not_fail_over()
    {
        using var account = await _gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitAsync("sim/failover", """{"messages":[{"role":"user","content":"no"}],"simulate":{"fail":"content_policy"}}"""))
            .Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("attempt_log").EnumerateArray().Single().GetProperty("provider").GetString().ShouldBe("primary");
    }
}

public sealed class CircuitBreakerTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Dispatch:MaxAttemptsPerRoute"] = "1",
        ["ModelRoute:Providers:fragile:Kind"] = "simulator",
        ["ModelRoute:Providers:fragile:CircuitBreaker:MinimumThroughput"] = "2",
        ["ModelRoute:Providers:fragile:CircuitBreaker:FailureRatio"] = "0.5",
        ["ModelRoute:Providers:fragile:CircuitBreaker:SamplingDuration"] = "00:00:30",
        ["ModelRoute:Providers:fragile:CircuitBreaker:BreakDuration"] = "00:00:02",
        ["ModelRoute:Models:sim/fragile:Modality"] = "text",
        ["ModelRoute:Models:sim/fragile:Pricing:InputPerMTok"] = "1.00",
        ["ModelRoute:Models:sim/fragile:Routes:0:Provider"] = "fragile",
        ["ModelRoute:Models:sim/fragile:Routes:0:Model"] = "text",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_circuit_opens_after_repeated_failures_holds_work_back_and_closes_after_its_break()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();
        (await CircuitAsync(admin)).ShouldBe("closed");

        for (var i = 0; i < 2; i++)
        {
            var failing = (await account.Client.SubmitAsync("sim/fragile", """{"messages":[{"role":"user","content":"x"}],"simulate":{"fail":"server_error"}}""")).Json.GetProperty("id").GetString()!;
            (await account.Client.WaitForTerminalAsync(failing)).GetProperty("status").GetString().ShouldBe("FAILED");
        }

        (await CircuitAsync(admin)).ShouldBe("open");

        // While the circuit is open, new work waits in PENDING instead of failing.
        var held = (await account.Client.SubmitAsync("sim/fragile", """{"messages":[{"role":"user","content":"ok"}],"simulate":{"latency_ms":0}}""")).Json.GetProperty("id").GetString()!;
        await Task.Delay(300);
        var waiting = (await account.Client.GetApiAsync($"/v1/executions/{held}")).Json;
        waiting.GetProperty("status").GetString().ShouldBe("PENDING");
        waiting.GetProperty("attempts").GetInt32().ShouldBe(0);

        // After the break a trial call goes through; its success closes the circuit.
        var done = await account.Client.WaitForTerminalAsync(held);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        (await CircuitAsync(admin)).ShouldBe("closed");
    }

    private static async Task<string> CircuitAsync(HttpClient admin)
    {
        var providers = await admin.GetApiAsync("/v1/admin/providers");
        providers.Status.ShouldBe(200, providers.Body);
        return providers.Json.GetProperty("data").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "fragile").GetProperty("circuit").GetString()!;
    }
}
