using Xunit.Abstractions;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md: labels come from bounded sets only (models, providers, statuses, outcomes, routes), so the
/// number of series on GET /metrics does not grow with executions or accounts, and no label carries an id or a URL.
/// </summary>
[Collection(MetricTests.Name)]
public sealed class MetricCardinalityTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Metrics:SampleInterval"] = "00:00:01",
    });

    /// <summary>
    /// Series that come and go whatever this gateway does: Kestrel's memory pool counts its first eviction after it has
    /// been idle a while, and the runtime counts exceptions by type for the whole test process, so a test running
    /// beside this one adds a series when it throws a type not seen before.
    /// </summary>
    private static readonly string[] Timed = ["aspnetcore_memory_pool_evicted_bytes_total", "dotnet_exceptions_total"];

    private readonly List<TestAccount> _accounts = [];
    private readonly HashSet<string> _ids = new(StringComparer.Ordinal);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _accounts.ForEach(a => a.Dispose());
        await _gateway.DisposeAsync();
    }

    [Fact]
    public async Task Ten_thousand_executions_over_a_hundred_accounts_leave_the_series_count_where_a_hundred_over_ten_left_it()
    {
        using var scraper = _gateway.Anonymous();
        await RunAsync(scraper, accounts: 10, perAccount: 10, "small");
        var small = await SettledSeriesAsync(scraper, ended: 100);

        var started = DateTime.UtcNow;
        await RunAsync(scraper, accounts: 100, perAccount: 100, "large");
        var large = await SettledSeriesAsync(scraper, ended: 100 + 10_000);
        var took = DateTime.UtcNow - started;

        var keys = large.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        var before = small.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        keys.Except(before).ShouldBeEmpty($"series that 10,000 executions added (took {took.TotalSeconds:F0} s)");
        before.Except(keys).ShouldBeEmpty("series that went away");
        large.Count.ShouldBe(small.Count);
        output.WriteLine($"{large.Count} series after 100 and after 10,100 executions; the 10,000 took {took.TotalSeconds:F1} s to submit and end");
        foreach (var series in large)
        {
            foreach (var (label, value) in series.Labels)
            {
                (_ids.Contains(value) || value.StartsWith("exe_", StringComparison.Ordinal) || value.StartsWith("acct_", StringComparison.Ordinal)
                    || value.Contains("://", StringComparison.Ordinal)).ShouldBeFalse($"{series.Key}: label {label} is an id or a URL");
            }
        }
    }

    /// <summary>Brings the gateway to <paramref name="accounts"/> accounts and submits <paramref name="perAccount"/> executions for each, in one batch per account.</summary>
    private async Task RunAsync(HttpClient scraper, int accounts, int perAccount, string run)
    {
        while (_accounts.Count < accounts)
        {
            var created = await Task.WhenAll(Enumerable.Range(0, Math.Min(10, accounts - _accounts.Count)).Select(_ => _gateway.CreateAccountAsync()));
            _accounts.AddRange(created);
        }

        _ids.UnionWith(_accounts.Select(a => a.Id));
        using var gate = new SemaphoreSlim(4);
        await Task.WhenAll(_accounts.Take(accounts).Select(async account =>
        {
            await gate.WaitAsync();
            try
            {
                var ids = await SubmitBatchAsync(account, perAccount, run);
                lock (_ids)
                {
                    _ids.UnionWith(ids);
                }
            }
            finally
            {
                gate.Release();
            }
        }));
        await StoreGaugeTests.ScrapeAsync(scraper);
    }

    private static async Task<List<string>> SubmitBatchAsync(TestAccount account, int count, string run)
    {
        var items = string.Join(",", Enumerable.Range(0, count).Select(i =>
            $$$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}],"simulate":{"latency_ms":0}},"idempotency_key":"{{{run}}}-{{{i}}}"}"""));
        var response = await account.Client.PostJsonAsync("/v1/executions/batch", $$"""{"executions":[{{items}}]}""");
        response.Status.ShouldBe(200, response.Body);
        var data = response.Json.GetProperty("data").EnumerateArray().ToList();
        data.Select(i => i.GetProperty("status").GetInt32()).Distinct().ShouldBe([202], response.Body[..Math.Min(500, response.Body.Length)]);
        return [.. data.Select(i => i.GetProperty("execution").GetProperty("id").GetString()!)];
    }

    /// <summary>
    /// The page once <paramref name="ended"/> executions have completed and the store gauges have counted nothing left
    /// open, after a full collection (so that every GC generation has its series in both pages).
    /// </summary>
    private static async Task<List<MetricSeries>> SettledSeriesAsync(HttpClient scraper, int ended)
    {
        await StoreGaugeTests.ScrapeUntilAsync(
            scraper,
            p => MetricSeries.Find(p, "modelroute_execution_transitions_total", ("status", "COMPLETED")) >= ended
                && p.Where(s => s.Name == "modelroute_executions_active").Sum(s => s.Value) == 0,
            $"{ended} executions completed and counted",
            seconds: 120);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return [.. (await StoreGaugeTests.ScrapeAsync(scraper)).Where(s => !Timed.Contains(s.Name))];
    }
}
