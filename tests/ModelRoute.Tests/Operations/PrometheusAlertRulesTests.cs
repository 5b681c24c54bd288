namespace ModelRoute.Tests.Operations;

/// <summary>docs/observability.md#alert-rules: docs/prometheus/alerts.yml is valid, and each alert fires when it should and only then.</summary>
public sealed class PrometheusAlertRulesTests
{
    private static readonly string Directory = Path.Combine(TestPaths.RepositoryRoot(), "docs", "prometheus");

    [Fact]
    public async Task Promtool_accepts_the_alert_rules()
    {
        var (exitCode, output) = await Promtool.RunAsync(["check", "rules", "alerts.yml"], workingDirectory: Directory);

        exitCode.ShouldBe(0, output);
        output.ShouldContain($"SUCCESS: {PrometheusScrapeTests.AlertNames.Length} rules found");
    }

    [Fact]
    public async Task Each_alert_fires_on_its_synthetic_series_and_not_on_healthy_ones()
    {
        var (exitCode, output) = await Promtool.RunAsync(["test", "rules", "alerts.test.yml"], workingDirectory: Directory);

        exitCode.ShouldBe(0, output);
        output.ShouldContain("SUCCESS");
    }

    [Fact]
    public void Every_alert_has_a_severity_a_wait_and_a_description_and_is_unit_tested()
    {
        var rules = File.ReadAllText(Path.Combine(Directory, "alerts.yml"));
        var tests = File.ReadAllText(Path.Combine(Directory, "alerts.test.yml"));
        var alerts = rules.Split("- alert: ")[1..];

        alerts.Select(a => a.Split('\n')[0].Trim()).ShouldBe(PrometheusScrapeTests.AlertNames, ignoreOrder: true);
        foreach (var alert in alerts)
        {
            var name = alert.Split('\n')[0].Trim();
            alert.ShouldMatch(@"\n\s+for: \d+m\n", name);
            alert.ShouldMatch(@"\n\s+severity: (warning|critical)\n", name);
            alert.ShouldContain("description: ", Case.Sensitive, name);
            tests.ShouldContain($"alertname: {name}\n        exp_alerts:\n          - exp_labels:", Case.Sensitive, $"{name} is shown to fire in alerts.test.yml");
        }
    }
}
