using System.Collections.Concurrent;

namespace ModelRoute.Server.Operations;

/// <summary>Counters of this node in the Prometheus text format, for <c>GET /metrics</c>.</summary>
public sealed class GatewayMetrics
{
    private readonly ConcurrentDictionary<string, long> _transitions = new(StringComparer.Ordinal);
    private long _submitted;

    public void Submitted() => Interlocked.Increment(ref _submitted);

    public void Entered(ExecutionStatus status) => _transitions.AddOrUpdate(status.ToWire(), 1, (_, n) => n + 1);

    public string Render()
    {
        var text = new StringBuilder();
        text.AppendLine("# HELP modelroute_executions_submitted_total Executions accepted by this node.");
        text.AppendLine("# TYPE modelroute_executions_submitted_total counter");
        text.AppendLine(CultureInfo.InvariantCulture, $"modelroute_executions_submitted_total {Interlocked.Read(ref _submitted)}");
        text.AppendLine("# HELP modelroute_execution_transitions_total Status changes committed by this node, by the status entered.");
        text.AppendLine("# TYPE modelroute_execution_transitions_total counter");
        foreach (var (status, count) in _transitions.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"modelroute_execution_transitions_total{{status=\"{status}\"}} {count}");
        }

        return text.ToString();
    }
}
