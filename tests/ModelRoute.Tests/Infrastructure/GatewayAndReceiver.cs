namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// For test classes that need a gateway with their own settings and a local webhook receiver: xUnit makes one of each
/// per test and disposes of both after it.
/// </summary>
public abstract class GatewayAndReceiver(IDictionary<string, string?>? settings = null) : IAsyncLifetime
{
    protected GatewayFactory Gateway { get; } = new(settings);

    protected WebhookReceiver Receiver { get; private set; } = null!;

    public async Task InitializeAsync() => Receiver = await WebhookReceiver.StartAsync();

    /// <summary>
    /// Runs <paramref name="test"/>; if it fails, the failure carries the gateway's warnings and errors and its last
    /// log lines, so a failure seen once in CI can be read afterwards (the logs are not in the test output otherwise).
    /// </summary>
    protected async Task WithGatewayLogOnFailureAsync(Func<Task> test)
    {
        try
        {
            await test();
        }
        catch (Exception ex)
        {
            var lines = Gateway.Logs.Lines.ToArray();
            var notable = lines.Where(l => l.StartsWith("Warning ", StringComparison.Ordinal) || l.StartsWith("Error ", StringComparison.Ordinal) || l.StartsWith("Critical ", StringComparison.Ordinal)).TakeLast(40);
            throw new Xunit.Sdk.XunitException(
                $"{ex.Message}\n--- gateway warnings and errors:\n{string.Join('\n', notable)}\n--- gateway's last 80 log lines:\n{string.Join('\n', lines.TakeLast(80))}\n--- original failure:\n{ex}");
        }
    }

    public async Task DisposeAsync()
    {
        await Receiver.DisposeAsync();
        await Gateway.DisposeAsync();
    }
}
