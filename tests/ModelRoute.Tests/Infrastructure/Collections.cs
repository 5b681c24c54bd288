namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// Tests that start whole gateway processes and kill them: they run on their own, not beside the
/// rest of the suite, so that a busy 2-core machine cannot turn their timing into failures.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessTests
{
    public const string Name = "Gateway processes";
}
