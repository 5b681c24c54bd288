using System.Globalization;
using System.Text;

namespace ModelRoute.Bench;

/// <summary>The generated part of docs/benchmarks.md: the conditions, the targets, the runs and each store's median run in detail.</summary>
public static class Report
{
    private const double GeneratorLagWarningMs = 10;

    public static string Notes(BenchSettings s) =>
        (s.Quick ? $"QUICK MODE: {s.FixedDuration.TotalSeconds:0.#} s runs, a {s.SearchMaxSteps}-step search and at most {s.FillLimit.TotalSeconds:0.#} s to park executions; indicative only. Run ./bench/run.sh (full) for the real figures. " : "")
        + "Gateway (Release build) and load generator run on the same machine over loopback, so they share its CPUs. "
        + $"Each store is warmed up first ({s.Warmup.TotalSeconds:0.#} s at 500/s with webhooks"
        + (s.WarmupBurst > TimeSpan.Zero ? $", then {s.WarmupBurst.TotalSeconds:0.#} s at {BenchSettings.TargetRate:0}/s" : "")
        + "), so that the JIT has compiled the hot paths to their optimized tier before anything is measured. "
        + "Phases run in this order: end to end, GET, webhooks, then the fixed-rate submit runs up to the first that fails twice in a row, the rate search, the fixed rates "
        + "above that failure (overload steps, which leave a backlog behind), and last the parked executions for memory (they stay), on a gateway of its own "
        + "started on a fresh store (data directory or database), not warmed up, so that the RSS measured is the parked executions' and not what the overload "
        + "left in the heap. "
        + "Submit and GET latencies are open loop: measured from each request's scheduled send time; requests still unanswered "
        + $"{s.RequestDrainLimit.TotalSeconds:0.#} s after the last scheduled send are abandoned and count as errors. "
        + "Submissions are sim/text with simulate.latency_ms 0, so the gateway also dispatches and completes each one in the background while it takes new ones; "
        + "'dispatch' says how many of a run's executions had finished by its end, how many still waited in PENDING, and how long the rest took "
        + $"(the harness waits at most {s.BacklogDrainLimit.TotalSeconds:0.#} s before the next run, {s.PhaseDrainLimit.TotalSeconds:0.#} s before each phase and {s.SearchDrainLimit.TotalSeconds:0.#} s before each rate search step, so a backlog it leaves shows as 'unfinished at start' in the next). "
        + "The rate search starts from the fixed-rate runs, doubles the rate until a step fails (p99 ≥ 50 ms or any error), then bisects; "
        + "a failure below a rate that passed (or, when none passed, the lowest failure) is first measured once more, and a rate measured twice counts by its second run; "
        + $"at most {s.SearchMaxSteps} steps of {s.SearchStepDuration.TotalSeconds:0.#} s"
        + (s.SearchStepMinRequests > 0 ? $" (longer at low rates, so that each step sends at least {s.SearchStepMinRequests:N0} requests)" : "") + ". "
        + "Webhook deliveries/s (the target's figure) is the delivery worker's own rate: a second account registers 100 endpoints on the local receiver, "
        + "then one batch of executions completes and each completion is due to all 100 endpoints at once; the rate is from the first to the last verified delivery. "
        + "The webhook flood (each execution submitted with a webhook_url through the batch endpoint) is bounded by how fast executions are dispatched and completed as well. "
        + "Memory: executions are parked in AWAITING_WEBHOOK through the batch endpoint "
        + $"({s.FillConcurrency} batches of 1,000 at a time, for at most {s.FillLimit.TotalSeconds:0} s); "
        + "the count is the gateway's own (GET /metrics); per-execution growth is the least-squares slope of RSS over the count parked (samples once a second), and the projection to 100,000 extends the highest RSS seen by that slope. "
        + "CPU (from /proc, over each run's sending window): the cores kept busy by the gateway's process, PostgreSQL's (the postmaster and its children; SQLite runs inside the gateway) "
        + "and the load generator's (this harness's process, which also receives the webhooks); 'other' is the rest of the machine's busy time (the kernel's own work, other tenants), "
        + "'idle' what was left; then the CPU the three spent per execution offered. On two cores shared by all three, a rate needs that figure under 2,000 ms divided by the rate (2 ms at 1,000/s). "
        + "PostgreSQL runs with its durable defaults (fsync, synchronous_commit on). The gateway runs with Logging:LogLevel:Default=Warning.";

