namespace ModelRoute.Bench;

public sealed record Machine(int Cores, string Cpu, string Memory, string Os, string Dotnet, string Date, string? Postgres, string GatewayGc, double LoadAverageAtStart);

/// <summary>
/// The highest rate that passed (p99 under 50 ms, no errors), the lowest that failed (null if none did), and the
/// runs it rests on: the fixed-rate runs seed it, <see cref="Steps"/> are the extra runs of the search itself.
/// </summary>
public sealed record SearchResult(double HighestRateUnder50MsP99, double? LowestFailedRate, IReadOnlyList<RunResult> Steps);

/// <summary>The end-to-end run; <see cref="Cpu"/> is over its sending window, as for a submit run.</summary>
public sealed record EndToEndResult(double Rate, int Submitted, int SubmitErrors, int WebhooksReceived, int Missing, LatencyStats Latency, int RejectedSignatures, double WaitedSeconds,
    EndToEndStages? Stages = null, CpuUse? Cpu = null);

/// <summary>
/// Where end-to-end time goes, from the times the gateway put in each webhook (millisecond precision): the submit's own
/// response time, created → started (accepted, claimed, attempt begun), started → completed (the provider call and
/// its result written), completed → received (delivery, signing, the receiver's check).
/// </summary>
public sealed record EndToEndStages(LatencyStats Submit, LatencyStats CreatedToStarted, LatencyStats StartedToCompleted, LatencyStats CompletedToReceived);

public sealed record WebhookFloodResult(int Executions, long Accepted, int Delivered, double DeliveriesPerSecond, double SecondsFirstToLast, double SecondsFromSubmit, bool WaitCapped);

/// <summary>
/// Deliveries due at once: <see cref="Executions"/> completions, each sent to <see cref="Endpoints"/> registered endpoints,
/// so that the rate is the delivery worker's and not the rate at which executions complete.
/// </summary>
public sealed record WebhookFanOutResult(int Executions, int Endpoints, int Expected, int Delivered, double DeliveriesPerSecond, double SecondsFirstToLast, double SecondsFromSubmit, int Rejected);

public sealed record MemorySample(double Second, double RssMiB, double AnonymousMiB, long Awaiting);

/// <summary>
/// Resident memory with executions parked in AWAITING_WEBHOOK. <see cref="Awaiting"/> is what the gateway's counters
/// say entered AWAITING_WEBHOOK (none leave during the window); <see cref="KiBPerAwaiting"/> is the slope of RSS over it,
/// and <see cref="ProjectedRssMiBAt100k"/> extends the highest RSS by that slope when fewer than 100,000 were reached.
/// </summary>
public sealed record MemoryResult(
    int Requested,
    long Accepted,
    long Awaiting,
    double FillSeconds,
    bool FillCapped,
    double RssBeforeMiB,
    double RssAfterFillMiB,
    double RssMinMiB,
    double RssMaxMiB,
    double KiBPerAwaiting,
    double ProjectedRssMiBAt100k,
    bool Flat,
    IReadOnlyList<MemorySample> FillSamples,
    IReadOnlyList<MemorySample> Samples)
{
    /// <summary>Fewer parked executions than this give no per-execution figure or projection.</summary>
    public const int FewestToProject = 5_000;
}

/// <summary>How long a phase took, and the CPU seconds the gateway process used in it (both cores count).</summary>
public sealed record PhaseTime(string Phase, double Seconds, double GatewayCpuSeconds);

public sealed record StoreResult(
    string Store,
    IReadOnlyList<RunResult> Submit,
    SearchResult MaxRate,
    RunResult? Get,
    EndToEndResult? EndToEnd,
    WebhookFloodResult? Webhooks,
    WebhookFanOutResult? FanOut,
    MemoryResult? Memory,
    BaselineResult? Baseline,
    double FractionOfSequentialBaseline,
    double FractionOfConcurrentBaseline,
    IReadOnlyList<PhaseTime> Phases,
    string? Failure)
{
    /// <summary>A store run with no figures: nothing measured yet, or <paramref name="failure"/> stopped it.</summary>
    public static StoreResult Empty(string store, string? failure = null) =>
        new(store, [], new SearchResult(0, null, []), null, null, null, null, null, null, 0, 0, [], failure);

    /// <summary>
    /// This run's figures with those a later gateway of the same store run measured (<see cref="RunPlan.Gateways"/>):
    /// each figure comes from the gateway that measured it, and the phase times of both are kept in order.
    /// </summary>
    public StoreResult Then(StoreResult later) => this with
    {
        Submit = [.. Submit, .. later.Submit],
        MaxRate = later.Submit.Count > 0 ? later.MaxRate : MaxRate,
        Get = later.Get ?? Get,
        EndToEnd = later.EndToEnd ?? EndToEnd,
        Webhooks = later.Webhooks ?? Webhooks,
        FanOut = later.FanOut ?? FanOut,
        Memory = later.Memory ?? Memory,
        Phases = [.. Phases, .. later.Phases],
    };
}

public sealed record TargetCheck(string Target, string Measured, string Verdict);

/// <summary>
/// A bench's report. <see cref="Stores"/> holds each store's median run (its only run without <c>--repeat</c>), and
/// <see cref="Targets"/> the checks against the medians; <see cref="Runs"/> every run with the load it started under.
/// </summary>
public sealed record BenchReport(
    string Mode,
    Machine Machine,
    string Notes,
    IReadOnlyList<StoreResult> Stores,
    IReadOnlyList<TargetCheck> Targets,
    double WallSeconds,
    int Repeat,
    double MaxLoad,
    double LoadWaitSeconds,
    IReadOnlyList<BenchRun> Runs,
    IReadOnlyList<StoreMedians> Medians);
