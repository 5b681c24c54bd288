namespace ModelRoute.Server.Operations;

/// <summary>
/// The log scopes of an execution's work (docs/observability.md#logs): every line logged while an execution
/// runs on this node, or one of its webhook deliveries is sent, carries its ids and its trace id. Defined once.
/// </summary>
public static class LogScopes
{
    private static readonly Func<ILogger, string, string?, IDisposable?> ExecutionScope =
        LoggerMessage.DefineScope<string, string?>("Execution {ExecutionId} trace {TraceId}");

    private static readonly Func<ILogger, string, string?, string?, IDisposable?> DeliveryScope =
        LoggerMessage.DefineScope<string, string?, string?>("Delivery {DeliveryId} of execution {ExecutionId} trace {TraceId}");

    public static IDisposable? Execution(ILogger logger, string executionId, string? traceParent) =>
        ExecutionScope(logger, executionId, TraceContext.TraceIdOf(traceParent));

    public static IDisposable? Delivery(ILogger logger, string deliveryId, string? executionId, string? traceParent) =>
        DeliveryScope(logger, deliveryId, executionId, TraceContext.TraceIdOf(traceParent));
}
