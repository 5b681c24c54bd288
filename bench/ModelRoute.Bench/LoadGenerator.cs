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

    /// <param name="send">Sends request <c>i</c>; true when the answer was the expected one.</param>
    /// <param name="scheduled">Optional: receives each request's scheduled Stopwatch timestamp.</param>
    public static async Task<RunResult> RunAsync(string name, double rate, TimeSpan duration, Func<int, Task<bool>> send, long[]? scheduled = null)
    {
        var count = Math.Max(1, (int)Math.Round(rate * duration.TotalSeconds));
        var latencies = new double[count];
        var ok = new bool[count];
        var tasks = new Task[count];
        var start = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 50;
        double maxLagMs = 0;

        // A dedicated thread keeps the schedule even when the thread pool is busy with answers.
        var dispatcher = new Thread(() =>
        {
            for (var i = 0; i < count; i++)
            {
                var due = start + (long)(i * (Stopwatch.Frequency / rate));
                scheduled?.SetValue(due, i);
                long now;
                while ((now = Stopwatch.GetTimestamp()) < due)
                {
                    Thread.Sleep(Ms(due - now) >= 2 ? 1 : 0);
                }

                maxLagMs = Math.Max(maxLagMs, Ms(now - due));
                var index = i;
                tasks[index] = Task.Run(async () =>
                {
                    bool success;
                    try
                    {
                        success = await send(index);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException or InvalidOperationException)
                    {
                        success = false;
                    }

                    latencies[index] = Ms(Stopwatch.GetTimestamp() - due);
                    ok[index] = success;
                });
            }
        })
        { IsBackground = true, Name = "open-loop dispatcher", Priority = ThreadPriority.AboveNormal };
        dispatcher.Start();
        await Task.Run(dispatcher.Join);
        await Task.WhenAll(tasks);
        var end = Stopwatch.GetTimestamp();

        var errors = ok.Count(s => !s);
        var stats = LatencyStats.From(latencies);
        return new RunResult(name, rate, duration.TotalSeconds, count, count - errors, errors, stats,
            Math.Round(count / (Ms(end - start) / 1000.0), 1), Math.Round(maxLagMs, 2));
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

/// <summary>One open-loop run: what was offered, what came back, and the latency of every request.</summary>
public sealed record RunResult(string Name, double Rate, double Seconds, int Sent, int Ok, int Errors, LatencyStats Latency, double CompletedPerSecond, double MaxDispatchLagMs)
{
    public bool MeetsP99(double limitMs) => Errors == 0 && Latency.P99Ms < limitMs;
}
