using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ModelRoute.Bench;

/// <summary>
/// The measurements of the given phases against one running gateway (one store). Each phase is capped in time. A store
/// run gives the memory phase a gateway of its own (<see cref="RunPlan.Gateways"/>).
/// </summary>
public sealed class StoreBench(GatewayHost gateway, WebhookReceiver receiver, BenchSettings settings, string store, IReadOnlySet<string> phases, CpuMeter cpu)
{
    public static readonly string[] AllPhases = ["submit", "get", "e2e", "webhooks", "memory"];

    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private readonly List<PhaseTime> _times = [];
    private HttpClient _api = null!;
    private GatewayCounters _lastCounters = new(0, new Dictionary<string, long>());
    private int _lateReads;

    public async Task<StoreResult> RunAsync(CancellationToken cancellationToken)
    {
        var (key, secret) = await gateway.CreateAccountAsync();
        receiver.UseSecret(secret);
        _api = gateway.Client(key, 4096);
        try
        {
            // A gateway started for the memory phase alone is not warmed up: its RSS before the fill is an idle gateway's.
            if (phases.Any(p => p != RunPlan.MemoryPhase))
            {
                await WarmUpAsync(cancellationToken);
            }

            EndToEndResult? endToEnd = null;
            if (phases.Contains("e2e"))
            {
                await TimedAsync("e2e", async () =>
                {
                    endToEnd = await EndToEndAsync(cancellationToken);
                    Log($"end to end at {endToEnd.Rate}/s: p50 {endToEnd.Latency.P50Ms} ms, p99 {endToEnd.Latency.P99Ms} ms, {endToEnd.Missing} missing after {endToEnd.WaitedSeconds} s");
                });
            }

            // Then what should be measured on a calm gateway (GET latency, webhook delivery), before the submit runs and
            // their overload steps, which leave a backlog that PostgreSQL took longer than a phase's wait to work off:
            // measured after it, GET p99 on PostgreSQL was 0.4–0.7 s. The 100,000 parked executions come last, as they
            // stay (a store run gives them a gateway of their own).
            RunResult? get = null;
            if (phases.Contains("get"))
            {
                await TimedAsync("get", async () =>
                {
                    get = await GetRunAsync(cancellationToken);
                    Log("GET " + Describe(get));
                });
            }

            var (flood, fanOut) = phases.Contains("webhooks") ? await WebhookPhasesAsync(cancellationToken) : (null, null);
            var submit = new List<RunResult>();
            var search = new SearchResult(0, null, []);
            if (phases.Contains("submit"))
            {
                await TimedAsync("submit", async () => search = await SubmitPhaseAsync(submit, cancellationToken));
            }

            var memory = phases.Contains(RunPlan.MemoryPhase) ? await MemoryPhaseAsync(cancellationToken) : null;
            return new StoreResult(store, submit, search, get, endToEnd, flood, fanOut, memory, null, 0, 0, _times, null);
        }
        finally
        {
            _api.Dispose();
        }
    }

    private async Task<MemoryResult> MemoryPhaseAsync(CancellationToken cancellationToken)
    {
        MemoryResult? memory = null;
        await TimedAsync(RunPlan.MemoryPhase, async () =>
        {
            memory = await MemoryAsync(cancellationToken);
            Log($"memory with {memory.Awaiting:N0} awaiting: {memory.RssMinMiB}-{memory.RssMaxMiB} MiB (before {memory.RssBeforeMiB} MiB, {memory.KiBPerAwaiting} KiB each, projected {memory.ProjectedRssMiBAt100k} MiB at 100,000), flat: {memory.Flat}");
        });
        return memory!;
    }

