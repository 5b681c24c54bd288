namespace ModelRoute.Tests.Operations;

/// <summary>
/// Tests that read a gateway's GET /metrics: they run on their own, not beside the rest of the suite. The
/// OpenTelemetry SDK listens to every <c>ModelRoute</c> meter in the process, so a page scraped while other test
/// gateways run in this process also holds their instruments (one gateway per process never sees this).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricTests
{
    public const string Name = "Metrics";
}
