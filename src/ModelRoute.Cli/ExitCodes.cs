namespace ModelRoute.Cli;

/// <summary>What scripts can rely on (docs/clients.md#exit-codes).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int ExecutionNotCompleted = 1;
    public const int Usage = 2;
    public const int ApiError = 3;
    public const int ConnectionError = 4;
    public const int WaitTimedOut = 5;
    public const int Interrupted = 130;
}

/// <summary>A mistake in the command line or its inputs: exit 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