    private async Task WarmUpAsync(CancellationToken cancellationToken)
    {
        // Warm the JIT up first, and measure end to end before the submit runs, whose overload steps leave a backlog behind.
        // With webhooks, so that the delivery path is warm too before end to end is measured.
        await TimedAsync("warmup", async () => Log(Describe(await SubmitRunAsync("warmup", 500, settings.Warmup, cancellationToken, receiver.Url))));

        // Then briefly at the target rate: the paths taken only under load (submissions crowding in, claims of a backlog)
        // are compiled to their optimized tier here, and not while the first fixed-rate runs are measured.
        if (settings.WarmupBurst > TimeSpan.Zero)
        {
            await TimedAsync("warmup-burst", async () => Log(Describe(await SubmitRunAsync("warmup-burst", BenchSettings.TargetRate, settings.WarmupBurst, cancellationToken))));
        }
    }

    private async Task<(WebhookFloodResult? Flood, WebhookFanOutResult? FanOut)> WebhookPhasesAsync(CancellationToken cancellationToken)
    {
        WebhookFloodResult? flood = null;
        await TimedAsync("webhooks", async () =>
        {
            flood = await WebhookFloodAsync(cancellationToken);
            Log($"webhooks: {flood.Delivered}/{flood.Accepted} delivered{(flood.WaitCapped ? " (wait capped)" : "")}, {flood.DeliveriesPerSecond}/s");
        });

        WebhookFanOutResult? fanOut = null;
        await TimedAsync("fan-out", async () =>
        {
            fanOut = await WebhookFanOutAsync(cancellationToken);
            Log($"webhook fan-out: {fanOut.Delivered}/{fanOut.Expected} delivered ({fanOut.Executions} completions x {fanOut.Endpoints} endpoints), {fanOut.DeliveriesPerSecond}/s, {fanOut.Rejected} bad signatures");
        });
        return (flood, fanOut);
    }

    /// <summary>The fixed-rate runs (measured again where a run looks off), the search, then the rates kept for after it.</summary>
    private async Task<SearchResult> SubmitPhaseAsync(List<RunResult> submit, CancellationToken cancellationToken)
    {
        async Task<RunResult> FixedRunAsync(double rate, string label = "")
        {
            var result = await SubmitRunAsync($"submit-{rate}", rate, settings.FixedDuration, cancellationToken);
            submit.Add(result);
            Log(label + Describe(result));
            return result;
        }

        var rates = settings.FixedRates.Order().ToList();
        var afterSearch = new List<double>();
        foreach (var rate in rates)
        {
            if (BenchSettings.RunsAfterSearch(submit))
            {
                afterSearch.Add(rate);
                continue;
            }

            var result = await FixedRunAsync(rate);
            if (BenchSettings.MeasureAgain(submit, result, higherRatesLeft: rates[^1] > rate))
            {
                await WaitForBacklogAsync(settings.SearchDrainLimit, cancellationToken);
                await FixedRunAsync(rate, "again ");
            }
        }

        var search = await SearchAsync(submit, cancellationToken);
        Log($"highest rate with p99 < {BenchSettings.P99LimitMs} ms: {search.HighestRateUnder50MsP99}/s (lowest failing: {search.LowestFailedRate?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"})");
        foreach (var rate in afterSearch)
        {
            await FixedRunAsync(rate);
        }

