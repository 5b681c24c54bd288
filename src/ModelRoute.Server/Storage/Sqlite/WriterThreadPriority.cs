using System.Runtime.InteropServices;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// Every durable write waits for the one writer thread, so when the cores are busy it should run
/// before request and background threads, which can all wait a little. .NET ignores thread
/// priorities on Linux, so the thread's nice value is lowered directly. Lowering it needs
/// CAP_SYS_NICE (root has it); without that the call fails and the thread keeps the default.
/// </summary>
internal static class WriterThreadPriority
{
    private const int PrioProcess = 0;
    private const int Nice = -10;

    public static void Raise()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            // With PRIO_PROCESS, a thread id names just that thread on Linux.
            _ = SetPriority(PrioProcess, GetThreadId(), Nice);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc: the default priority will do.
        }
    }

    // DllImport, not LibraryImport: these take and return plain ints, and LibraryImport would need unsafe code on.
    [DllImport("libc", EntryPoint = "setpriority")]
    private static extern int SetPriority(int which, int who, int prio);

    [DllImport("libc", EntryPoint = "gettid")]
    private static extern int GetThreadId();
}
