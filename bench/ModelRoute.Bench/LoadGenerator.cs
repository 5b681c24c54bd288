using System.Diagnostics;

namespace ModelRoute.Bench;

/// <summary>
/// Open-loop load: a fixed schedule of send times at <c>rate</c> per second. Each request starts at its scheduled
/// time on its own task whatever earlier requests are doing, and its latency runs from the scheduled time, so a
/// gateway (or a generator) that falls behind shows as queueing instead of a lower offered rate.
/// </summary>
public static class LoadGenerator
{
    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    public static double SecondsSince(long timestamp) => Ms(Stopwatch.GetTimestamp() - timestamp) / 1000.0;

    /// <param name="send">Sends request <c>i</c>; true when the answer was the expected one.</param>
    /// <param name="drainLimit">
    /// How long requests still outstanding after the last scheduled send may take; then they are cancelled and count
    /// as errors, so a stalled gateway cannot make a run last much longer than its schedule.
    /// </param>
    /// <param name="scheduled">Optional: receives each request's scheduled Stopwatch timestamp.</param>
    public static async Task<RunResult> RunAsync(
        string name, double rate, TimeSpan duration, TimeSpan drainLimit, Func<int, CancellationToken, Task<bool>> send, long[]? scheduled = null)
    {
        var count = Math.Max(1, (int)Math.Round(rate * duration.TotalSeconds));
        var latencies = new double[count];
        var ok = new bool[count];
        var tasks = new Task[count];
        using var abandon = new CancellationTokenSource();
        var start = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 50);
        double maxLagMs = 0;

        // A dedicated thread keeps the schedule even when the thread pool is busy with answers.
        var dispatcher = new Thread(() =>
        {
            for (var i = 0; i < count; i++)
            {
                var due = start + (long)(i * (Stopwatch.Frequency / rate));
                scheduled?.SetValue(due, i);
                long now;
                // Sleeps, never spins: on 2 cores a spinning generator takes a core from the gateway it measures.
                // A request may so start up to about a millisecond late; its latency still counts from its due time.
                while ((now = Stopwatch.GetTimestamp()) < due)
                {
                    Thread.Sleep(1);
                }

                maxLagMs = Math.Max(maxLagMs, Ms(now - due));
                var index = i;
                tasks[index] = Task.Run(() => SendOneAsync(send, index, due, latencies, ok, abandon.Token));
            }
        })
        { IsBackground = true, Name = "open-loop dispatcher", Priority = ThreadPriority.AboveNormal };
        dispatcher.Start();
        await Task.Run(dispatcher.Join);
        var all = Task.WhenAll(tasks);
        var abandoned = 0;
        if (await Task.WhenAny(all, Task.Delay(drainLimit)) != all)
        {
            abandoned = tasks.Count(t => !t.IsCompleted);
            await abandon.CancelAsync();
            await all;
        }

        var end = Stopwatch.GetTimestamp();
        var errors = ok.Count(s => !s);
        return new RunResult(name, rate, duration.TotalSeconds, count, count - errors, errors, abandoned, LatencyStats.From(latencies),
            Math.Round(count / (Ms(end - start) / 1000.0), 1), Math.Round(maxLagMs, 2), null);
    }

    /// <summary>One request: its latency runs from its due time, and a failure to send counts as an error.</summary>
    private static async Task SendOneAsync(Func<int, CancellationToken, Task<bool>> send, int index, long due, double[] latencies, bool[] ok, CancellationToken abandon)
    {
        bool success;
        try
        {
            success = await send(index, abandon);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException or InvalidOperationException)
        {
            success = false;
        }

        latencies[index] = Ms(Stopwatch.GetTimestamp() - due);
        ok[index] = success;
    }
}

public sealed record LatencyStats(double P50Ms, double P90Ms, double P99Ms, double P999Ms, double MaxMs, double MeanMs, int Samples)
{
    public static LatencyStats From(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
        {
            return new LatencyStats(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0);
        }

        var sorted = samples.Order().ToArray();
        double At(double p) => Math.Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)], 2);
        return new LatencyStats(At(0.50), At(0.90), At(0.99), At(0.999), Math.Round(sorted[^1], 2), Math.Round(sorted.Average(), 2), sorted.Length);
    }
}

/// <summary>
/// How far the gateway's background dispatch kept up with a submit run, from its <c>/metrics</c> counters:
/// executions it finished during the run, those still waiting at the end of the schedule, and how long the rest
/// took to finish (null when they had not within the wait allowed). <see cref="Approximate"/>: the gateway was too busy
/// to answer <c>/metrics</c> in time at least once, so some figures are from an earlier reading.
/// </summary>
public sealed record DispatchProgress(
    long Accepted, long FinishedDuringRun, long PendingAtEnd, long UnfinishedAtEnd, double? DrainSeconds, long UnfinishedAfterWait, long UnfinishedAtStart, bool Approximate);

/// <summary>One open-loop run: what was offered, what came back, and the latency of every request.</summary>
public sealed record RunResult(
    string Name, double Rate, double Seconds, int Sent, int Ok, int Errors, int Abandoned, LatencyStats Latency, double CompletedPerSecond, double MaxDispatchLagMs,
    DispatchProgress? Dispatch)
{
    /// <summary>Where the machine's CPU went from the first send to the last answer (null: not measured).</summary>
    public CpuUse? Cpu { get; init; }

    public bool MeetsP99(double limitMs) => Errors == 0 && Latency.P99Ms < limitMs;
}
