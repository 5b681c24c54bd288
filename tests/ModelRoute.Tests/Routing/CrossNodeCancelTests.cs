using System.Diagnostics;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// Two nodes on one PostgreSQL database: a cancel made through one node stops the provider call running on the other
/// within a second, through the change feed both nodes listen to, not at the call's next lease renewal (a third of a
/// 30 s lease here, so the renewal alone could not do it).
/// </summary>
public sealed class CrossNodeCancelTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private TwoPostgresNodes _nodes = null!;

    private GatewayFactory NodeA => _nodes.A;

    private GatewayFactory NodeB => _nodes.B;

    public async Task InitializeAsync() => _nodes = await TwoPostgresNodes.StartAsync(
        "xcancel",
        new Dictionary<string, string?>
        {
            ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:30",
        });

    public Task DisposeAsync() => _nodes.DisposeAsync().AsTask();

    [Fact]
    public async Task A_cancel_made_on_one_node_stops_the_call_running_on_the_other_within_a_second()
    {
        using var account = await NodeA.CreateAccountAsync();
        using var onB = NodeB.WithBearer(account.Key);
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}""", extra: ""","timeout_seconds":300""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;

        var onNodeA = NodeA.Services.GetRequiredService<InFlightExecutions>();
        var onNodeB = NodeB.Services.GetRequiredService<InFlightExecutions>();
        await Eventually.HoldsAsync(() => onNodeA.IsRunning(id) || onNodeB.IsRunning(id), "the provider call runs on a node");
        var (running, canceller) = onNodeA.IsRunning(id) ? (onNodeA, onB) : (onNodeB, account.Client);
        (await account.Client.BalanceAsync()).Held.ShouldBeGreaterThan(0);

        var sending = Stopwatch.StartNew();
        var cancelled = await canceller.PostJsonAsync($"/v1/executions/{id}/cancel", "{}");
        cancelled.Status.ShouldBe(202, cancelled.Body);
        var clock = Stopwatch.StartNew(); // The cancel is made (committed) once it is answered.
        await Eventually.HoldsAsync(() => !running.IsRunning(id), "the call on the other node stopped", seconds: 30);
        output.WriteLine($"The call on the other node stopped {clock.Elapsed.TotalMilliseconds:F0} ms after the cancel was answered ({sending.Elapsed.TotalMilliseconds:F0} ms after it was sent).");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1), "the call must stop at once, not at its next lease renewal");

        var final = await account.Client.WaitForTerminalAsync(id);
        final.GetProperty("status").GetString().ShouldBe("CANCELLED", final.ToString());
        (await account.Client.BalanceAsync()).Held.ShouldBe(0, "the hold is released");
        (await onB.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
    }
}