        return search;
    }

    private async Task TimedAsync(string phase, Func<Task> run)
    {
        var started = Stopwatch.GetTimestamp();
        var cpu = gateway.CpuSeconds();

        // A backlog left by an earlier phase would be measured again here: give it (a bounded) time to clear.
        await WaitForBacklogAsync(settings.PhaseDrainLimit, CancellationToken.None);
        await run();
        _times.Add(new PhaseTime(phase, Math.Round(LoadGenerator.SecondsSince(started), 1), Math.Round(gateway.CpuSeconds() - cpu, 2)));
    }

    private void Log(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: {message}");

    private string Describe(RunResult r) =>
        $"{r.Name} {r.Rate}/s x {r.Seconds}s: p50 {r.Latency.P50Ms} ms, p99 {r.Latency.P99Ms} ms, p99.9 {r.Latency.P999Ms} ms, errors {r.Errors} ({r.Abandoned} abandoned), generator lag max {r.MaxDispatchLagMs} ms"
        + (r.Dispatch is { } d ? $"; dispatch: {d.FinishedDuringRun}/{d.Accepted} finished during the run, {d.PendingAtEnd} pending at its end, {(d.DrainSeconds is { } s ? $"drained in {s} s" : $"{d.UnfinishedAfterWait} still unfinished after the wait")}" : "")
        + (r.Cpu is { } c ? $"; cpu: {Report.CpuCell(c, r.Rate, store)}" : "");

    private static string TextSubmission(string key, string? webhookUrl) =>
        "{\"model\":\"sim/text\",\"idempotency_key\":\"" + key
        + "\",\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"benchmark\"}],\"max_tokens\":16,\"simulate\":{\"latency_ms\":0}}"
        + (webhookUrl is null ? "" : ",\"webhook_url\":\"" + webhookUrl + "\"") + "}";

    private async Task<bool> PostAsync(string path, string json, CancellationToken cancellationToken, Action<string>? onBody = null)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _api.PostAsync(path, content, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        onBody?.Invoke(body);
        return response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK;
    }

    /// <summary>
    /// The gateway's counters; when it is too busy to answer within the limit, the last ones read, and
    /// <see cref="_lateReads"/> counts it so that figures built on them are marked approximate.
    /// </summary>
    private async Task<GatewayCounters> CountersAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.RequestDrainLimit);
        try
        {
            return _lastCounters = await gateway.CountersAsync(_api, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            _lateReads++;
            return _lastCounters;
        }
    }

    /// <summary>One open-loop submit run, then how far dispatch kept up, waiting (capped) for the backlog to clear.</summary>
    private int _submitRuns;

    private async Task<RunResult> SubmitRunAsync(string name, double rate, TimeSpan duration, CancellationToken cancellationToken, string? webhookUrl = null)
    {
        var lateBefore = _lateReads;
        var before = await CountersAsync(cancellationToken);
        // Keys of their own for every run: a run again at the same rate (a failure measured once more, --rates with a
        // repeat) reused the first one's keys, and measured replays (it reported "dispatch: 0/0").
        var keys = $"{_run}-{name}-{++_submitRuns}";
        var cpuBefore = cpu.Read();
        var run = await LoadGenerator.RunAsync(name, rate, duration, settings.RequestDrainLimit,
            (i, token) => PostAsync("/v1/executions", TextSubmission($"{keys}-{i}", webhookUrl), token));
        var cpuUse = CpuMeter.Between(cpuBefore, cpu.Read());
        var atEnd = await CountersAsync(cancellationToken);
        var (drained, after) = await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        return run with
        {
            Cpu = cpuUse,
            Dispatch = new DispatchProgress(atEnd.Submitted - before.Submitted, atEnd.Terminal - before.Terminal, atEnd.Pending, atEnd.Unfinished, drained, after.Unfinished, before.Unfinished,
                _lateReads > lateBefore),
        };
    }

    /// <summary>Waits until every accepted execution has finished, at most <paramref name="limit"/>; the seconds it took (null if it did not).</summary>
    private async Task<(double? Seconds, GatewayCounters Last)> WaitForBacklogAsync(TimeSpan limit, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var counters = await CountersAsync(cancellationToken);
            var elapsed = LoadGenerator.SecondsSince(started);
            if (counters.Unfinished <= 0)
            {
                return (Math.Round(elapsed, 2), counters);
            }

            if (elapsed >= limit.TotalSeconds)
            {
                return (null, counters);
            }

            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>Seeds the search with the fixed-rate runs, then steps up ×2 and bisects (<see cref="BenchSettings.NextSearchRate"/>).</summary>
    private async Task<SearchResult> SearchAsync(IReadOnlyList<RunResult> fixedRuns, CancellationToken cancellationToken)
    {
        var runs = new List<RunResult>(fixedRuns);
        var steps = new List<RunResult>();
        while (steps.Count < settings.SearchMaxSteps)
        {
            var (pass, fail) = Bounds(runs);
            if ((BenchSettings.ConfirmFirst(runs) ?? BenchSettings.NextSearchRate(pass, fail)) is not { } rate || rate > 32_000)
            {
                break;
            }

            await WaitForBacklogAsync(settings.SearchDrainLimit, cancellationToken);
            var result = await SubmitRunAsync($"search-{rate}", rate, settings.SearchStepLength(rate), cancellationToken);
            steps.Add(result);
            runs.Add(result);
            Log("search " + Describe(result));
        }

        var (highest, lowestFail) = Bounds(runs);
        return new SearchResult(highest, lowestFail, steps);

        // The lowest failing rate, and the highest passing rate below it: noise cannot make a pass above a failure count.
        static (double Pass, double? Fail) Bounds(IReadOnlyList<RunResult> all)
        {
            var runs = Latest(all);
            var fail = runs.Where(r => !r.MeetsP99(BenchSettings.P99LimitMs)).Select(r => (double?)r.Rate).Min();
            var pass = runs.Where(r => r.MeetsP99(BenchSettings.P99LimitMs) && (fail is null || r.Rate < fail)).Select(r => r.Rate).DefaultIfEmpty(0).Max();
            return (pass, fail);
        }

        // A rate measured again counts by its latest run.
        static List<RunResult> Latest(IReadOnlyList<RunResult> runs) => [.. runs.GroupBy(r => r.Rate).Select(g => g.Last())];
    }

    private async Task<RunResult> GetRunAsync(CancellationToken cancellationToken)
    {
        var ids = new string[20];
        await Task.WhenAll(Enumerable.Range(0, ids.Length).Select(i =>
            PostAsync("/v1/executions", TextSubmission($"{_run}-get-{i}", null), cancellationToken, body =>
            {
                using var doc = JsonDocument.Parse(body);
                ids[i] = doc.RootElement.GetProperty("id").GetString()!;
            })));

        await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        return await LoadGenerator.RunAsync("get", settings.GetRate, settings.GetDuration, settings.RequestDrainLimit, async (i, token) =>
        {
            using var response = await _api.GetAsync($"/v1/executions/{ids[i % ids.Length]}", token);
            await response.Content.ReadAsByteArrayAsync(token);
            return response.StatusCode == HttpStatusCode.OK;
        });
    }

    private async Task<EndToEndResult> EndToEndAsync(CancellationToken cancellationToken)
    {
        var rate = settings.EndToEndRate;
        var count = (int)Math.Round(rate * settings.EndToEndDuration.TotalSeconds);
        var scheduled = new long[count];
        var prefix = $"{_run}-e2e-";
        var rejectedBefore = receiver.Rejected;
        var countBefore = receiver.CompletedCount;
        var cpuBefore = cpu.Read();
        var run = await LoadGenerator.RunAsync("e2e", rate, settings.EndToEndDuration, settings.RequestDrainLimit,
            (i, token) => PostAsync("/v1/executions", TextSubmission(prefix + i, receiver.Url), token), scheduled);
        var cpuUse = CpuMeter.Between(cpuBefore, cpu.Read());
        var waited = await WaitForWebhooksAsync(countBefore + run.Ok, settings.EndToEndWaitLimit, cancellationToken);
        var latencies = new List<double>(count);
        List<double> queued = [], ran = [], delivered = [];
        for (var i = 0; i < count; i++)
        {
            if (receiver.Completed.TryGetValue(prefix + i, out var arrived))
            {
                latencies.Add(LoadGenerator.Ms(arrived - scheduled[i]));
            }

            if (receiver.CompletedTimes.TryGetValue(prefix + i, out var times))
            {
                queued.Add((times.Started - times.Created).TotalMilliseconds);
                ran.Add((times.Completed - times.Started).TotalMilliseconds);
                delivered.Add((times.Arrived - times.Completed).TotalMilliseconds);
            }
        }

        var stages = new EndToEndStages(run.Latency, LatencyStats.From(queued), LatencyStats.From(ran), LatencyStats.From(delivered));

        await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        return new EndToEndResult(rate, count, run.Errors, latencies.Count, count - latencies.Count, LatencyStats.From(latencies), receiver.Rejected - rejectedBefore, waited, stages, cpuUse);
    }

    private async Task<WebhookFloodResult> WebhookFloodAsync(CancellationToken cancellationToken)
    {
        var prefix = $"{_run}-flood-";
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(settings.FloodWaitLimit.TotalSeconds * Stopwatch.Frequency);
        var countBefore = receiver.CompletedCount;
        var submittedBefore = (await CountersAsync(cancellationToken)).Submitted;
        // Submissions get 60 % of the phase's time, the deliveries the rest.
        var submitDeadline = started + (long)(settings.FloodWaitLimit.TotalSeconds * 0.6 * Stopwatch.Frequency);
        var accepted = await SubmitInBatchesAsync(settings.WebhookFlood, i => TextSubmission(prefix + i, receiver.Url), submitDeadline, cancellationToken);
        var remaining = TimeSpan.FromSeconds(Math.Max(0, LoadGenerator.Ms(deadline - Stopwatch.GetTimestamp()) / 1000.0));
        await WaitForWebhooksAsync(countBefore + accepted, remaining, cancellationToken);
        var arrivals = receiver.Completed.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p.Value).Order().ToArray();
        // Read again: a batch cut at the deadline may have committed its last item after the first reading.
        accepted = Math.Max(accepted, (await CountersAsync(cancellationToken)).Submitted - submittedBefore);
        var capped = arrivals.Length < accepted;
        await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        if (arrivals.Length < 2)
        {
            return new WebhookFloodResult(settings.WebhookFlood, accepted, arrivals.Length, 0, 0, 0, capped);
        }

        var span = LoadGenerator.Ms(arrivals[^1] - arrivals[0]) / 1000.0;
        var fromSubmit = LoadGenerator.Ms(arrivals[^1] - started) / 1000.0;
        return new WebhookFloodResult(settings.WebhookFlood, accepted, arrivals.Length, Math.Round((arrivals.Length - 1) / span, 1), Math.Round(span, 2), Math.Round(fromSubmit, 2), capped);
    }

    /// <summary>
    /// Delivery throughput on its own: a second account registers <see cref="FanOutEndpoints"/> endpoints on the receiver,
    /// then one batch of executions completes, and each completion is due to every endpoint at once. (The flood above is
    /// bounded by how fast executions complete; this is bounded by the delivery worker.)
    /// </summary>
    private async Task<WebhookFanOutResult> WebhookFanOutAsync(CancellationToken cancellationToken)
    {
        var executions = Math.Max(1, settings.WebhookFlood / FanOutEndpoints);
        var (key, _) = await gateway.CreateAccountAsync();
        using var api = gateway.Client(key, 8);
        var secrets = new string[FanOutEndpoints];
        for (var n = 0; n < FanOutEndpoints; n++)
        {
            var endpoint = await GatewayHost.PostJsonAsync(api, "/v1/webhook-endpoints", $$"""{"url":"{{receiver.FanOutUrl}}/{{n}}","events":["execution.completed"]}""");
            secrets[n] = endpoint.GetProperty("secret").GetString()!;
        }

        var rejectedBefore = receiver.Rejected;
        receiver.StartFanOut(secrets);
        var expected = executions * FanOutEndpoints;
        var started = Stopwatch.GetTimestamp();
        var json = "{\"executions\":[" + string.Join(',', Enumerable.Range(0, executions).Select(i => TextSubmission($"{_run}-fanout-{i}", null))) + "]}";
        await GatewayHost.PostJsonAsync(api, "/v1/executions/batch", json);
        while (receiver.FanOutCount < expected && LoadGenerator.SecondsSince(started) < settings.FloodWaitLimit.TotalSeconds)
        {
            await Task.Delay(20, cancellationToken);
        }

        var arrivals = receiver.FanOutArrivals();
        await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        var rejected = receiver.Rejected - rejectedBefore;
        if (arrivals.Length < 2)
        {
            return new WebhookFanOutResult(executions, FanOutEndpoints, expected, arrivals.Length, 0, 0, 0, rejected);
        }

        var span = LoadGenerator.Ms(arrivals[^1] - arrivals[0]) / 1000.0;
        return new WebhookFanOutResult(executions, FanOutEndpoints, expected, arrivals.Length, Math.Round((arrivals.Length - 1) / span, 1), Math.Round(span, 2),
            Math.Round(LoadGenerator.Ms(arrivals[^1] - started) / 1000.0, 2), rejected);
    }

    private const int FanOutEndpoints = 100;

    /// <summary>Waits until the receiver holds <paramref name="expected"/> verified completions, at most <paramref name="limit"/>; the seconds waited.</summary>
    private async Task<double> WaitForWebhooksAsync(long expected, TimeSpan limit, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (receiver.CompletedCount < expected && LoadGenerator.SecondsSince(started) < limit.TotalSeconds)
        {
            await Task.Delay(20, cancellationToken);
        }

        return Math.Round(LoadGenerator.SecondsSince(started), 2);
    }

    /// <summary>
    /// Submits through POST /v1/executions/batch, up to 1000 a request, <see cref="BenchSettings.FillConcurrency"/> requests at
    /// a time, and cancels what is still running at <paramref name="deadline"/> (a Stopwatch timestamp), so a slow gateway
    /// cannot stretch the phase. How many were accepted comes from the gateway's counters, which a cut batch leaves right.
    /// </summary>
    private async Task<long> SubmitInBatchesAsync(int count, Func<int, string> submission, long deadline, CancellationToken cancellationToken)
    {
        var batchSize = Math.Clamp((count + settings.FillConcurrency - 1) / settings.FillConcurrency, 1, 1000);
        var before = (await CountersAsync(cancellationToken)).Submitted;
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cut.CancelAfter(TimeSpan.FromSeconds(Math.Max(0, LoadGenerator.Ms(deadline - Stopwatch.GetTimestamp()) / 1000.0)));
        var next = -1;
        var workers = Enumerable.Range(0, settings.FillConcurrency).Select(async _ =>
        {
            int batch;
            while ((batch = Interlocked.Increment(ref next)) * batchSize < count && !cut.IsCancellationRequested)
            {
                var first = batch * batchSize;
                var json = "{\"executions\":[" + string.Join(',', Enumerable.Range(first, Math.Min(batchSize, count - first)).Select(submission)) + "]}";
                try
                {
                    await PostAsync("/v1/executions/batch", json, cut.Token);
                }
                catch (OperationCanceledException) when (cut.IsCancellationRequested)
                {
                    return; // Out of time: the gateway stops the batch where it was.
                }
            }
        });
        await Task.WhenAll(workers);
        return (await CountersAsync(cancellationToken)).Submitted - before;
    }

    private async Task<MemoryResult> MemoryAsync(CancellationToken cancellationToken)
    {
        var count = settings.AwaitingExecutions;
        await WaitForBacklogAsync(settings.BacklogDrainLimit, cancellationToken);
        var before = gateway.RssMiB();
        var awaitingBefore = (await CountersAsync(cancellationToken)).EnteredCount("AWAITING_WEBHOOK");
        Log($"filling up to {count:N0} executions that wait for a callback (sim/image, latency_ms 600000), for at most {settings.FillLimit.TotalSeconds} s");
        var started = Stopwatch.GetTimestamp();
        var deadline = started + (long)(settings.FillLimit.TotalSeconds * Stopwatch.Frequency);
        var fillSamples = new List<MemorySample>();
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var sampler = SampleAsync(fillSamples, started, awaitingBefore, sampling.Token);
        // Submissions get three quarters of the time; dispatch, which parks them, runs behind.
        var submitDeadline = started + (long)(settings.FillLimit.TotalSeconds * 0.75 * Stopwatch.Frequency);
        var accepted = await SubmitInBatchesAsync(count, i =>
            "{\"model\":\"sim/image\",\"idempotency_key\":\"" + _run + "-mem-" + i
            + "\",\"timeout_seconds\":3600,\"input\":{\"prompt\":\"benchmark\",\"n\":1,\"simulate\":{\"latency_ms\":600000}}}", submitDeadline, cancellationToken);

        // The dispatcher hands them to the simulator behind the submissions: wait (within the cap) until all are parked.
        long awaiting;
        while ((awaiting = (await CountersAsync(cancellationToken)).EnteredCount("AWAITING_WEBHOOK") - awaitingBefore) < accepted
            && Stopwatch.GetTimestamp() < deadline)
        {
            await Task.Delay(200, cancellationToken);
        }

        var fillSeconds = Math.Round(LoadGenerator.SecondsSince(started), 1);
        await sampling.CancelAsync();
        await sampler;
        var afterFill = gateway.RssMiB();
        Log($"{accepted:N0} accepted, {awaiting:N0} awaiting after {fillSeconds} s; sampling RSS for {settings.MemoryWindow.TotalSeconds} s");

        var samples = new List<MemorySample>();
        var window = Stopwatch.GetTimestamp();
        var seconds = (int)settings.MemoryWindow.TotalSeconds;
        for (var s = 0; s <= seconds; s++)
        {
            awaiting = (await CountersAsync(cancellationToken)).EnteredCount("AWAITING_WEBHOOK") - awaitingBefore;
            samples.Add(new MemorySample(Math.Round(LoadGenerator.SecondsSince(window), 1), gateway.RssMiB(), gateway.AnonymousRssMiB(), awaiting));
            if (s < seconds)
            {
                await Task.Delay(1000, cancellationToken);
            }
        }

        var min = samples.Min(s => s.RssMiB);
        var max = samples.Max(s => s.RssMiB);
        // Flat: the window moves less than 10 % (and under 20 MiB of noise counts as flat too).
        var flat = max - min <= Math.Max(20, 0.10 * max);
        // The growth per execution is the slope of RSS over the count parked (least squares over every sample): the heap
        // grows and is collected in steps, so a plain difference of two samples can even come out negative. Under a few
        // thousand, the growth is lost in the noise of everything else in the process.
        var slope = Slope([.. fillSamples, .. samples]);
        var enough = awaiting >= MemoryResult.FewestToProject && !double.IsNaN(slope);
        var perAwaiting = enough ? Math.Round(Math.Max(0, slope) * 1024, 2) : double.NaN;
        var projected = enough ? Math.Round(max + (Math.Max(0, slope) * Math.Max(0, 100_000 - awaiting)), 1) : double.NaN;
        return new MemoryResult(count, accepted, awaiting, fillSeconds, awaiting < count, before, afterFill, min, max, perAwaiting, projected, flat, fillSamples, samples);
    }

    /// <summary>MiB per parked execution: the least-squares slope of RSS over the count awaiting.</summary>
    private static double Slope(IReadOnlyList<MemorySample> samples)
    {
        if (samples.Count < 3)
        {
            return double.NaN;
        }

        var meanX = samples.Average(s => (double)s.Awaiting);
        var meanY = samples.Average(s => s.RssMiB);
        var sxx = samples.Sum(s => (s.Awaiting - meanX) * (s.Awaiting - meanX));
        return sxx == 0 ? double.NaN : samples.Sum(s => (s.Awaiting - meanX) * (s.RssMiB - meanY)) / sxx;
    }

    private async Task SampleAsync(List<MemorySample> samples, long started, long awaitingBefore, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var awaiting = (await CountersAsync(cancellationToken)).EnteredCount("AWAITING_WEBHOOK") - awaitingBefore;
                samples.Add(new MemorySample(Math.Round(LoadGenerator.SecondsSince(started), 1), gateway.RssMiB(), gateway.AnonymousRssMiB(), awaiting));
                await Task.Delay(1000, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // The fill is over.
        }
    }
}
