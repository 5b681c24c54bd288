using Microsoft.Extensions.DependencyInjection;
using ModelRoute.Tests.Infrastructure;

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

    private static IReadOnlyList<string> Claims(GatewayFactory gateway) => [.. RecordingExecutionStore.Of(gateway).Claimed];

    private static void CountClaims(IServiceCollection services) => RecordingExecutionStore.Install(services);
}
