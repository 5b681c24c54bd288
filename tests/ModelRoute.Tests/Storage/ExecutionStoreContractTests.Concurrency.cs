namespace ModelRoute.Tests.Storage;

/// <summary>Moves written together: races, group commits and pipelined attempts, on every store.</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task Concurrent_cancel_and_complete_have_exactly_one_winner_and_a_consistent_ledger()
    {
        var account = await NewAccountAsync(10_000_000);
        var executions = new List<Execution>();
        for (var i = 0; i < 16; i++)
        {
            executions.Add(await ProcessingAsync(account, 100_000));
        }

        foreach (var execution in executions)
        {
            var cancel = Task.Run(() => Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None));
            var complete = Task.Run(() => Executions.TransitionAsync(Complete(execution.Id, 30_000), None));
            var results = await Task.WhenAll(cancel, complete);

            results.Count(r => r is not null).ShouldBe(1, $"exactly one of cancel and complete wins for {execution.Id}");
            var winner = results.Single(r => r is not null)!;
            (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(winner.Status);
        }

        var completedCount = 0;
        foreach (var execution in executions)
        {
            if ((await Executions.GetAsync(execution.Id, null, None))!.Status == ExecutionStatus.Completed)
            {
                completedCount++;
            }
        }

        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(0);
        balance.BalanceMicros.ShouldBe(10_000_000 - (completedCount * 30_000));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Endings_settled_together_leave_each_ledger_entry_with_the_money_just_after_it()
    {
        // On PostgreSQL a group's endings for one account settle in one statement, which works out each entry's figures.
        var account = await NewAccountAsync(10_000_000);
        var executions = new List<Execution>();
        for (var i = 0; i < 30; i++)
        {
            executions.Add(await ProcessingAsync(account, 100_000));
        }

        // Free, cheap, and over the hold (charged the hold): with no charge entry, a small one, a capped one.
        await Task.WhenAll(executions.Select((e, i) => Task.Run(() => Executions.TransitionAsync(Complete(e.Id, i % 3 == 0 ? 0 : i * 7_000), None))));

        var (balance, held) = (0L, 0L);
        // The setup's credit first (its id is the test's, not the store's, whose ids follow the order they were taken in).
        var entries = (await LedgerAsync(account)).OrderBy(e => e.Kind != LedgerKinds.Credit).ThenBy(e => e.Id, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            (balance, held) = entry.Kind switch
            {
                LedgerKinds.Credit => (balance + entry.AmountMicros, held),
                LedgerKinds.Hold => (balance, held + entry.AmountMicros),
                LedgerKinds.Release => (balance, held - entry.AmountMicros),
                LedgerKinds.Charge => (balance - entry.AmountMicros, held),
                _ => throw new ShouldAssertException($"unexpected ledger kind {entry.Kind}"),
            };
            (entry.BalanceMicros, entry.HeldMicros).ShouldBe((balance, held), $"{entry.Kind} {entry.Id} for {entry.ExecutionId}");
        }

        var money = await AccountAsync(account);
        (money.BalanceMicros, money.HeldMicros).ShouldBe((balance, 0L));
        balance.ShouldBe(10_000_000 - Enumerable.Range(0, 30).Sum(i => i % 3 == 0 ? 0 : Math.Min(i * 7_000, 100_000)));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Pipelined_writes_apply_in_the_order_queued_even_when_the_first_has_not_committed()
    {
        // The dispatcher queues an attempt's start and, without waiting for it, the attempt's outcome: a retry (a move
        // between non-terminal states) or an ending. Each must find the execution as the start left it.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 40);
        var written = executions.Select((e, i) =>
        {
            var start = Executions.TransitionAsync(StartAttempt(e.Id, "node-a") with { Pipelined = true }, None);
            var outcome = Executions.TransitionAsync(
                (i % 2 == 0
                    ? ExecutionTransition.Retry(e.Id, [ExecutionStatus.Processing], Now + TimeSpan.FromMinutes(1), Timeout, Attempt(1, "failed"), "node-a")
                    : Complete(e.Id, 5_000)) with { Pipelined = true },
                None);
            return (start, outcome, Ends: i % 2 == 1);
        }).ToList();

        foreach (var (start, outcome, ends) in written)
        {
            (await start).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Processing);
            var after = (await outcome).ShouldNotBeNull("the outcome found the execution as its start left it");
            after.Status.ShouldBe(ends ? ExecutionStatus.Completed : ExecutionStatus.Pending);
            after.Attempts.ShouldBe(1);
            (await Executions.ListEventsAsync(after.Id, 0, None)).Select(e => e.Status)
                .ShouldBe([ExecutionStatus.Pending, ExecutionStatus.Processing, ends ? ExecutionStatus.Completed : ExecutionStatus.Pending]);
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_pipelined_attempt_answers_and_leaves_the_execution_as_its_writes_one_after_the_other_would()
    {
        // Two attempts (the first retried with an error, the second completed), each a start with its outcome queued
        // behind it, on one execution; the same writes awaited one by one on a twin. PostgreSQL writes a start and an
        // outcome that meet in one group as one statement: every answer, the stored row and the events must not show it.
        var account = await NewAccountAsync(10_000_000);
        var pairs = new List<(Execution Piped, Execution Sequential)>();
        for (var i = 0; i < 20; i++)
        {
            pairs.Add((await SubmitAsync(account, 10_000), await SubmitAsync(account, 10_000)));
        }

        var answers = new List<(string Piped, string Sequential)>();
        async Task AttemptAsync(Func<string, ExecutionTransition> outcomeOf)
        {
            (await Executions.ClaimDueAsync("node-a", 100, Now, Now + Lease, None)).Count.ShouldBe(pairs.Count * 2);
            var piped = pairs.Select(p => (
                Start: Executions.TransitionAsync(StartAttempt(p.Piped.Id, "node-a") with { Pipelined = true }, None),
                Outcome: Executions.TransitionAsync(outcomeOf(p.Piped.Id) with { Pipelined = true }, None))).ToList();
            foreach (var ((pipedStart, pipedOutcome), (_, sequential)) in piped.Zip(pairs))
            {
                var start = await Executions.TransitionAsync(StartAttempt(sequential.Id, "node-a"), None);
                var outcome = await Executions.TransitionAsync(outcomeOf(sequential.Id), None);
                answers.Add((Comparable(await pipedStart, sequential.Id), Comparable(start, sequential.Id)));
                answers.Add((Comparable(await pipedOutcome, sequential.Id), Comparable(outcome, sequential.Id)));
            }
        }

        await AttemptAsync(id => ExecutionTransition.Retry(id, [ExecutionStatus.Processing], Now + TimeSpan.FromSeconds(5), Timeout, Attempt(1, "failed"), "node-a"));
        Time.Advance(TimeSpan.FromSeconds(5));
        await AttemptAsync(id => Complete(id, 5_000) with { Attempt = Attempt(2, "completed") });

        foreach (var (piped, sequential) in answers)
        {
            piped.ShouldBe(sequential);
        }

        foreach (var (piped, sequential) in pairs)
        {
            var stored = (await Executions.GetAsync(piped.Id, null, None)).ShouldNotBeNull();
            stored.Status.ShouldBe(ExecutionStatus.Completed);
            stored.Attempts.ShouldBe(2);
            stored.AttemptLog.Count.ShouldBe(2);
            Comparable(stored, sequential.Id).ShouldBe(Comparable(await Executions.GetAsync(sequential.Id, null, None), sequential.Id));
            var events = await Executions.ListEventsAsync(piped.Id, 0, None);
            events.Select(e => e.Status).ShouldBe([
                ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Completed]);
            events.Select(e => e.Status).ShouldBe((await Executions.ListEventsAsync(sequential.Id, 0, None)).Select(e => e.Status));
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_cancel_queued_between_an_attempts_start_and_its_outcome_applies_between_them()
    {
        // PostgreSQL writes a start and its outcome as one statement when they meet in a group, but never across a write
        // queued between them: here the cancel ends the execution after the start, and the outcome finds it ended.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 10);
        var written = executions.Select(e => (
            Start: Executions.TransitionAsync(StartAttempt(e.Id, "node-a") with { Pipelined = true }, None),
            Cancel: Executions.TransitionAsync(ExecutionTransition.Cancel(e.Id, account), None),
            Outcome: Executions.TransitionAsync(Complete(e.Id, 5_000) with { Pipelined = true }, None))).ToList();

        foreach (var (start, cancel, outcome) in written)
        {
            (await start).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Processing);
            (await cancel).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Cancelled);
            (await outcome).ShouldBeNull("the cancel came first");
        }

        foreach (var e in executions)
        {
            (await Executions.ListEventsAsync(e.Id, 0, None)).Select(x => x.Status)
                .ShouldBe([ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Cancelled]);
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Endings_queued_together_each_write_their_own_delivery_to_their_webhook_url()
    {
        // PostgreSQL writes a group's deliveries to webhook_urls as one insert: each ending must still get its own row,
        // for its own event, with its own execution in the body.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 30, i => NewExecution(account, 10_000) with { WebhookUrl = $"https://receiver.example/hook/{i}" });
        foreach (var e in executions)
        {
            (await Executions.TransitionAsync(StartAttempt(e.Id, "node-a"), None)).ShouldNotBeNull();
        }

        await Task.WhenAll(executions.Select(e => Executions.TransitionAsync(Complete(e.Id, 5_000), None)));

        var deliveries = await DeliveriesAsync();
        deliveries.Select(d => d.ExecutionId).Order().ShouldBe(executions.Select(e => e.Id).Order(), "one delivery per ending");
        foreach (var (executionId, eventId, eventType, payload) in deliveries)
        {
            eventType.ShouldBe("execution.completed");
            var completed = (await Executions.ListEventsAsync(executionId, 0, None)).Last();
            completed.Status.ShouldBe(ExecutionStatus.Completed);
            eventId.ShouldBe(completed.Id);
            using var body = System.Text.Json.JsonDocument.Parse(payload);
            body.RootElement.GetProperty("id").GetString().ShouldBe(eventId);
            body.RootElement.GetProperty("data").GetProperty("id").GetString().ShouldBe(executionId);
            body.RootElement.GetProperty("data").GetProperty("status").GetString().ShouldBe("COMPLETED");
        }
    }

    /// <summary>The execution as JSON, under <paramref name="id"/> and without its key, to compare twins.</summary>
    private static string Comparable(Execution? execution, string id) =>
        System.Text.Json.JsonSerializer.Serialize(execution.ShouldNotBeNull() with { Id = id, IdempotencyKey = "" });
}
