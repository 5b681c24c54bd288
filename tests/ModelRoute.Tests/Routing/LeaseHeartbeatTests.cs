namespace ModelRoute.Tests.Routing;

/// <summary>
/// While provider calls run, the dispatcher's one renewal loop renews each call's lease between a third and a half of
/// its length after it was last written, so a call longer than the lease is not taken back; the renewals stop when the
/// call ends, and a call whose lease is found lost is stopped. Runs on both stores (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class LeaseHeartbeatTests
{
    [Fact]
    public async Task A_call_longer_than_the_lease_keeps_it_by_renewals_that_stop_when_the_call_ends()
    {
        // GatewayFactory leases for 3 s: a renewal 1 to 1.5 s after each write.
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":4500}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(1, "the lease never ran out, so no one took the call back");
        var during = store.Renewals.Where(r => r.Id == id).ToList();
        during.Count.ShouldBeGreaterThanOrEqualTo(2, "4.5 s of call, renewed 1 to 1.5 s after each write (a look every 0.5 s)");
        during.ShouldAllBe(r => r.Renewed);

        await Task.Delay(TimeSpan.FromSeconds(2));
        store.Renewals.Where(r => r.Id == id).Count().ShouldBe(during.Count, "no renewal after the call ended");
        store.Claimed.Count(c => c == id).ShouldBeLessThanOrEqualTo(1);
    }

    [Fact]
    public async Task Calls_running_at_once_each_keep_their_own_lease()
    {
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();

        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            ids.Add((await account.Client.SubmitTextAsync(simulate: """{"latency_ms":4500}""")).Json.GetProperty("id").GetString()!);
            await Task.Delay(300); // Started at different moments, so their renewals fall due at different looks.
        }

        foreach (var id in ids)
        {
            var done = await account.Client.WaitForTerminalAsync(id);
            done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
            done.GetProperty("attempts").GetInt32().ShouldBe(1, $"{id}'s lease never ran out");
            store.Renewals.Count(r => r.Id == id && r.Renewed).ShouldBeGreaterThanOrEqualTo(2, id);
        }
    }

    [Fact]
    public async Task A_call_whose_lease_is_found_lost_is_stopped_and_writes_no_outcome()
    {
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();
        var lost = 0;
        store.LoseLease = _ => Interlocked.Increment(ref lost) == 1; // Only the first attempt's first renewal.

        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":4500}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id, 30);

        // The first call stopped at its lost renewal; its lease ran out and the work went to a second attempt.
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        store.Transitions.Count(t => t.ExecutionId == id && t.To == ExecutionStatus.Completed)
            .ShouldBe(1, "the stopped call asked for no outcome of its own: only the second attempt's completion");
    }
}
