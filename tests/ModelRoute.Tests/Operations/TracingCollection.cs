namespace ModelRoute.Tests.Operations;

/// <summary>
/// In-process tests that listen to the gateway's activities: they run one class after another. Activity listeners are
/// process-wide, so one class's tracer (or its ASP.NET Core instrumentation, or its sampler) would otherwise record
/// another's gateway: a request span recorded that should not be, or a span its sampler dropped.
/// </summary>
[CollectionDefinition(Name)]
public sealed class TracingCollection
{
    public const string Name = "Tracing";
}
