namespace ModelRoute.Bench;

/// <summary>One store run of a bench: its number in the order run (from 1), the store, and which repetition it is (from 1).</summary>
public sealed record PlannedRun(int Number, string Store, int Repetition);

/// <summary>
/// The order of the store runs with <c>--repeat N</c>: interleaved, <c>sqlite #1, postgres #1, sqlite #2, …</c>, so that
/// a slow spell of a shared host falls on both stores rather than on all the runs of one.
/// </summary>
public static class RunPlan
{
    public const int MaxRepeat = 9;

    public const string MemoryPhase = "memory";

    public static IReadOnlyList<PlannedRun> Order(IReadOnlyList<string> stores, int repeat) =>
        [.. Enumerable.Range(1, repeat).SelectMany(r => stores.Select(s => (Repetition: r, Store: s))).Select((x, i) => new PlannedRun(i + 1, x.Store, x.Repetition))];

    /// <summary>
    /// The gateways a store run starts, in order, each with the phases it runs: one for the selected phases but memory,
    /// then a fresh gateway on a fresh store (data directory or database) for the memory phase alone, so that the RSS
    /// measured is the parked executions' and not what the overload steps before it left in the heap
    /// (docs/benchmarks.md#the-memory-phase). A gateway with no phase to run is not started; the storage baseline needs none.
    /// </summary>
    public static IReadOnlyList<IReadOnlySet<string>> Gateways(IEnumerable<string> phases)
    {
        var onGateway = phases.Where(p => StoreBench.AllPhases.Contains(p)).ToHashSet(StringComparer.Ordinal);
        IReadOnlySet<string>[] gateways =
        [
            onGateway.Where(p => p != MemoryPhase).ToHashSet(StringComparer.Ordinal),
            onGateway.Where(p => p == MemoryPhase).ToHashSet(StringComparer.Ordinal),
        ];
        return [.. gateways.Where(g => g.Count > 0)];
    }
}