    public static string Markdown(BenchReport report)
    {
        var md = new StringBuilder();
        md.AppendLine("## The published run");
        md.AppendLine();
        RunsReport.Header(md, report);
        if (report.Mode == "quick")
        {
            md.AppendLine();
            md.AppendLine("> **These are quick-mode numbers**: 1 s runs, a short rate search, and as many awaiting executions as can be parked in a few seconds (not 100,000). Treat them as a smoke test; `./bench/run.sh` gives the full figures.");
        }

        md.AppendLine();
        md.AppendLine("## Machine");
        md.AppendLine();
        var m = report.Machine;
        md.AppendLine(CultureInfo.InvariantCulture, $"* Cores (`nproc`): {m.Cores}");
        md.AppendLine(CultureInfo.InvariantCulture, $"* CPU: {m.Cpu}");
        md.AppendLine(CultureInfo.InvariantCulture, $"* Memory: {m.Memory}");
        md.AppendLine(CultureInfo.InvariantCulture, $"* OS: {m.Os}");
        md.AppendLine(CultureInfo.InvariantCulture, $"* .NET: {m.Dotnet}; gateway GC: {m.GatewayGc}");
        if (m.Postgres is not null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"* PostgreSQL: {m.Postgres}");
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"* Load average when the bench started: {F(m.LoadAverageAtStart)} (anything well above 0 means other work shared the cores; each run's is under [runs](#runs))");
        md.AppendLine(CultureInfo.InvariantCulture, $"* Date: {m.Date}");
        md.AppendLine();
        md.AppendLine("## Targets");
        md.AppendLine();
        md.AppendLine(report.Repeat > 1 ? "Each store's figure is the median over its runs (every run's own figures are under [runs](#runs))." : "From the one run of each store.");
        md.AppendLine();
        md.AppendLine("| Target | Measured | Verdict |");
        md.AppendLine("|---|---|---|");
        foreach (var t in report.Targets)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {t.Target} | {t.Measured} | {t.Verdict} |");
        }

        RunsReport.RunsTable(md, report);
        foreach (var s in report.Stores)
        {
            StoreSection(md, s, report);
        }

        md.AppendLine();
        md.AppendLine("## How it is measured");
        md.AppendLine();
        md.AppendLine(report.Notes);
        md.AppendLine();
        md.AppendLine("The harness is `bench/ModelRoute.Bench`: it starts the built gateway as its own process (`--urls http://127.0.0.1:PORT`) on SQLite in a temporary data directory, and on a throwaway PostgreSQL cluster it starts with initdb/pg_ctl; it creates an account, an API key and credit through the admin API; the load generator sends each request at its scheduled time on its own task (no closed loop), and percentiles come from every sample. Webhook signatures are verified (Standard Webhooks, HMAC-SHA256 over `{id}.{timestamp}.{body}`). Memory is VmRSS from `/proc/PID/status`; executions are held in AWAITING_WEBHOOK with `sim/image` and `simulate.latency_ms` 600000 (the largest allowed), so no callback comes during the window. Every phase is capped in time (see the notes above), so a slow gateway gives worse figures, not a longer run.");
        return md.ToString();
    }

    private static void StoreSection(StringBuilder md, StoreResult s, BenchReport report)
    {
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"## {Name(s.Store)}");
        md.AppendLine();
        if (report.Medians.FirstOrDefault(m => m.Store == s.Store) is { Runs.Count: > 1 } medians)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"The detailed figures of run {medians.MedianRun}, the median run of the {medians.Runs.Count} {Name(s.Store)} runs (its highest submit rate is the median, or the nearest to it).");
            md.AppendLine();
        }
        if (s.Failure is not null)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"The run failed: {s.Failure}");
            return;
        }

        md.AppendLine("| Measurement | Rate offered | Requests | Errors | p50 | p99 | p99.9 | max | Dispatch kept up? | CPU in cores; per execution |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var r in s.Submit)
        {
            Row(md, "Durable submit (`POST /v1/executions`)", r, s.Store);
        }

        foreach (var r in s.MaxRate.Steps)
        {
            Row(md, "Rate search step (submit)", r, s.Store);
        }

        if (s.Get is { } get)
        {
            Row(md, "`GET /v1/executions/{id}`", get, s.Store);
        }

        if (s.EndToEnd is { } e)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| End to end: submit → verified `execution.completed` webhook (simulator latency 0) | {F(e.Rate)}/s | {e.Submitted} | {e.SubmitErrors} submit, {e.Missing} missing after waiting {F(e.WaitedSeconds)} s, {e.RejectedSignatures} bad signatures | {F(e.Latency.P50Ms)} ms | {F(e.Latency.P99Ms)} ms | {F(e.Latency.P999Ms)} ms | {F(e.Latency.MaxMs)} ms | | {CpuCell(e.Cpu, e.Rate, s.Store)} |");
        }

        StageTable(md, s.EndToEnd);
        FiguresTable(md, s);
    }

    private static void StageTable(StringBuilder md, EndToEndResult? endToEnd)
    {
        if (endToEnd?.Stages is { } stages)
        {
            md.AppendLine();
            md.AppendLine("End to end by stage (from the times in each webhook's payload, which have millisecond precision):");
            md.AppendLine();
            md.AppendLine("| Stage | p50 | p90 | p99 | max |");
            md.AppendLine("|---|---|---|---|---|");
            StageRow(md, "Submit response (`202`)", stages.Submit);
            StageRow(md, "`created_at` → `started_at`: stored, claimed, attempt begun", stages.CreatedToStarted);
            StageRow(md, "`started_at` → `completed_at`: simulator call, result written", stages.StartedToCompleted);
            StageRow(md, "`completed_at` → webhook verified at the receiver", stages.CompletedToReceived);
        }
    }

    private static void FiguresTable(StringBuilder md, StoreResult s)
    {
        md.AppendLine();
        md.AppendLine("| Figure | Value |");
        md.AppendLine("|---|---|");
        if (s.Submit.Count > 0)
        {
            var lowestFail = s.MaxRate.LowestFailedRate is { } f ? $"lowest failing rate {F(f)}/s" : "no rate failed (the search ran out of steps)";
            md.AppendLine(CultureInfo.InvariantCulture, $"| Highest submit rate with p99 < 50 ms (and no errors) | **{F(s.MaxRate.HighestRateUnder50MsP99)}/s** ({lowestFail}; search steps: {(s.MaxRate.Steps.Count == 0 ? "none" : string.Join(", ", s.MaxRate.Steps.Select(r => F(r.Rate))))}) |");
        }

        BaselineRows(md, s);
        WebhookAndMemoryRows(md, s);
        md.AppendLine(CultureInfo.InvariantCulture, $"| Time per phase (gateway CPU) | {string.Join(", ", s.Phases.Select(p => $"{p.Phase} {F(p.Seconds)} s ({F(p.GatewayCpuSeconds)} CPU s)"))} |");
    }

    private static void BaselineRows(StringBuilder md, StoreResult s)
    {
        if (s.Baseline is { } b)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| Storage baseline, sequential single-row durable inserts (no gateway) | {F(b.SequentialInsertsPerSecond)}/s |");
            if (b.SequentialCommit is { } c)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| Storage baseline, time per sequential insert and commit (the storage's own tail) | p50 {F(c.P50Ms)} ms, p99 {F(c.P99Ms)} ms, p99.9 {F(c.P999Ms)} ms, max {F(c.MaxMs)} ms |");
            }

            md.AppendLine(CultureInfo.InvariantCulture, $"| Storage baseline, {b.Writers} concurrent writers | {F(b.ConcurrentInsertsPerSecond)}/s |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| Gateway rate as a fraction of the baseline | {s.FractionOfSequentialBaseline:P0} of sequential, {s.FractionOfConcurrentBaseline:P0} of concurrent |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| Storage baseline setup | {b.Description} |");
        }
    }

    private static void WebhookAndMemoryRows(StringBuilder md, StoreResult s)
    {
        if (s.FanOut is { } fan)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| Webhook deliveries/s to a local receiver, {fan.Expected:N0} due at once | {F(fan.DeliveriesPerSecond)}/s ({fan.Delivered:N0} of {fan.Expected:N0} delivered: {fan.Executions:N0} completions × {fan.Endpoints} endpoints; first to last in {F(fan.SecondsFirstToLast)} s, {F(fan.SecondsFromSubmit)} s from the submit; {fan.Rejected} bad signatures) |");
        }

        if (s.Webhooks is { } w)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| Webhook flood: submit → dispatch → complete → deliver | {F(w.DeliveriesPerSecond)}/s ({w.Delivered:N0} of {w.Accepted:N0} delivered{(w.WaitCapped ? ", the rest not within the wait" : "")}, first to last in {F(w.SecondsFirstToLast)} s; {F(w.SecondsFromSubmit)} s from the first submit) |");
        }

        if (s.Memory is { } mem)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| Gateway RSS with {mem.Awaiting:N0} executions in AWAITING_WEBHOOK | {F(mem.RssMinMiB)}–{F(mem.RssMaxMiB)} MiB over {mem.Samples.Count} samples, 1 s apart ({(mem.Flat ? "flat" : "NOT flat")}); {F(mem.RssBeforeMiB)} MiB before the fill |");
            md.AppendLine(double.IsNaN(mem.KiBPerAwaiting)
                ? string.Create(CultureInfo.InvariantCulture, $"| Memory per awaiting execution | too few parked (under {MemoryResult.FewestToProject:N0}) to tell |")
                : $"| Memory per awaiting execution | {F(mem.KiBPerAwaiting)} KiB; projected {F(mem.ProjectedRssMiBAt100k)} MiB at 100,000 |");
            md.AppendLine(CultureInfo.InvariantCulture, $"| Parking them | {mem.Accepted:N0} of {mem.Requested:N0} accepted and {mem.Awaiting:N0} awaiting after {F(mem.FillSeconds)} s{(mem.FillCapped ? " (the fill's time cap ended it)" : "")}; RSS during the fill: {string.Join(", ", mem.FillSamples.Select(x => $"{F(x.RssMiB)} MiB at {x.Awaiting:N0}"))} |");
        }
    }

    private static void StageRow(StringBuilder md, string what, LatencyStats l) =>
        md.AppendLine(CultureInfo.InvariantCulture, $"| {what} | {F(l.P50Ms)} ms | {F(l.P90Ms)} ms | {F(l.P99Ms)} ms | {F(l.MaxMs)} ms |");

    private static void Row(StringBuilder md, string what, RunResult r, string store)
    {
        var dispatch = r.Dispatch is not { } d
            ? ""
            : $"{d.FinishedDuringRun:N0} of {d.Accepted:N0} finished during the run, {d.PendingAtEnd:N0} pending at its end; "
                + (d.DrainSeconds is { } seconds ? $"all done {F(seconds)} s later" : $"{d.UnfinishedAfterWait:N0} still unfinished after the wait")
                + (d.UnfinishedAtStart > 0 ? $" ({d.UnfinishedAtStart:N0} unfinished at start)" : "")
                + (d.Approximate ? " (approximate: /metrics answered late)" : "");
        // A generator that could not keep its own schedule measured itself as much as the gateway: say so.
        var lag = r.MaxDispatchLagMs > GeneratorLagWarningMs ? $" (the load generator ran up to {F(r.MaxDispatchLagMs)} ms behind its schedule)" : "";
        md.AppendLine(CultureInfo.InvariantCulture, $"| {what}{lag} | {F(r.Rate)}/s for {F(r.Seconds)} s | {r.Sent} | {r.Errors}{(r.Abandoned > 0 ? $" ({r.Abandoned} abandoned)" : "")} | {F(r.Latency.P50Ms)} ms | {F(r.Latency.P99Ms)} ms | {F(r.Latency.P999Ms)} ms | {F(r.Latency.MaxMs)} ms | {dispatch} | {CpuCell(r.Cpu, r.Rate, store)} |");
    }

    /// <summary>
    /// Cores each party kept busy during the run, and the CPU the three of them spent per execution offered: on a
    /// machine they share, a rate is bounded by that sum (1,000 ms of CPU per second per core).
    /// </summary>
    public static string CpuCell(CpuUse? cpu, double rate, string store) => cpu is not { } c
        ? ""
        : $"gateway {F(c.Gateway)}" + (store == "postgres" ? $" + PostgreSQL {F(c.Storage)}" : "") + $" + load generator {F(c.Bench)}"
            + $" (other {F(c.Other)}, idle {F(c.Idle)}); {F(c.MsPerExecution(rate))} ms";

    internal static string Name(string store) => store == "postgres" ? "PostgreSQL" : "SQLite";

    internal static string F(double value) => double.IsNaN(value) ? "n/a" : value.ToString(value >= 100 ? "#,0" : "0.##", CultureInfo.InvariantCulture);
}
