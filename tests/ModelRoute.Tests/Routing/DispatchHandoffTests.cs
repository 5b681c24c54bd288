using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Storage;
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

    private static IReadOnlyList<string> Claims(GatewayFactory gateway) =>
        [.. ((ClaimCountingStore)gateway.Services.GetRequiredService<IExecutionStore>()).Claimed];

    /// <summary>Wraps the gateway's own execution store to see what the dispatcher claims.</summary>
    private static void CountClaims(IServiceCollection services)
    {
        var original = services.Last(d => d.ServiceType == typeof(IExecutionStore));
        services.Remove(original);
        services.AddSingleton<IExecutionStore>(sp => new ClaimCountingStore((IExecutionStore)original.ImplementationFactory!(sp)));
    }

    private sealed class ClaimCountingStore(IExecutionStore inner) : IExecutionStore
    {
        public ConcurrentQueue<string> Claimed { get; } = new();

        public async Task<IReadOnlyList<Execution>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
        {
            var claimed = await inner.ClaimDueAsync(owner, max, now, leaseUntil, cancellationToken);
            foreach (var execution in claimed)
            {
                Claimed.Enqueue(execution.Id);
            }

            return claimed;
        }

        public Task<SubmitOutcome> SubmitAsync(NewExecution execution, CancellationToken cancellationToken) => inner.SubmitAsync(execution, cancellationToken);

        public Task<Execution?> GetAsync(string id, string? accountId, CancellationToken cancellationToken) => inner.GetAsync(id, accountId, cancellationToken);

        public Task<Execution?> FindByIdempotencyKeyAsync(string accountId, string idempotencyKey, CancellationToken cancellationToken) =>
            inner.FindByIdempotencyKeyAsync(accountId, idempotencyKey, cancellationToken);

        public Task<IReadOnlyList<Execution>> ListAsync(string accountId, ExecutionQuery query, CancellationToken cancellationToken) => inner.ListAsync(accountId, query, cancellationToken);

        public Task<Execution?> TransitionAsync(ExecutionTransition transition, CancellationToken cancellationToken) => inner.TransitionAsync(transition, cancellationToken);

        public Task ReleaseClaimAsync(string id, string owner, DateTimeOffset notBefore, CancellationToken cancellationToken) =>
            inner.ReleaseClaimAsync(id, owner, notBefore, cancellationToken);

        public Task<bool> RenewLeaseAsync(string id, string owner, DateTimeOffset leaseUntil, CancellationToken cancellationToken) =>
            inner.RenewLeaseAsync(id, owner, leaseUntil, cancellationToken);

        public Task<IReadOnlyList<Execution>> ClaimDuePollsAsync(int max, DateTimeOffset now, DateTimeOffset nextPollAt, CancellationToken cancellationToken) =>
            inner.ClaimDuePollsAsync(max, now, nextPollAt, cancellationToken);

        public Task<IReadOnlyList<string>> ListExpiredAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) => inner.ListExpiredAsync(now, max, cancellationToken);

        public Task<IReadOnlyList<Execution>> ListAbandonedAsync(DateTimeOffset now, int max, CancellationToken cancellationToken) => inner.ListAbandonedAsync(now, max, cancellationToken);

        public Task<IReadOnlyList<string>> PurgeAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) => inner.PurgeAsync(endedBefore, max, cancellationToken);

        public Task<IReadOnlyList<ExecutionEvent>> ListEventsAsync(string executionId, long afterSequence, CancellationToken cancellationToken) =>
            inner.ListEventsAsync(executionId, afterSequence, cancellationToken);
    }
}
