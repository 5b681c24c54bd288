namespace ModelRoute.Server.Providers;

/// <summary>
/// Asks a provider to stop a job that the gateway has ended (cancel or expiry), in the
/// background: the execution's state is already final, so this only saves the provider's work.
/// </summary>
public sealed partial class ProviderCancellation(ProviderRegistry providers, ILogger<ProviderCancellation> logger)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public void Request(Execution execution)
    {
        if (execution.ProviderJobId is null || providers.CallFor(execution) is not ({ } provider, { } call))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            using var timeout = new CancellationTokenSource(Timeout);
            try
            {
                await provider.Adapter.CancelAsync(call, timeout.Token);
            }
            catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
            {
                LogCancelFailed(logger, execution.Id, ex.GetType().Name);
            }
        });
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Asking the provider to cancel {ExecutionId} failed ({Error})")]
    private static partial void LogCancelFailed(ILogger logger, string executionId, string error);
}
