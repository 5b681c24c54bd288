using ModelRoute.Server.Billing;

namespace ModelRoute.Tests.Storage;

/// <summary>State moves and their settlement, retries and polls, on every store.</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task Starting_an_attempt_needs_the_lease()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("not claimed by anyone");
        await ClaimOneAsync(submitted.Id, "node-a");
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-b"), None)).ShouldBeNull("claimed by another node");
        (await Executions.GetAsync(submitted.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Pending);

        var started = (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldNotBeNull();

        started.Status.ShouldBe(ExecutionStatus.Processing);
        started.Attempts.ShouldBe(1);
        started.Provider.ShouldBe("sim");
        started.ProviderModel.ShouldBe("text");
        started.CallbackTokenHash.ShouldBe("token-hash");
        started.LeaseOwner.ShouldBe("node-a");
        started.LeaseExpiresAt.ShouldBe(Now + Lease);
        started.StartedAt.ShouldBe(Now);
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("already processing");
    }

    [Fact]
    public async Task Purging_forgets_only_executions_that_ended_before_the_cutoff_and_frees_their_keys()
    {
        var account = await NewAccountAsync(1_000_000);
        var old = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(old.Id, account), None)).ShouldNotBeNull();
        var running = await SubmitAsync(account, 10_000);
        Time.Advance(TimeSpan.FromDays(31));
        var recent = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(recent.Id, account), None)).ShouldNotBeNull();

        var purged = await Executions.PurgeAsync(Now - TimeSpan.FromDays(30), 100, None);

        purged.ShouldBe([new PurgedExecution(old.Id, [])], "it kept no artifacts");
        (await Executions.GetAsync(old.Id, account, None)).ShouldBeNull();
        (await Executions.ListEventsAsync(old.Id, 0, None)).ShouldBeEmpty();
        (await Executions.GetAsync(running.Id, account, None)).ShouldNotBeNull();
        (await Executions.GetAsync(recent.Id, account, None)).ShouldNotBeNull();
        var again = await Executions.SubmitAsync(NewExecution(account, 10_000, key: old.IdempotencyKey), None);
        again.Result.ShouldBe(SubmitResult.Created);
        var money = await AccountAsync(account);
        money.BalanceMicros.ShouldBe(1_000_000, "purging moves no money");
        money.HeldMicros.ShouldBe(20_000, "the running execution's hold and the new one's");
    }

    [Fact]
    public async Task Completing_settles_the_actual_cost_and_releases_the_hold()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        Time.Advance(TimeSpan.FromSeconds(2));

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 50_000), None)).ShouldNotBeNull();

        completed.Status.ShouldBe(ExecutionStatus.Completed);
        completed.ActualMicros.ShouldBe(50_000);
        completed.ChargedMicros.ShouldBe(50_000);
        completed.OverageMicros.ShouldBe(0);
        completed.Output.ShouldBe("""{"text":"hi"}""");
        completed.Usage.ShouldBe(new Usage(InputTokens: 10, OutputTokens: 5));
        completed.CompletedAt.ShouldBe(Now);
        completed.LeaseOwner.ShouldBeNull();
        completed.AttemptLog.ShouldHaveSingleItem().Outcome.ShouldBe("completed");
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(0);
        balance.BalanceMicros.ShouldBe(950_000);
        var ledger = (await LedgerAsync(account)).Where(e => e.ExecutionId == execution.Id).ToList();
        ledger.Where(e => e.Kind == LedgerKinds.Release).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        var charge = ledger.Where(e => e.Kind == LedgerKinds.Charge).ShouldHaveSingleItem();
        charge.AmountMicros.ShouldBe(50_000);
        charge.BalanceMicros.ShouldBe(950_000);
        charge.HeldMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_above_the_hold_charges_the_hold_and_records_the_overage()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 200_000), None)).ShouldNotBeNull();

        completed.ActualMicros.ShouldBe(200_000);
        completed.ChargedMicros.ShouldBe(120_000);
        completed.OverageMicros.ShouldBe(80_000);
        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(880_000);
        balance.HeldMicros.ShouldBe(0);
        (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Charge).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_at_no_cost_releases_the_hold_and_charges_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        (await Executions.TransitionAsync(Complete(execution.Id, 0), None)).ShouldNotBeNull().ChargedMicros.ShouldBe(0);

        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(1_000_000);
        balance.HeldMicros.ShouldBe(0);
        (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Charge).Sum(e => e.AmountMicros).ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_negative_actual_cost_never_adds_money()
    {
        // Defence in depth: a wrapped or bogus cost must not settle as a negative charge that
        // raises the balance without a ledger entry (balance = credits − charges, docs/architecture.md).
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var result = await Executions.TransitionAsync(Complete(execution.Id, -5_000), None);

        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBeLessThanOrEqualTo(1_000_000, "settling created money");
        balance.HeldMicros.ShouldBe(result is null ? 120_000 : 0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Settling_one_execution_leaves_the_other_holds_alone()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await ProcessingAsync(account, 100_000);
        await SubmitAsync(account, 70_000);

        (await Executions.TransitionAsync(Complete(first.Id, 30_000), None)).ShouldNotBeNull();

        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(70_000);
        balance.BalanceMicros.ShouldBe(970_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_needs_the_lease_owner_when_one_is_named()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000, owner: "node-a");

        (await Executions.TransitionAsync(Complete(execution.Id, 10_000, owner: "node-b"), None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000);
        await AssertLedgerBalancedAsync(account);
    }

    public enum Ending
    {
        Fail,
        Cancel,
        Expire,
    }

    private ExecutionTransition End(Ending ending, string id, string account) => ending switch
    {
        Ending.Fail => ExecutionTransition.Fail(id, [ExecutionStatus.Processing], new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, "refused", false), Attempt(1, "failed"), "node-a"),
        Ending.Cancel => ExecutionTransition.Cancel(id, account),
        _ => ExecutionTransition.Expire(id),
    };

    [Theory]
    [InlineData(Ending.Fail, ExecutionStatus.Failed)]
    [InlineData(Ending.Cancel, ExecutionStatus.Cancelled)]
    [InlineData(Ending.Expire, ExecutionStatus.Expired)]
    public async Task Failing_cancelling_and_expiring_release_the_hold_and_charge_nothing(Ending ending, ExecutionStatus expected)
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var ended = (await Executions.TransitionAsync(End(ending, execution.Id, account), None)).ShouldNotBeNull();

        ended.Status.ShouldBe(expected);
        ended.CompletedAt.ShouldBe(Now);
        ended.LeaseOwner.ShouldBeNull();
        ended.ChargedMicros.GetValueOrDefault().ShouldBe(0);
        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(1_000_000);
        balance.HeldMicros.ShouldBe(0);
        var ledger = (await LedgerAsync(account)).Where(e => e.ExecutionId == execution.Id).ToList();
        ledger.Where(e => e.Kind == LedgerKinds.Release).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        ledger.ShouldNotContain(e => e.Kind == LedgerKinds.Charge && e.AmountMicros > 0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Expiring_records_the_deadline_error()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        var expired = (await Executions.TransitionAsync(ExecutionTransition.Expire(submitted.Id), None)).ShouldNotBeNull();

        expired.Status.ShouldBe(ExecutionStatus.Expired);
        expired.Error.ShouldNotBeNull().Code.ShouldBe(ExecutionErrorCodes.DeadlineExceeded);
        expired.Error.Retryable.ShouldBeFalse();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Cancelling_a_pending_execution_releases_its_hold_and_it_is_never_claimed()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 40_000);

        (await Executions.TransitionAsync(ExecutionTransition.Cancel(submitted.Id, account), None)).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Cancelled);

        (await Executions.ClaimDueAsync("node-a", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await AccountAsync(account)).HeldMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Complete_after_cancel_changes_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);
        var eventsBefore = await Executions.ListEventsAsync(execution.Id, 0, None);

        (await Executions.TransitionAsync(Complete(execution.Id, 50_000, owner: null), None)).ShouldBeNull();
        (await Executions.TransitionAsync(Complete(execution.Id, 50_000, owner: "node-a"), None)).ShouldBeNull();

        var stored = (await Executions.GetAsync(execution.Id, null, None))!;
        stored.Status.ShouldBe(ExecutionStatus.Cancelled);
        stored.ActualMicros.ShouldBeNull();
        stored.Output.ShouldBeNull();
        (await LedgerAsync(account)).Select(e => e.Id).ShouldBe(ledgerBefore.Select(e => e.Id));
        (await Executions.ListEventsAsync(execution.Id, 0, None)).Count.ShouldBe(eventsBefore.Count);
        (await AccountAsync(account)).BalanceMicros.ShouldBe(1_000_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Cancel_after_complete_changes_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        (await Executions.TransitionAsync(Complete(execution.Id, 50_000), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);

        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Expire(execution.Id), None)).ShouldBeNull();
        (await Executions.TransitionAsync(End(Ending.Fail, execution.Id, account), None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Completed);
        (await LedgerAsync(account)).Select(e => e.Id).ShouldBe(ledgerBefore.Select(e => e.Id));
        (await AccountAsync(account)).BalanceMicros.ShouldBe(950_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Theory]
    [InlineData(ExecutionStatus.Completed)]
    [InlineData(ExecutionStatus.Failed)]
    [InlineData(ExecutionStatus.Cancelled)]
    [InlineData(ExecutionStatus.Expired)]
    public async Task A_terminal_execution_never_changes_even_when_a_transition_names_its_status(ExecutionStatus terminal)
    {
        // A terminal execution never changes again, enforced by the store itself (docs/architecture.md).
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        var ended = terminal switch
        {
            ExecutionStatus.Completed => Complete(execution.Id, 50_000),
            ExecutionStatus.Failed => End(Ending.Fail, execution.Id, account),
            ExecutionStatus.Cancelled => End(Ending.Cancel, execution.Id, account),
            _ => End(Ending.Expire, execution.Id, account),
        };
        (await Executions.TransitionAsync(ended, None)).ShouldNotBeNull().Status.ShouldBe(terminal);
        var ledgerBefore = await LedgerAsync(account);

        var revived = await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [terminal], Now, null, null),
            None);

        revived.ShouldBeNull($"a {terminal} execution was moved back to PENDING");
        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(terminal);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await LedgerAsync(account)).Count.ShouldBe(ledgerBefore.Count);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_terminal_execution_is_never_settled_twice_even_when_a_transition_names_its_status()
    {
        var account = await NewAccountAsync(1_000_000);
        var cancelled = await ProcessingAsync(account, 120_000);
        await SubmitAsync(account, 200_000); // another open hold, which a second release would eat into
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);

        var completeAfterCancel = ExecutionTransition.Complete(
            cancelled.Id, [ExecutionStatus.Processing, ExecutionStatus.Cancelled], "{}", [], new Usage(), 50_000, null);
        Execution? result = null;
        Exception? error = null;
        try
        {
            result = await Executions.TransitionAsync(completeAfterCancel, None);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        error.ShouldBeNull("the store answers null rather than failing");
        result.ShouldBeNull("a CANCELLED execution was completed");
        (await Executions.GetAsync(cancelled.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Cancelled);
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(200_000);
        balance.BalanceMicros.ShouldBe(1_000_000);
        (await LedgerAsync(account)).Count.ShouldBe(ledgerBefore.Count);
        await AssertLedgerBalancedAsync(account);
    }


    [Fact]
    public async Task A_retry_moves_processing_back_to_pending_until_its_time_and_clears_the_lease()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);
        var retryAt = Now + TimeSpan.FromSeconds(5);

        var retried = (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], retryAt, Timeout, Attempt(1, "failed"), "node-a"),
            None)).ShouldNotBeNull();

        retried.Status.ShouldBe(ExecutionStatus.Pending);
        retried.NextAttemptAt.ShouldBe(retryAt);
        retried.LeaseOwner.ShouldBeNull();
        retried.LeaseExpiresAt.ShouldBeNull();
        retried.Error.ShouldBe(Timeout);
        retried.Attempts.ShouldBe(1);
        retried.AttemptLog.ShouldHaveSingleItem().Outcome.ShouldBe("failed");
        retried.HeldMicros.ShouldBe(100_000);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000, "a retry keeps the hold");

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("not due yet");
        Time.Advance(TimeSpan.FromSeconds(5));
        await ClaimOneAsync(execution.Id, "node-b");
        var second = (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-b"), None)).ShouldNotBeNull();
        second.Attempts.ShouldBe(2);

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 20_000, owner: "node-b"), None)).ShouldNotBeNull();
        completed.Error.ShouldBeNull("a completed execution carries no error");
        completed.AttemptLog.Count.ShouldBe(2);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_retry_by_a_node_that_lost_the_lease_is_refused()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000, owner: "node-a");

        (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, Timeout, null, "node-b"),
            None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
    }

    [Fact]
    public async Task Waiting_for_a_callback_is_polled_only_when_due()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);

        var awaiting = (await Executions.TransitionAsync(
            ExecutionTransition.AwaitCallback(execution.Id, "node-a", "job-1", Now + TimeSpan.FromSeconds(30), Attempt(1, "accepted")),
            None)).ShouldNotBeNull();

        awaiting.Status.ShouldBe(ExecutionStatus.AwaitingWebhook);
        awaiting.ProviderJobId.ShouldBe("job-1");
        awaiting.LeaseOwner.ShouldBeNull();
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(30));
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldHaveSingleItem().Id.ShouldBe(execution.Id);
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldBeEmpty("the next poll was pushed back");

        // The callback completes it without a lease.
        (await Executions.TransitionAsync(Complete(execution.Id, 10_000, owner: null), None)).ShouldNotBeNull();
        await AssertLedgerBalancedAsync(account);
    }
}
