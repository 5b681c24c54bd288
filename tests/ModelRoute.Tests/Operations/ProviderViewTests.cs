namespace ModelRoute.Tests.Operations;

/// <summary>docs/api.md#provider-health: GET /v1/admin/providers with each provider's recent calls and the node's throughput.</summary>
public sealed class ProviderViewTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_provider_view_shows_the_error_rate_and_latency_of_recent_calls_and_the_nodes_throughput()
    {
        using var admin = _gateway.Admin();
        var idle = Sim(await ProvidersAsync(admin));
        idle.GetProperty("recent_calls").GetInt32().ShouldBe(0);
        idle.GetProperty("error_rate").ValueKind.ShouldBe(JsonValueKind.Null);
        idle.GetProperty("latency_ms").ValueKind.ShouldBe(JsonValueKind.Null);

        using var account = await _gateway.CreateAccountAsync();
        // One execution whose first call fails (503: the provider's fault) and whose retry succeeds, and two that succeed.
        var ids = new List<string>();
        foreach (var simulate in new[] { """{"fail":"server_error","fail_times":1,"latency_ms":60}""", """{"latency_ms":60}""", """{"latency_ms":60}""" })
        {
            ids.Add((await account.Client.SubmitTextAsync(simulate: simulate)).Json.GetProperty("id").GetString()!);
        }

        foreach (var id in ids)
        {
            (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        await Eventually.HoldsAsync(async () => Throughput(await ProvidersAsync(admin)).GetProperty("completed_per_second").GetDouble() > 0, "the completions counted once their second is whole", 5);
        var list = await ProvidersAsync(admin);
        var sim = Sim(list);
        sim.GetProperty("recent_calls").GetInt32().ShouldBe(4);
        sim.GetProperty("error_rate").GetDouble().ShouldBe(0.25);
        // Each call waits 60 ms; timers may fire a millisecond early against the stopwatch, and latency is in whole ms.
        sim.GetProperty("latency_ms").GetProperty("p50").GetInt64().ShouldBeGreaterThanOrEqualTo(55);
        sim.GetProperty("latency_ms").GetProperty("p95").GetInt64().ShouldBeGreaterThanOrEqualTo(sim.GetProperty("latency_ms").GetProperty("p50").GetInt64());
        sim.GetProperty("circuit").GetString().ShouldBe("closed");
        var throughput = Throughput(list);
        throughput.GetProperty("window_seconds").GetInt32().ShouldBe(60);
        throughput.GetProperty("ended_per_second").GetDouble().ShouldBeGreaterThanOrEqualTo(throughput.GetProperty("completed_per_second").GetDouble());
    }

    [Fact]
    public async Task The_provider_view_is_for_the_admin_key_only()
    {
        using var account = await _gateway.CreateAccountAsync();
        (await account.Client.GetApiAsync("/v1/admin/providers")).Status.ShouldBe(403);
    }

    private static async Task<JsonElement> ProvidersAsync(HttpClient admin)
    {
        var response = await admin.GetApiAsync("/v1/admin/providers");
        response.Status.ShouldBe(200, response.Body);
        response.Json.GetProperty("object").GetString().ShouldBe("list");
        return response.Json;
    }

    private static JsonElement Sim(JsonElement list) => list.GetProperty("data").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "sim");

    private static JsonElement Throughput(JsonElement list) => list.GetProperty("throughput");
}
