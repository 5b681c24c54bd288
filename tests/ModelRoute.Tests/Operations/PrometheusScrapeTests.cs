namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#scraping-with-prometheus: a real Prometheus scrapes a gateway on a real socket, and what it
/// stored is read back through its HTTP API. The alert rules are loaded too, so they are evaluated on live series.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class PrometheusScrapeTests
{
    private const int Executions = 5;

    [Fact]
    public async Task Prometheus_scrapes_the_gateway_and_reads_back_what_was_submitted()
    {
        await using var gateway = new GatewayFactory();
        using var client = gateway.Anonymous();
        await RunExecutionsAsync(gateway, Executions);

        await using var prometheus = await PrometheusServer.StartAsync([new ScrapeJob("modelroute", client.BaseAddress!.Authority)], AlertRules);

        await prometheus.WaitForValueAsync("""up{job="modelroute"}""", v => v == 1);
        await prometheus.WaitForValueAsync("sum(modelroute_executions_submitted_total)", v => v == Executions);
        await prometheus.WaitForValueAsync("""sum(modelroute_execution_transitions_total{status="COMPLETED"})""", v => v == Executions);
        await prometheus.WaitForValueAsync("""sum(modelroute_submit_duration_seconds_count{outcome="created"})""", v => v == Executions);
        var submitted = await prometheus.QueryAsync("modelroute_executions_submitted_total");
        submitted.ShouldHaveSingleItem().Labels.ShouldSatisfyAllConditions(
            labels => labels["model"].ShouldBe("sim/text"),
            labels => labels["otel_scope_name"].ShouldBe("ModelRoute"),
            labels => labels["job"].ShouldBe("modelroute"));
        (await prometheus.QueryAsync("""count(modelroute_submit_duration_seconds_bucket{outcome="created"})""")).ShouldHaveSingleItem().Value.ShouldBeGreaterThan(10);
        (await prometheus.QueryAsync("sum(modelroute_money_held_total)")).ShouldHaveSingleItem().Value.ShouldBeGreaterThan(0);
        (await prometheus.QueryAsync("count(http_server_request_duration_seconds_count)")).ShouldHaveSingleItem().Value.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task The_alert_rules_load_into_prometheus_and_evaluate_on_live_series_without_error()
    {
        await using var gateway = new GatewayFactory();
        using var client = gateway.Anonymous();
        await RunExecutionsAsync(gateway, 1);

        await using var prometheus = await PrometheusServer.StartAsync([new ScrapeJob("modelroute", client.BaseAddress!.Authority)], AlertRules);
        await prometheus.WaitForValueAsync("sum(modelroute_executions_submitted_total)", v => v == 1);

        var rules = new List<JsonElement>();
        await Eventually.HoldsAsync(
            async () =>
            {
                rules = [.. await RulesAsync(prometheus)];
                return rules.Count > 0 && rules.All(r => r.GetProperty("lastEvaluation").GetString()!.StartsWith("20", StringComparison.Ordinal));
            },
            "every alert rule evaluated once",
            seconds: 30);
        rules.Select(r => r.GetProperty("name").GetString()).ShouldBe(AlertNames, ignoreOrder: true);
        // Whether each fires is alerts.test.yml's to show (their waits are minutes): here every expression must run
        // on the series a gateway really serves.
        foreach (var rule in rules)
        {
            rule.GetProperty("health").GetString().ShouldBe("ok", rule.ToString());
            (rule.TryGetProperty("lastError", out var error) ? error.GetString() : null).ShouldBeNullOrEmpty(rule.ToString());
        }
    }

    [Fact]
    public async Task Prometheus_scrapes_with_the_metrics_token_and_is_refused_without_it()
    {
        const string token = "metrics-token-for-prometheus-0123";
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:Metrics:Token"] = token });
        using var client = gateway.Anonymous();
        await RunExecutionsAsync(gateway, 1);
        var target = client.BaseAddress!.Authority;

        await using var prometheus = await PrometheusServer.StartAsync(
            [new ScrapeJob("with-token", target, token), new ScrapeJob("wrong-token", target, token + "x"), new ScrapeJob("no-token", target)]);

        await prometheus.WaitForValueAsync("""up{job="with-token"}""", v => v == 1);
        await prometheus.WaitForValueAsync("""sum(modelroute_executions_submitted_total{job="with-token"})""", v => v == 1);
        await prometheus.WaitForValueAsync("""up{job="wrong-token"}""", v => v == 0);
        await prometheus.WaitForValueAsync("""up{job="no-token"}""", v => v == 0);
        (await prometheus.QueryAsync("""modelroute_executions_submitted_total{job!="with-token"}""")).ShouldBeEmpty();
    }

    [Fact]
    public async Task Promtool_finds_nothing_to_report_in_a_live_metrics_page()
    {
        await using var gateway = new GatewayFactory();
        using var client = gateway.Anonymous();
        await RunExecutionsAsync(gateway, 2);
        var metrics = await client.GetApiAsync("/metrics");
        metrics.Status.ShouldBe(200);
        metrics.Body.ShouldContain("modelroute_executions_submitted_total{");
        metrics.Body.ShouldContain("modelroute_execution_transitions_total{");
        metrics.Body.ShouldContain("modelroute_submit_duration_seconds_bucket{");

        var (exitCode, output) = await Promtool.RunAsync(["check", "metrics"], metrics.Body);

        output.ShouldBeEmpty();
        exitCode.ShouldBe(0);
    }

    /// <summary>docs/prometheus/alerts.yml in the repository.</summary>
    internal static string AlertRules => Path.Combine(TestPaths.RepositoryRoot(), "docs", "prometheus", "alerts.yml");

    internal static readonly string[] AlertNames =
    [
        "ModelRouteModelFailureRatioHigh", "ModelRouteProviderCircuitOpen", "ModelRouteWebhookBacklogGrowing",
        "ModelRouteHoldOlderThanLongestDeadline", "ModelRouteNoDispatchProgress",
    ];

    private static async Task RunExecutionsAsync(GatewayFactory gateway, int count)
    {
        using var account = await gateway.CreateAccountAsync();
        for (var i = 0; i < count; i++)
        {
            var submitted = await account.Client.SubmitTextAsync();
            submitted.Status.ShouldBe(202, submitted.Body);
            var execution = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);
            execution.GetProperty("status").GetString().ShouldBe("COMPLETED");
        }
    }

    private static async Task<IEnumerable<JsonElement>> RulesAsync(PrometheusServer prometheus)
    {
        using var document = JsonDocument.Parse(await prometheus.GetTextAsync("/api/v1/rules"));
        return [.. document.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray()
            .SelectMany(g => g.GetProperty("rules").EnumerateArray()).Select(r => r.Clone())];
    }
}
