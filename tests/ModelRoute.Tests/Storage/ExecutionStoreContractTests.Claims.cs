using ModelRoute.Server.Billing;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Storage;

/// <summary>Claiming, leases and the hand-over to a node's own dispatcher, on every store.</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task Claiming_leases_due_pending_executions_to_the_owner()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        var claimed = await Executions.ClaimDueAsync("node-a", 10, Now, Now + Lease, None);

        var execution = claimed.ShouldHaveSingleItem();
        execution.Id.ShouldBe(submitted.Id);
        execution.Status.ShouldBe(ExecutionStatus.Pending);
        execution.LeaseOwner.ShouldBe("node-a");
        execution.LeaseExpiresAt.ShouldBe(Now + Lease);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await Executions.ListEventsAsync(submitted.Id, 0, None)).Count.ShouldBe(1, "a claim is not a status change");
    }

    [Fact]
    public async Task A_submission_handed_to_its_nodes_dispatcher_is_stored_leased_to_that_node_and_no_other_claims_it_before_the_lease_runs_out()
    {
        var account = await NewAccountAsync(1_000_000);
        var node = new NodeIdentity();
        var dispatch = new DispatchHandoff(new SubmissionLoad());
        using var slots = new SemaphoreSlim(8);
        dispatch.Open(slots);
        var nodeStore = CreateNodeStore(Time, node, dispatch);

        var submitted = (await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!;

        dispatch.Reader.TryRead(out var handed).ShouldBeTrue("a fresh submission goes to the dispatcher at once");
        handed!.Id.ShouldBe(submitted.Id);
        handed.LeaseOwner.ShouldBe(node.Id);
        var stored = (await Executions.GetAsync(submitted.Id, null, None))!;
        stored.Status.ShouldBe(ExecutionStatus.Pending);
        stored.LeaseOwner.ShouldBe(node.Id);
        stored.LeaseExpiresAt.ShouldBe(Now + Lease);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("it is this node's to start");

        // If the node died before starting it, the lease runs out and any node takes it.
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem().Id.ShouldBe(submitted.Id);
    }

    [Fact]
    public async Task Other_nodes_are_told_of_each_commit_but_a_submission_handed_to_this_nodes_own_dispatcher()
    {
        var account = await NewAccountAsync(1_000_000);
        var dispatch = new DispatchHandoff(new SubmissionLoad());
        using var slots = new SemaphoreSlim(8);
        dispatch.Open(slots);
        var told = new RecordedBroadcast();
        var nodeStore = CreateNodeStore(Time, new NodeIdentity(), dispatch, told);

        var handed = (await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!;
        dispatch.Reader.TryRead(out _).ShouldBeTrue();
        told.Changes.ShouldBeEmpty("no other node could claim a submission this node's dispatcher has");

        dispatch.Close();
        var waiting = (await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!;
        (await nodeStore.TransitionAsync(ExecutionTransition.Cancel(handed.Id, account), None)).ShouldNotBeNull();
        (await nodeStore.TransitionAsync(ExecutionTransition.Cancel(handed.Id, account), None)).ShouldBeNull();

        told.Changes.Select(c => $"{c.Id} {c.Status}").ShouldBe(
            [$"{waiting.Id} {ExecutionStatus.Pending}", $"{handed.Id} {ExecutionStatus.Cancelled}"], "each commit once; nothing for a move that did not apply");
        told.Webhooks.ShouldBe(0, "no delivery was written");
    }

    /// <summary>What a node told the others, in order.</summary>
    private sealed class RecordedBroadcast : IChangeBroadcast
    {
        public ConcurrentQueue<(string Id, ExecutionStatus Status)> Changes { get; } = new();

        public int Webhooks { get; private set; }

        public void ExecutionChanged(string executionId, ExecutionStatus status) => Changes.Enqueue((executionId, status));

        public void WebhooksWritten() => Webhooks++;

        public void AccountChanged(string accountId)
        {
        }

        public void KeyRevoked(string keyId)
        {
        }
    }

    [Fact]
    public async Task Submissions_not_stored_free_their_place_with_the_dispatcher_and_submissions_beyond_its_room_wait_unleased_for_a_claim()
    {
        var account = await NewAccountAsync(1_000_000);
        var dispatch = new DispatchHandoff(new SubmissionLoad());
        using var slots = new SemaphoreSlim(DispatchHandoff.Capacity * 2);
        dispatch.Open(slots);
        var nodeStore = CreateNodeStore(Time, new NodeIdentity(), dispatch);
        var first = NewExecution(account, 10_000);
        (await nodeStore.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Created);
        dispatch.Reader.TryRead(out _).ShouldBeTrue();
        dispatch.Taken();

        // Replays, reused keys and refusals store nothing: each place they reserved is given back.
        for (var i = 0; i < DispatchHandoff.Capacity + 1; i++)
        {
            (await nodeStore.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Replayed);
            (await nodeStore.SubmitAsync(first with { RequestHash = "other" }, None)).Result.ShouldBe(SubmitResult.KeyReused);
            (await nodeStore.SubmitAsync(NewExecution(account, 10_000_000), None)).Result.ShouldBe(SubmitResult.InsufficientBalance);
        }

        dispatch.Reader.TryRead(out _).ShouldBeFalse("nothing stored, nothing handed over");
        var handed = new List<string>();
        for (var i = 0; i < DispatchHandoff.Capacity + 3; i++)
        {
            handed.Add((await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!.Id);
        }

        var taken = new List<string>();
        while (dispatch.Reader.TryRead(out var execution))
        {
            taken.Add(execution.Id);
        }

        taken.ShouldBe(handed.Take(DispatchHandoff.Capacity), "the dispatcher is given as many as it has room for, no more");
        var claimed = await Executions.ClaimDueAsync("node-b", 100, Now, Now + Lease, None);
        claimed.Select(e => e.Id).Order().ShouldBe(handed.Skip(DispatchHandoff.Capacity).Order(), "the rest wait for any node's claim");
    }

    [Fact]
    public async Task Claiming_takes_no_more_than_asked()
    {
        var account = await NewAccountAsync(1_000_000);
        for (var i = 0; i < 5; i++)
        {
            await SubmitAsync(account, 10_000);
        }

        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(2);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(2);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(1);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Concurrent_claimers_never_get_the_same_execution()
    {
        var account = await NewAccountAsync(10_000_000);
        var submitted = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            submitted.Add((await SubmitAsync(account, 10_000)).Id);
        }

        var claims = new ConcurrentBag<(string Owner, string Id)>();
        async Task ClaimAllAsync(string owner)
        {
            while (true)
            {
                var batch = await Executions.ClaimDueAsync(owner, 3, Now, Now + Lease, None);
                if (batch.Count == 0)
                {
                    return;
                }

                foreach (var e in batch)
                {
                    e.LeaseOwner.ShouldBe(owner);
                    claims.Add((owner, e.Id));
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(n => Task.Run(() => ClaimAllAsync($"node-{n}"))));

        claims.Count.ShouldBe(40, "each execution is claimed exactly once");
        claims.Select(c => c.Id).Distinct().Count().ShouldBe(40);
        claims.Select(c => c.Id).ShouldBe(submitted, ignoreOrder: true);
        foreach (var (owner, id) in claims)
        {
            (await Executions.GetAsync(id, null, None))!.LeaseOwner.ShouldBe(owner);
        }
    }

    [Fact]
    public async Task An_execution_given_back_with_a_later_time_is_not_offered_before_then()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        await Executions.ReleaseClaimAsync(submitted.Id, "node-a", Now + TimeSpan.FromSeconds(5), None);

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(4));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem().LeaseOwner.ShouldBe("node-b");
    }

    [Fact]
    public async Task Only_the_lease_owner_can_give_a_claim_back()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        await Executions.ReleaseClaimAsync(submitted.Id, "node-b", Now, None);

        var stored = (await Executions.GetAsync(submitted.Id, null, None))!;
        stored.LeaseOwner.ShouldBe("node-a");
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_claim_whose_lease_ran_out_is_offered_again()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        Time.Advance(Lease - TimeSpan.FromMilliseconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("the lease is still live");
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var retaken = (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem();

        retaken.Id.ShouldBe(submitted.Id);
        retaken.LeaseOwner.ShouldBe("node-b");
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("node-a lost its lease");
        (await Executions.RenewLeaseAsync(submitted.Id, "node-a", Now + Lease, None)).ShouldBeFalse();
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-b"), None)).ShouldNotBeNull();
    }

    [Fact]
    public async Task A_kept_provider_result_survives_copy_retries_and_a_lost_lease_and_the_terminal_move_clears_it()
    {
        // docs/artifacts.md: a result whose outputs are still to be copied waits in PENDING with the result kept, so
        // whichever node claims it next (after a failed copy, or after the copier died) copies instead of calling the provider.
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        const string Kept = """{"output":"{}","usage":{"images":1},"artifacts":[{"name":"image-0.png","url":"https://cdn.example/x.png"}]}""";

        var waiting = (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, null, Attempt(1, "completed"), "node-a") with { PendingResult = Kept }, None)).ShouldNotBeNull();
        waiting.Status.ShouldBe(ExecutionStatus.Pending);
        waiting.PendingResult.ShouldBe(Kept);

        var first = await ClaimOneAsync(execution.Id, "node-b");
        first.PendingResult.ShouldBe(Kept);
        var copyFailed = ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Pending], Now + TimeSpan.FromSeconds(1), Timeout, Attempt(1, "copy_failed"), "node-b");
        (await Executions.TransitionAsync(copyFailed, None)).ShouldNotBeNull().PendingResult.ShouldBe(Kept, "a move that names no result keeps it");
        (await Executions.ClaimDueAsync("node-c", 10, Now, Now + Lease, None)).ShouldBeEmpty("not before the copy's backoff");

        Time.Advance(TimeSpan.FromSeconds(1));
        (await ClaimOneAsync(execution.Id, "node-c")).PendingResult.ShouldBe(Kept);
        Time.Advance(Lease); // node-c died mid-copy
        var resumed = await ClaimOneAsync(execution.Id, "node-d");
        resumed.PendingResult.ShouldBe(Kept);
        resumed.Attempts.ShouldBe(1, "copies are not provider attempts");

        var done = ExecutionTransition.Complete(execution.Id, [ExecutionStatus.Pending], "{}", [], new Usage(Images: 1), 40_000, Attempt(1, "copied"), "node-d");
        var completed = (await Executions.TransitionAsync(done, None)).ShouldNotBeNull();
        completed.Status.ShouldBe(ExecutionStatus.Completed);
        completed.PendingResult.ShouldBeNull();
        (await Executions.GetAsync(execution.Id, null, None)).ShouldNotBeNull().PendingResult.ShouldBeNull();
        completed.AttemptLog.Select(a => a.Outcome).ShouldBe(["completed", "copy_failed", "copied"]);
        (await AccountAsync(account)).ShouldSatisfyAllConditions(a => a.HeldMicros.ShouldBe(0), a => a.BalanceMicros.ShouldBe(960_000));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Renewing_a_lease_keeps_others_from_taking_the_work()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        Time.Advance(TimeSpan.FromSeconds(20));
        (await Executions.RenewLeaseAsync(submitted.Id, "node-a", Now + Lease, None)).ShouldBeTrue();
        (await Executions.RenewLeaseAsync(submitted.Id, "node-b", Now + Lease + Lease, None)).ShouldBeFalse();
        Time.Advance(TimeSpan.FromSeconds(20));

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Executions_that_are_not_pending_are_never_claimed()
    {
        var account = await NewAccountAsync(1_000_000);
        var processing = await ProcessingAsync(account, 10_000);
        var cancelled = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();

        Time.Advance(TimeSpan.FromMinutes(1)); // past every lease

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await Executions.GetAsync(processing.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
    }
}
