using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Storage;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// Work waiting when the gateway starts (after a restart, say) completes on the callback path: the
/// dispatcher waits for the server to listen, since a callback URL is made from its bound address.
/// (The race this guards against, seen once in the SQLite chaos test, is not forced here: the
/// server's address list is only briefly empty while Kestrel binds.)
/// </summary>
public sealed class DispatchAtStartTests
{
    [Fact]
    public async Task A_callback_execution_waiting_at_start_is_dispatched_after_the_server_listens_and_completes()
    {
        var waiting = new WaitingWork();
        await using var gateway = new GatewayFactory(services: services => services.AddSingleton<IHostedService>(sp => waiting.Bind(sp)));
        using var admin = gateway.Admin(); // Starts the host: the hosted service above stores the execution and holds the server back.

        var store = gateway.Services.GetRequiredService<IExecutionStore>();
        Execution? execution = null;
        await Eventually.HoldsAsync(async () => (execution = await store.GetAsync(waiting.ExecutionId!, null, CancellationToken.None)) is { } e && e.Status.IsTerminal(), "the execution ended");

        execution!.Status.ShouldBe(ExecutionStatus.Completed, execution.Error?.Message);
    }

    /// <summary>Stores a sim/image execution (the callback path) while the host starts, then keeps the server from listening for a moment.</summary>
    private sealed class WaitingWork
    {
        public string? ExecutionId { get; private set; }

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
                await services.GetRequiredService<IExecutionStore>().SubmitAsync(
                    new NewExecution(id, account, "sim/image", "early-1", "hash", """{"prompt":"a lighthouse","simulate":{"latency_ms":50}}""",
                        20_000, 24_000, new Price(PerImage: 20_000), null, null, null, 300, null, now, now.AddMinutes(5)),
                    cancellationToken);
                work.ExecutionId = id;
                await Task.Delay(TimeSpan.FromMilliseconds(500), cancellationToken); // The dispatcher would run meanwhile.
            }

            public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
        }
    }
}
