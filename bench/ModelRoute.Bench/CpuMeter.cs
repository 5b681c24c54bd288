using System.Diagnostics;
using System.Globalization;

namespace ModelRoute.Bench;

/// <summary>CPU time read once: clock ticks (user + system) of each party, and of the whole machine.</summary>
public sealed record CpuTicks(long Gateway, long Storage, long Bench, long HostBusy, long HostAll, long Timestamp);

/// <summary>
/// Cores each party kept busy over a window: the gateway, the storage server (PostgreSQL's processes; SQLite runs
/// inside the gateway, so 0), this process (the load generator and the webhook receiver), and <see cref="Other"/>, the
/// machine's busy time that none of them explains (the kernel's own work, other tenants). <see cref="Idle"/> is what was
/// left of the machine's cores.
/// </summary>
public sealed record CpuUse(double Gateway, double Storage, double Bench, double Other, double Idle)
{
    /// <summary>Milliseconds of CPU per execution at <paramref name="rate"/> executions/s, by the three named parties.</summary>
    public double MsPerExecution(double rate) => rate > 0 ? Math.Round((Gateway + Storage + Bench) / rate * 1000, 3) : double.NaN;
}

/// <summary>
/// Reads /proc so that each run shows where the machine's CPU went: when the gateway, the database and the load
/// generator share two cores, a rate is bounded by the CPU they spend per execution, and this says how much each spent.
/// </summary>
public sealed class CpuMeter(int gatewayPid, int? storageRoot = null)
{
    // USER_HZ: the unit of /proc's CPU times, 100 on every Linux architecture .NET runs on.
    public const double TicksPerSecond = 100;

    public CpuTicks Read()
    {
        var host = HostTicks(File.ReadLines("/proc/stat").First());
        return new CpuTicks(
            ProcessTicks(gatewayPid),
            storageRoot is { } root ? TreeTicks(root) : 0,
            ProcessTicks(Environment.ProcessId),
            host.Busy,
            host.All,
            Stopwatch.GetTimestamp());
    }

    public static CpuUse Between(CpuTicks before, CpuTicks after)
    {
        var seconds = Stopwatch.GetElapsedTime(before.Timestamp, after.Timestamp).TotalSeconds;
        double Cores(long ticks) => seconds > 0 ? Math.Round(ticks / TicksPerSecond / seconds, 2) : 0;
        var gateway = after.Gateway - before.Gateway;
        var storage = after.Storage - before.Storage;
        var bench = after.Bench - before.Bench;
        var busy = after.HostBusy - before.HostBusy;
        var all = after.HostAll - before.HostAll;
        return new CpuUse(Cores(gateway), Cores(storage), Cores(bench), Cores(Math.Max(0, busy - gateway - storage - bench)), Cores(all - busy));
    }

    /// <summary>utime + stime of one process (0 if it is gone).</summary>
    public static long ProcessTicks(int pid) => TryRead($"/proc/{pid}/stat") is { } stat ? ParseProcessStat(stat).Own : 0;

    /// <summary>
    /// A process and its children, and the children that have ended and were waited for (cutime + cstime): a
    /// PostgreSQL postmaster and its backends, including those of connections closed during the window.
    /// </summary>
    public static long TreeTicks(int root)
    {
        if (TryRead($"/proc/{root}/stat") is not { } stat)
        {
            return 0;
        }

        var (own, ended, _) = ParseProcessStat(stat);
        var total = own + ended;
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), out var pid) && pid != root
                && TryRead(Path.Combine(directory, "stat")) is { } child && ParseProcessStat(child) is { Parent: var parent, Own: var ticks } && parent == root)
            {
                total += ticks;
            }
        }

        return total;
    }

    /// <summary>
    /// Fields of /proc/PID/stat after the command name, which is in parentheses and may itself hold spaces and
    /// parentheses (so the last ')' ends it): the parent (4th field), utime + stime (14, 15) and cutime + cstime (16, 17).
    /// </summary>
    public static (long Own, long Ended, int Parent) ParseProcessStat(string stat)
    {
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long At(int field) => long.Parse(fields[field - 3], CultureInfo.InvariantCulture);
        return (At(14) + At(15), At(16) + At(17), (int)At(4));
    }

    /// <summary>
    /// The machine's "cpu" line of /proc/stat: busy is user, nice, system, irq and softirq; all adds idle, iowait and
    /// steal (time the hypervisor gave to someone else, which no process here used).
    /// </summary>
    public static (long Busy, long All) HostTicks(string cpuLine)
    {
        var v = cpuLine.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        long At(int i) => i < v.Length ? v[i] : 0;
        var busy = At(0) + At(1) + At(2) + At(5) + At(6);
        return (busy, busy + At(3) + At(4) + At(7));
    }

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // the process ended meanwhile
        }
    }
}
