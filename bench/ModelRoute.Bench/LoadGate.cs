using System.Globalization;

namespace ModelRoute.Bench;

/// <summary>The host's load average over 1, 5 and 15 minutes (<c>/proc/loadavg</c>).</summary>
public sealed record LoadAverage(double One, double Five, double Fifteen)
{
    /// <summary>The first three fields of <c>/proc/loadavg</c>; null when the text is not that.</summary>
    public static LoadAverage? Parse(string? text)
    {
        var fields = (text ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return fields.Length >= 3
            && double.TryParse(fields[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var one)
            && double.TryParse(fields[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var five)
            && double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var fifteen)
            ? new LoadAverage(one, five, fifteen)
            : null;
    }

    /// <summary>This host's, or null when <c>/proc/loadavg</c> cannot be read.</summary>
    public static LoadAverage? ReadProc()
    {
        try
        {
            return Parse(File.ReadAllText("/proc/loadavg"));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>
/// The load a store run started under: the load averages (NaN when unreadable), how long the gate waited for them, and
/// whether it gave up at its bound with the 1-minute load still at or above the limit (the run started above it).
/// </summary>
public sealed record LoadRecord(double One, double Five, double Fifteen, double WaitedSeconds, bool BoundReached, bool Unreadable);

/// <summary>
/// Holds a store run back until the host's 1-minute load average is below <c>--max-load</c>, polling every
/// <see cref="PollInterval"/>, for at most <c>--load-wait</c>: a run measured while other work shares the cores
/// measures that work too. It never blocks on a load it cannot read.
/// </summary>
public sealed class LoadGate(Func<LoadAverage?> read, TimeProvider time, double maxLoad, TimeSpan waitBound, Action<string> say)
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(5);

    public const double DefaultMaxLoad = 1.5;

    public const int DefaultWaitSeconds = 600;

    public async Task<LoadRecord> WaitAsync(string run, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        for (var polls = 0; ; polls++)
        {
            var load = read();
            var waited = time.GetElapsedTime(started);
            if (load is null)
            {
                say($"{run}: the load average cannot be read; starting without waiting");
                return new LoadRecord(double.NaN, double.NaN, double.NaN, Seconds(waited), false, true);
            }

            if (load.One < maxLoad || waited >= waitBound)
            {
                var bound = load.One >= maxLoad;
                if (bound || polls > 0)
                {
                    say(bound
                        ? $"{run}: load average {Show(load)} still at or above {Show(maxLoad)} after {Show(Seconds(waited))} s (the bound); starting anyway"
                        : $"{run}: load average {Show(load)} below {Show(maxLoad)} after waiting {Show(Seconds(waited))} s");
                }

                return new LoadRecord(load.One, load.Five, load.Fifteen, Seconds(waited), bound, false);
            }

            if (polls == 0)
            {
                say($"{run}: load average {Show(load)}, at or above {Show(maxLoad)}: waiting up to {Show(waitBound.TotalSeconds)} s for it to fall");
            }

            var left = waitBound - waited;
            await Task.Delay(left < PollInterval ? left : PollInterval, time, cancellationToken).ConfigureAwait(false);
        }
    }

    private static double Seconds(TimeSpan waited) => Math.Round(waited.TotalSeconds, 1);

    private static string Show(LoadAverage load) => $"{Show(load.One)} {Show(load.Five)} {Show(load.Fifteen)}";

    private static string Show(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
