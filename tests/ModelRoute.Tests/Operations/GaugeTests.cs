using ModelRoute.Server.Operations;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#store-gauges: the store-wide gauges on GET /metrics follow the work in the store, counted every
/// sample interval (1 s here), and stay what they were while a count fails.
/// </summary>
[Collection(MetricTests.Name)]
public sealed class StoreGaugeTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Metrics:SampleInterval"] = "00:00:01",
        ["ModelRoute:Providers:sim:MaxConcurrency"] = "1",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Work_held_behind_a_busy_provider_shows_as_active_pending_and_its_holds_as_money_outstanding()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var scraper = _gateway.Anonymous();
        var busy = Id(await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}"""));
        await account.Client.WaitForStatusAsync(busy, "PROCESSING");
        var waiting = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            waiting.Add(Id(await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""")));
        }

        var held = (await account.Client.BalanceAsync()).Held;
        held.ShouldBeGreaterThan(0);
        var page = await ScrapeUntilAsync(scraper, p => Active(p, "PENDING") == 3 && Active(p, "PROCESSING") == 1, "3 PENDING and 1 PROCESSING");
        Active(page, "AWAITING_WEBHOOK").ShouldBe(0);
        MetricSeries.Find(page, "modelroute_money_outstanding_held").ShouldBe(held);
        MetricSeries.Find(page, "modelroute_money_oldest_hold_age_seconds").ShouldNotBeNull().ShouldBeGreaterThanOrEqualTo(0);
        MetricSeries.Find(page, "modelroute_provider_in_flight", ("provider", "sim")).ShouldBe(1);

        // Once all have ended nothing is outstanding, and the gauges say so.
        foreach (var id in waiting.Prepend(busy))
        {
            (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBeOneOf([200, 202, 409]);
        }

        page = await ScrapeUntilAsync(scraper, p => Active(p, "PENDING") + Active(p, "PROCESSING") == 0, "nothing active");
        MetricSeries.Find(page, "modelroute_money_outstanding_held").ShouldBe(0);
        MetricSeries.Find(page, "modelroute_money_oldest_hold_age_seconds").ShouldBe(0);
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);
    }

    [Fact]
    public async Task A_delivery_to_a_receiver_that_is_down_shows_in_the_outbox_backlog_and_ages()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var scraper = _gateway.Anonymous();
        var page = await ScrapeUntilAsync(scraper, p => MetricSeries.Find(p, "modelroute_webhook_outbox_backlog") is not null, "a first count");
        MetricSeries.Find(page, "modelroute_webhook_outbox_backlog").ShouldBe(0);
        MetricSeries.Find(page, "modelroute_webhook_outbox_oldest_age_seconds").ShouldBe(0);

        // Port 9 (discard) refuses: the delivery stays pending between its retries (1 s, 5 s, 30 s, ...).
        var id = Id(await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""", extra: ""","webhook_url":"http://127.0.0.1:9/hook" """));
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        page = await ScrapeUntilAsync(
            scraper,
            p => MetricSeries.Find(p, "modelroute_webhook_outbox_backlog") == 1 && MetricSeries.Find(p, "modelroute_webhook_outbox_oldest_age_seconds") >= 1,
            "one pending delivery, at least a second old");
        page.Where(s => s.Name.StartsWith("modelroute_webhook_outbox", StringComparison.Ordinal)).ShouldAllBe(s => s.Labels.Keys.All(k => k.StartsWith("otel_", StringComparison.Ordinal)));
    }

    private static string Id(ApiResponse response)
    {
        response.Status.ShouldBe(202, response.Body);
        return response.Json.GetProperty("id").GetString()!;
    }

    private static double? Active(List<MetricSeries> page, string status) => MetricSeries.Find(page, "modelroute_executions_active", ("status", status));

    internal static async Task<List<MetricSeries>> ScrapeAsync(HttpClient scraper)
    {
        var response = await scraper.GetApiAsync("/metrics");
        response.Status.ShouldBe(200, response.Body);
        return MetricSeries.Parse(response.Body);
    }

    internal static async Task<List<MetricSeries>> ScrapeUntilAsync(HttpClient scraper, Func<List<MetricSeries>, bool> condition, string what, int seconds = 20)
    {
        List<MetricSeries> page = [];
        await Eventually.HoldsAsync(async () => condition(page = await ScrapeAsync(scraper)), what, seconds);
        return page;
    }
}

/// <summary>docs/observability.md#store-gauges: a scrape reads the last count, never the store; a failed count keeps it.</summary>
[Collection(MetricTests.Name)]
public sealed class StoreGaugeSamplingTests : IAsyncLifetime
{
    private readonly CountingOperationalCounts _counts = new();
    private readonly GatewayFactory _gateway;

    public StoreGaugeSamplingTests() =>
        _gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Metrics:SampleInterval"] = "01:00:00" },
            services => services.AddSingleton<IOperationalCounts>(_counts));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_first_count_is_taken_at_start_and_scrapes_never_ask_the_store()
    {
        using var scraper = _gateway.Anonymous();

        // An hour's interval: what appears now was counted at start, not after a whole interval.
        var page = await StoreGaugeTests.ScrapeUntilAsync(scraper, p => MetricSeries.Find(p, "modelroute_executions_active", ("status", "PENDING")) == 5, "the first count", 10);
        MetricSeries.Find(page, "modelroute_webhook_outbox_backlog").ShouldBe(2);
        _counts.Calls.ShouldBe(1);

        for (var i = 0; i < 5; i++)
        {
            await StoreGaugeTests.ScrapeAsync(scraper);
        }

        _counts.Calls.ShouldBe(1);
    }

    [Fact]
    public async Task A_failed_count_keeps_the_last_values_and_is_logged_once_until_counting_works_again()
    {
        using var scraper = _gateway.Anonymous();
        await StoreGaugeTests.ScrapeUntilAsync(scraper, p => MetricSeries.Find(p, "modelroute_money_outstanding_held") == 1234, "the first count", 10);
        var gauges = _gateway.Services.GetRequiredService<StoreGauges>();

        _counts.Failure = new InvalidOperationException("the store is down");
        for (var i = 0; i < 3; i++)
        {
            await gauges.SampleAsync(CancellationToken.None);
        }

        var page = await StoreGaugeTests.ScrapeAsync(scraper);
        MetricSeries.Find(page, "modelroute_money_outstanding_held").ShouldBe(1234);
        MetricSeries.Find(page, "modelroute_executions_active", ("status", "PENDING")).ShouldBe(5);
        _gateway.Logs.Lines.Count(l => l.Contains("Counting the store for the gauges failed", StringComparison.Ordinal)).ShouldBe(1);

        _counts.Failure = null;
        _counts.Result = _counts.Result with { Pending = 7 };
        await gauges.SampleAsync(CancellationToken.None);
        MetricSeries.Find(await StoreGaugeTests.ScrapeAsync(scraper), "modelroute_executions_active", ("status", "PENDING")).ShouldBe(7);
        _gateway.Logs.Lines.Count(l => l.Contains("Counting the store for the gauges works again", StringComparison.Ordinal)).ShouldBe(1);
    }
}

/// <summary>docs/observability.md#provider-gauges: each provider's circuit state, one series per state, 1 for the current one.</summary>
[Collection(MetricTests.Name)]
public sealed class ProviderGaugeTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Dispatch:MaxAttemptsPerRoute"] = "1",
        ["ModelRoute:Providers:fragile:Kind"] = "simulator",
        ["ModelRoute:Providers:fragile:CircuitBreaker:MinimumThroughput"] = "2",
        ["ModelRoute:Providers:fragile:CircuitBreaker:FailureRatio"] = "0.5",
        ["ModelRoute:Providers:fragile:CircuitBreaker:SamplingDuration"] = "00:00:30",
        ["ModelRoute:Providers:fragile:CircuitBreaker:BreakDuration"] = "00:05:00",
        ["ModelRoute:Models:sim/fragile:Modality"] = "text",
        ["ModelRoute:Models:sim/fragile:Pricing:InputPerMTok"] = "1.00",
        ["ModelRoute:Models:sim/fragile:Routes:0:Provider"] = "fragile",
        ["ModelRoute:Models:sim/fragile:Routes:0:Model"] = "text",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task An_open_circuit_shows_as_state_open_1_and_the_other_states_0()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var scraper = _gateway.Anonymous();
        var page = await StoreGaugeTests.ScrapeAsync(scraper);
        States(page, "fragile").ShouldBe([("closed", 1), ("half_open", 0), ("open", 0)]);
        States(page, "sim").ShouldBe([("closed", 1), ("half_open", 0), ("open", 0)]);
        MetricSeries.Find(page, "modelroute_provider_in_flight", ("provider", "fragile")).ShouldBe(0);

        for (var i = 0; i < 2; i++)
        {
            var failing = await account.Client.SubmitAsync("sim/fragile", """{"messages":[{"role":"user","content":"x"}],"simulate":{"fail":"server_error"}}""");
            (await account.Client.WaitForTerminalAsync(failing.Json.GetProperty("id").GetString()!)).GetProperty("status").GetString().ShouldBe("FAILED");
        }

        page = await StoreGaugeTests.ScrapeAsync(scraper);
        States(page, "fragile").ShouldBe([("closed", 0), ("half_open", 0), ("open", 1)]);
        States(page, "sim").ShouldBe([("closed", 1), ("half_open", 0), ("open", 0)]);
    }

    private static List<(string, double)> States(List<MetricSeries> page, string provider) =>
        [.. page.Where(s => s.Name == "modelroute_provider_circuit_state" && s.Labels["provider"] == provider)
            .Select(s => (s.Labels["state"], s.Value))
            .OrderBy(s => s.Item1, StringComparer.Ordinal)];
}
