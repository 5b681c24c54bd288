using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Billing;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// Work waiting when the gateway starts (after a restart, say) is dispatched only once the host has
/// started, and so the server listens: a callback URL is made from its bound address, and one made
/// while Kestrel was still binding came out empty (seen once in the SQLite chaos test).
/// </summary>
public sealed class DispatchAtStartTests
{
    [Fact]
    public async Task A_callback_execution_waiting_at_start_is_left_alone_until_the_host_has_started_and_then_completes()
    {
        var waiting = new WaitingWork();
        await using var gateway = new GatewayFactory(services: services => services.AddSingleton<IHostedService>(sp => waiting.Bind(sp)));
        using var admin = gateway.Admin(); // Starts the host: the hosted service above stores the execution and holds the server back.

        var store = gateway.Services.GetRequiredService<IExecutionStore>();
        Execution? execution = null;
        await Eventually.HoldsAsync(async () => (execution = await store.GetAsync(waiting.ExecutionId!, null, CancellationToken.None)) is { } e && e.Status.IsTerminal(), "the execution ended");

        waiting.StatusWhileStarting.ShouldBe(ExecutionStatus.Pending, "nothing is dispatched before the host has started");
        execution!.Status.ShouldBe(ExecutionStatus.Completed, execution.Error?.Message);
    }

    /// <summary>Stores a sim/image execution (the callback path) while the host starts, then keeps the server from listening for a moment.</summary>
    private sealed class WaitingWork
    {
        public string? ExecutionId { get; private set; }

        public ExecutionStatus? StatusWhileStarting { get; private set; }

        public IHostedService Bind(IServiceProvider services) => new Starter(this, services);

        private sealed class Starter(WaitingWork work, IServiceProvider services) : IHostedService
        {
            public async Task StartAsync(CancellationToken cancellationToken)
            {
                var time = services.GetRequiredService<TimeProvider>();
                var ids = services.GetRequiredService<IdGenerator>();
                var accounts = services.GetRequiredService<IAccountStore>();
                var now = time.GetUtcNow();
                var account = ids.New("acct");
                await accounts.CreateAccountAsync(account, "early", now, cancellationToken);
                await accounts.CreditAsync(ids.New("txn"), account, 10_000_000, null, now, cancellationToken);
                var id = ids.New("exe");
                var store = services.GetRequiredService<IExecutionStore>();
                await store.SubmitAsync(
                    new NewExecution(id, account, "sim/image", "early-1", "hash", """{"prompt":"a lighthouse","simulate":{"latency_ms":50}}""",
                        20_000, 24_000, new Price(PerImage: 20_000), null, null, null, 300, null, now, now.AddMinutes(5)),
                    cancellationToken);
                work.ExecutionId = id;
                // The host has not started while this runs: a dispatcher that did not wait would take the execution now.
                await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken);
                work.StatusWhileStarting = (await store.GetAsync(id, null, cancellationToken))!.Status;
            }

            public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        }
    }
}
