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

    public async Task DisposeAsync()
    {
        await Receiver.DisposeAsync();
        await Gateway.DisposeAsync();
    }
}
