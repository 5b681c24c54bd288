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

    public static IReadOnlyList<PlannedRun> Order(IReadOnlyList<string> stores, int repeat) =>
        [.. Enumerable.Range(1, repeat).SelectMany(r => stores.Select(s => (Repetition: r, Store: s))).Select((x, i) => new PlannedRun(i + 1, x.Store, x.Repetition))];
}
