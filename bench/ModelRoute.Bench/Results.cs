namespace ModelRoute.Bench;

public sealed record Machine(int Cores, string Cpu, string Memory, string Os, string Dotnet, string Date, string? Postgres);

public sealed record SearchResult(double HighestRateUnder50MsP99, IReadOnlyList<RunResult> Steps);

public sealed record EndToEndResult(double Rate, int Submitted, int SubmitErrors, int WebhooksReceived, int Missing, LatencyStats Latency, int RejectedSignatures);

public sealed record WebhookFloodResult(int Executions, int Delivered, double DeliveriesPerSecond, double SecondsFirstToLast, double SecondsFromSubmit);

public sealed record MemorySample(double Second, double RssMiB);

public sealed record MemoryResult(int AwaitingExecutions, int SampleChecked, int SampleAwaiting, double RssBeforeMiB, double RssAfterFillMiB,
    double RssMinMiB, double RssMaxMiB, bool Flat, IReadOnlyList<MemorySample> Samples);

public sealed record StoreResult(
    string Store,
    IReadOnlyList<RunResult> Submit,
    SearchResult MaxRate,
    RunResult Get,
    EndToEndResult EndToEnd,
    WebhookFloodResult Webhooks,
    MemoryResult Memory,
    BaselineResult Baseline,
    double FractionOfSequentialBaseline,
    double FractionOfConcurrentBaseline);

public sealed record TargetCheck(string Target, string Measured, string Verdict);

public sealed record BenchReport(string Mode, Machine Machine, string Notes, IReadOnlyList<StoreResult> Stores, IReadOnlyList<TargetCheck> Targets);
