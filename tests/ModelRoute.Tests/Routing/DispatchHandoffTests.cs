using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// A fresh submission goes to this node's dispatcher already leased, and starts without a claim;
/// what the dispatcher has no room for waits unleased and is claimed as before. Runs on both stores
/// (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class DispatchHandoffTests
{
    [Fact]
    public async Task Fresh_submissions_complete_without_being_claimed()
    {
        await using var gateway = new GatewayFactory(services: CountClaims);
        using var account = await gateway.CreateAccountAsync();

        for (var i = 0; i < 5; i++)
        {
            var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
            var done = await account.Client.WaitForTerminalAsync(id);
            done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        Claims(gateway).ShouldBeEmpty("each submission was handed to the dispatcher, which started it without a claim");
    }

    [Fact]
    public async Task A_finished_call_does_not_send_the_dispatcher_looking_for_work()
    {
        // Polling slowed right down, so that any look for due work during the run was caused by something else. Each
        // finished call used to wake the claim loop, which found nothing: a wasted claim (a write) per execution.
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:Dispatch:PollInterval"] = "00:01:00" }, CountClaims);
        using var account = await gateway.CreateAccountAsync();
        var first = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(first)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        var before = RecordingExecutionStore.Of(gateway).ClaimCalls;

        for (var i = 0; i < 10; i++)
        {
            var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
            (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        (RecordingExecutionStore.Of(gateway).ClaimCalls - before).ShouldBeLessThan(3, "ten handed-over executions ran and finished with nothing else due");
    }

    [Fact]
    public async Task Submissions_beyond_the_dispatchers_room_are_claimed_and_complete()
    {
        // One place in flight: the first submission takes it, the others are stored unleased for a claim.
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:Dispatch:MaxInFlight"] = "1" }, CountClaims);
        using var account = await gateway.CreateAccountAsync();

        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add((await account.Client.SubmitTextAsync(simulate: """{"latency_ms":500}""")).Json.GetProperty("id").GetString()!);
        }

        foreach (var id in ids)
        {
            (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        Claims(gateway).ShouldNotBeEmpty("a submission the dispatcher had no room for waits for a claim");
        Claims(gateway).ShouldNotContain(ids[0], "the first went straight to the dispatcher");
        Claims(gateway).Distinct().Count().ShouldBe(Claims(gateway).Count, "nothing is claimed twice");
    }

    [Fact]
    public async Task A_dispatcher_that_stops_gives_back_what_was_handed_to_it_and_not_started()
    {
        // One place, held by a slow execution: a hand-over queued behind it cannot start before the dispatcher stops.
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:Dispatch:MaxInFlight"] = "1" });
        using var account = await gateway.CreateAccountAsync();
        var slow = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":10000}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(slow, "PROCESSING");

        // Leased to this node and queued for its dispatcher, as a submission stored while it had room would be (offered
        // without a reservation, which the full dispatcher would refuse; its place count is of no use once it stops).
        var queuedId = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        var store = gateway.Services.GetRequiredService<IExecutionStore>();
        var node = gateway.Services.GetRequiredService<NodeIdentity>();
        var now = gateway.Services.GetRequiredService<TimeProvider>().GetUtcNow();
        var queued = (await store.ClaimDueAsync(node.Id, 1, now, now + TimeSpan.FromMinutes(5), CancellationToken.None)).ShouldHaveSingleItem();
        queued.Id.ShouldBe(queuedId);
        gateway.Services.GetRequiredService<DispatchHandoff>().Offer(queued);

        await gateway.Services.GetServices<IHostedService>().OfType<Dispatcher>().Single().StopAsync(CancellationToken.None);

        var after = (await store.GetAsync(queuedId, null, CancellationToken.None)).ShouldNotBeNull();
        after.Status.ShouldBe(ExecutionStatus.Pending);
        after.LeaseOwner.ShouldBeNull("given back on the way out, not left leased until the lease runs out");
        after.Attempts.ShouldBe(0);
    }

    private static IReadOnlyList<string> Claims(GatewayFactory gateway) => [.. RecordingExecutionStore.Of(gateway).Claimed];

    private static void CountClaims(IServiceCollection services) => RecordingExecutionStore.Install(services);
}
