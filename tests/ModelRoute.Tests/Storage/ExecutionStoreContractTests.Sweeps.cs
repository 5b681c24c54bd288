namespace ModelRoute.Tests.Storage;

/// <summary>Sweeps (expired and abandoned work), events and credits, on every store.</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task Expired_lists_only_unfinished_executions_past_their_deadline()
    {
        var account = await NewAccountAsync(10_000_000);
        var processingLate = await ProcessingAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        var completedLate = await ProcessingAsync(account, 10_000, owner: "node-c", timeout: TimeSpan.FromSeconds(10));
        (await Executions.TransitionAsync(Complete(completedLate.Id, 1_000, owner: "node-c"), None)).ShouldNotBeNull();
        var pendingLate = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        var pendingInTime = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(60));
        var cancelledLate = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelledLate.Id, account), None)).ShouldNotBeNull();

        (await Executions.ListExpiredAsync(Now, 100, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(11));

        var expired = await Executions.ListExpiredAsync(Now, 100, None);

        expired.ShouldBe([pendingLate.Id, processingLate.Id], ignoreOrder: true);
        expired.ShouldNotContain(pendingInTime.Id);
        (await Executions.ListExpiredAsync(Now, 1, None)).Count.ShouldBe(1);
        foreach (var id in expired)
        {
            (await Executions.TransitionAsync(ExecutionTransition.Expire(id), None)).ShouldNotBeNull();
        }

        (await Executions.ListExpiredAsync(Now, 100, None)).ShouldBeEmpty();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Abandoned_lists_processing_executions_whose_lease_ran_out_and_they_can_be_taken_back()
    {
        var account = await NewAccountAsync(10_000_000);
        var stale = await ProcessingAsync(account, 10_000, owner: "node-dead");
        var claimedOnly = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(claimedOnly.Id, "node-dead"); // PENDING under a lease: not abandoned, just re-offered
        Time.Advance(TimeSpan.FromSeconds(20));
        var live = await ProcessingAsync(account, 10_000, owner: "node-live");

        (await Executions.ListAbandonedAsync(Now, 100, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(11)); // node-dead's leases ran out 1 s ago; node-live's has 19 s left

        var abandoned = await Executions.ListAbandonedAsync(Now, 100, None);

        abandoned.ShouldHaveSingleItem().Id.ShouldBe(stale.Id);
        abandoned[0].LeaseOwner.ShouldBe("node-dead");

        var handBack = ExecutionTransition.Retry(stale.Id, [ExecutionStatus.Processing], Now, null, null) with { LeaseExpiredBy = Now };
        (await Executions.TransitionAsync(handBack, None)).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Pending);
        var liveHandBack = ExecutionTransition.Retry(live.Id, [ExecutionStatus.Processing], Now, null, null) with { LeaseExpiredBy = Now };
        (await Executions.TransitionAsync(liveHandBack, None)).ShouldBeNull("node-live still holds its lease");
        (await Executions.TransitionAsync(Complete(stale.Id, 1_000, owner: "node-dead"), None)).ShouldBeNull("the dead node no longer owns it");
        (await Executions.ListAbandonedAsync(Now, 100, None)).ShouldBeEmpty();

        var reclaimed = await Executions.ClaimDueAsync("node-live", 10, Now, Now + Lease, None);
        reclaimed.Select(e => e.Id).ShouldBe([stale.Id, claimedOnly.Id], ignoreOrder: true);
        await AssertLedgerBalancedAsync(account);
    }

    // ---------------------------------------------------------------- events

    [Fact]
    public async Task Events_record_each_status_change_once_in_order()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);
        (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, Timeout, Attempt(1, "failed"), "node-a"), None)).ShouldNotBeNull();
        await ClaimOneAsync(execution.Id, "node-a");
        (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-a"), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(
            ExecutionTransition.AwaitCallback(execution.Id, "node-a", "job-9", Now + Lease, Attempt(2, "accepted")), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-a"), None)).ShouldBeNull(); // refused: no event
        (await Executions.TransitionAsync(Complete(execution.Id, 5_000, owner: null), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldBeNull(); // refused: no event

        var events = await Executions.ListEventsAsync(execution.Id, 0, None);

        events.Select(e => e.Status).ShouldBe(
        [
            ExecutionStatus.Pending,
            ExecutionStatus.Processing,
            ExecutionStatus.Pending,
            ExecutionStatus.Processing,
            ExecutionStatus.AwaitingWebhook,
            ExecutionStatus.Completed,
        ]);
        events.Select(e => e.Type).ShouldBe(events.Select(e => e.Status.EventType()));
        events.ShouldAllBe(e => e.ExecutionId == execution.Id && e.AccountId == account);
        events.Select(e => e.Sequence).ShouldBe(events.Select(e => e.Sequence).Order(), "in order");
        events.Select(e => e.Sequence).Distinct().Count().ShouldBe(events.Count);
        events.Select(e => e.Id).Distinct().Count().ShouldBe(events.Count);

        var later = await Executions.ListEventsAsync(execution.Id, events[3].Sequence, None);
        later.Select(e => e.Status).ShouldBe([ExecutionStatus.AwaitingWebhook, ExecutionStatus.Completed]);
        (await Executions.ListEventsAsync(execution.Id, events[^1].Sequence, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Events_of_one_execution_do_not_include_another_executions()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await SubmitAsync(account, 10_000);
        var second = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(second.Id, account), None)).ShouldNotBeNull();

        (await Executions.ListEventsAsync(first.Id, 0, None)).ShouldHaveSingleItem().Status.ShouldBe(ExecutionStatus.Pending);
        (await Executions.ListEventsAsync(second.Id, 0, None)).Count.ShouldBe(2);
    }

    // ---------------------------------------------------------------- credits

    [Fact]
    public async Task A_credit_with_a_repeated_reference_replays_without_adding_money()
    {
        var account = await NewAccountAsync(0);

        var first = (await Accounts.CreditAsync(Ids.New("txn"), account, 500_000, "invoice-7", Now, None)).ShouldNotBeNull();
        var again = (await Accounts.CreditAsync(Ids.New("txn"), account, 500_000, "invoice-7", Now, None)).ShouldNotBeNull();
        var different = (await Accounts.CreditAsync(Ids.New("txn"), account, 999_000, "invoice-7", Now, None)).ShouldNotBeNull();

        first.Replayed.ShouldBeFalse();
        first.Entry.Kind.ShouldBe(LedgerKinds.Credit);
        first.Entry.AmountMicros.ShouldBe(500_000);
        first.Entry.BalanceMicros.ShouldBe(500_000);
        again.Replayed.ShouldBeTrue();
        again.Entry.Id.ShouldBe(first.Entry.Id);
        different.Replayed.ShouldBeTrue();
        different.Entry.AmountMicros.ShouldBe(500_000);
        (await AccountAsync(account)).BalanceMicros.ShouldBe(500_000);
        (await LedgerAsync(account)).ShouldHaveSingleItem();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Credits_without_a_reference_always_add_and_references_are_per_account()
    {
        var a = await NewAccountAsync(0);
        var b = await NewAccountAsync(0);

        (await Accounts.CreditAsync(Ids.New("txn"), a, 100_000, null, Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), a, 100_000, null, Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), a, 1_000, "ref", Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), b, 1_000, "ref", Now, None))!.Replayed.ShouldBeFalse();

        (await AccountAsync(a)).BalanceMicros.ShouldBe(201_000);
        (await AccountAsync(b)).BalanceMicros.ShouldBe(1_000);
        await AssertLedgerBalancedAsync(a);
        await AssertLedgerBalancedAsync(b);
    }

    [Fact]
    public async Task Concurrent_credits_with_one_reference_add_the_money_once()
    {
        var account = await NewAccountAsync(0);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ =>
            Task.Run(() => Accounts.CreditAsync(Ids.New("txn"), account, 250_000, "wire-1", Now, None))));

        outcomes.Count(o => o is { Replayed: false }).ShouldBe(1);
        outcomes.Count(o => o is { Replayed: true }).ShouldBe(9);
        outcomes.Select(o => o!.Entry.Id).Distinct().ShouldHaveSingleItem();
        (await AccountAsync(account)).BalanceMicros.ShouldBe(250_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_credit_to_an_unknown_account_is_refused()
    {
        (await Accounts.CreditAsync(Ids.New("txn"), "acct_missing", 1_000, "x", Now, None)).ShouldBeNull();
    }

    [Fact]
    public async Task Credited_money_becomes_available_for_holds_at_once()
    {
        var account = await NewAccountAsync(5_000);
        (await Executions.SubmitAsync(NewExecution(account, 10_000), None)).Result.ShouldBe(SubmitResult.InsufficientBalance);

        await Accounts.CreditAsync(Ids.New("txn"), account, 5_000, "more", Now, None);

        (await Executions.SubmitAsync(NewExecution(account, 10_000), None)).Result.ShouldBe(SubmitResult.Created);
        await AssertLedgerBalancedAsync(account);
    }
}
