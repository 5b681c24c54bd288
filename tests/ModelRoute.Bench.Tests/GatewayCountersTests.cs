namespace ModelRoute.Bench.Tests;

/// <summary>The bench reads the gateway's own counts from <c>GET /metrics</c>, in the OpenTelemetry exporter's format.</summary>
public sealed class GatewayCountersTests
{
    private const string Scrape =
        """
        # TYPE modelroute_executions_submitted_total counter
        # HELP modelroute_executions_submitted_total Executions accepted by this node, by model.
        modelroute_executions_submitted_total{otel_scope_name="ModelRoute",model="sim-text"} 7
        modelroute_executions_submitted_total{otel_scope_name="ModelRoute",model="sim-image"} 3
        # TYPE modelroute_execution_transitions_total counter
        modelroute_execution_transitions_total{otel_scope_name="ModelRoute",status="PENDING"} 12
        modelroute_execution_transitions_total{otel_scope_name="ModelRoute",status="PROCESSING"} 9
        modelroute_execution_transitions_total{otel_scope_name="ModelRoute",status="COMPLETED"} 8
        modelroute_submit_duration_seconds_count{otel_scope_name="ModelRoute",outcome="created"} 10
        """;

    [Fact]
    public void Submissions_are_summed_over_models_and_transitions_read_by_status()
    {
        var counters = GatewayCounters.Parse(Scrape);

        counters.Submitted.ShouldBe(10);
        counters.EnteredCount("PENDING").ShouldBe(12);
        counters.EnteredCount("COMPLETED").ShouldBe(8);
        counters.Pending.ShouldBe(3);
        counters.Unfinished.ShouldBe(2);
    }

    [Fact]
    public void Counters_the_gateway_does_not_print_read_as_zero() =>
        GatewayCounters.Parse("# nothing yet\n").EnteredCount("FAILED").ShouldBe(0);
}
