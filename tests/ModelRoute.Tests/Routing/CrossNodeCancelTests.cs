using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Routing;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// Two nodes on one PostgreSQL database: a cancel made through one node stops the provider call running on the other
/// within a second, through the change feed both nodes listen to, not at the call's next lease renewal (a third of a
/// 30 s lease here, so the renewal alone could not do it).
/// </summary>
public sealed class CrossNodeCancelTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;
    private string _database = null!;
    private GatewayFactory _nodeA = null!;
    private GatewayFactory _nodeB = null!;

    public async Task InitializeAsync()
    {
        _cluster = await PostgresCluster.SharedAsync();
        _database = await _cluster.CreateDatabaseAsync("xcancel");
        var settings = new Dictionary<string, string?>
        {
            ["ModelRoute:Store:Kind"] = "postgres",
            ["ModelRoute:Store:ConnectionString"] = _cluster.ConnectionString(_database),
            ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:30",
        };
        _nodeA = new GatewayFactory(settings);
        _nodeB = new GatewayFactory(settings);
        _nodeA.StartServer();
        _nodeB.StartServer();
    }

    public async Task DisposeAsync()
    {
        await _nodeA.DisposeAsync();
        await _nodeB.DisposeAsync();
        await _cluster.DropDatabaseAsync(_database);
    }

    [Fact]
    public async Task A_cancel_made_on_one_node_stops_the_call_running_on_the_other_within_a_second()
    {
        using var account = await _nodeA.CreateAccountAsync();
        using var onB = _nodeB.WithBearer(account.Key);
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}""", extra: ""","timeout_seconds":300""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;

        var onNodeA = _nodeA.Services.GetRequiredService<InFlightExecutions>();
        var onNodeB = _nodeB.Services.GetRequiredService<InFlightExecutions>();
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
