using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// While a provider call runs, the dispatcher renews the execution's lease every third of its length, so a call longer
/// than the lease is not taken back; the renewals stop when the call ends. Runs on both stores (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class LeaseHeartbeatTests
{
    [Fact]
    public async Task A_call_longer_than_the_lease_keeps_it_by_renewals_that_stop_when_the_call_ends()
    {
        // GatewayFactory leases for 3 s: a renewal about every second.
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":4500}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(1, "the lease never ran out, so no one took the call back");
        var during = store.Renewals.Where(r => r.Id == id).ToList();
        during.Count.ShouldBeGreaterThanOrEqualTo(3, "4.5 s of call at a renewal a second");
        during.ShouldAllBe(r => r.Renewed);

        await Task.Delay(TimeSpan.FromSeconds(2));
        store.Renewals.Where(r => r.Id == id).Count().ShouldBe(during.Count, "no renewal after the call ended");
        store.Claimed.Count(c => c == id).ShouldBeLessThanOrEqualTo(1);
    }
}
