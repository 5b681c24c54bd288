using System.Globalization;

namespace ModelRoute.Tests.Storage;

/// <summary>docs/api.md#usage on both stores: every ending counts once in its usage row, in the transaction that settles it.</summary>
public abstract partial class ExecutionStoreContract
{
    /// <summary>The usage read side on the same database.</summary>
    protected abstract IUsageStore UsageTotals { get; }

    /// <summary>
    /// The store as an upgrade finds it: the usage table dropped and its migration forgotten, then the migrations run
    /// again, so that the usage migration counts what the executions table holds.
    /// </summary>
    protected abstract Task RerunUsageMigrationAsync();

    private long Today => Time.GetUtcNow().ToUnixTimeMilliseconds() / 86_400_000;

    /// <summary>A PROCESSING execution of <paramref name="model"/> submitted with <paramref name="keyId"/> (none: null).</summary>
    private async Task<Execution> RunningAsync(string accountId, string model, string? keyId, long holdMicros = 10_000)
    {
        var outcome = await Executions.SubmitAsync(NewExecution(accountId, holdMicros) with { Model = model, ApiKeyId = keyId }, None);
        outcome.Result.ShouldBe(SubmitResult.Created);
        await ClaimOneAsync(outcome.Execution!.Id, "node-a");
        return (await Executions.TransitionAsync(StartAttempt(outcome.Execution.Id, "node-a"), None)).ShouldNotBeNull();
    }

    private Task<IReadOnlyList<UsageRow>> UsageAsync(string? accountId, UsageGrouping groupBy, long? from = null, long? to = null) =>
        UsageTotals.ReadAsync(new UsageQuery(accountId, from ?? Today - 1, to ?? Today + 1, groupBy), None);

    private async Task<long> ChargedByLedgerAsync(string accountId) =>
        (await LedgerAsync(accountId)).Where(e => e.Kind == LedgerKinds.Charge).Sum(e => e.AmountMicros);

    [Fact]
    public async Task Every_ending_counts_once_in_its_model_day_and_key_with_what_the_ledger_charged()
    {
        var account = await NewAccountAsync(10_000_000);
        var key = await KeyAsync(account, null);
        var cheap = await RunningAsync(account, "sim/text", key);
        var over = await RunningAsync(account, "sim/text", key);
        var failing = await RunningAsync(account, "sim/image", null);
        var cancelled = await RunningAsync(account, "sim/image", key);
        var expiring = await RunningAsync(account, "sim/text", null);
        await RunningAsync(account, "sim/text", key); // still running: not counted

        (await Executions.TransitionAsync(Complete(cheap.Id, 3_000), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(Complete(over.Id, 25_000), None)).ShouldNotBeNull(); // charged its hold, 15,000 over
        (await Executions.TransitionAsync(ExecutionTransition.Fail(failing.Id, [ExecutionStatus.Processing], Timeout, Attempt(1, "failed"), "node-a"), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Expire(expiring.Id), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cheap.Id, account), None)).ShouldBeNull("an ended execution moves no more");

        (await UsageAsync(account, UsageGrouping.Model)).ShouldBe(
        [
            new UsageRow("sim/image", 2, 0, 1, 1, 0, 0, 0),
            new UsageRow("sim/text", 3, 2, 0, 0, 1, 13_000, 15_000),
        ]);
        (await UsageAsync(account, UsageGrouping.Key)).ShouldBe(
        [
            new UsageRow(null, 2, 0, 1, 0, 1, 0, 0),
            new UsageRow(key, 3, 2, 0, 1, 0, 13_000, 15_000),
        ]);
        (await UsageAsync(account, UsageGrouping.Day)).ShouldBe([new UsageRow(Today.ToString(CultureInfo.InvariantCulture), 5, 2, 1, 1, 1, 13_000, 15_000)]);
        (await ChargedByLedgerAsync(account)).ShouldBe(13_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Endings_settled_in_parallel_add_up_to_exactly_what_the_ledger_charged()
    {
        var account = await NewAccountAsync(100_000_000);
        var key = await KeyAsync(account, null);
        var running = new List<Execution>();
        for (var i = 0; i < 40; i++)
        {
            running.Add(await RunningAsync(account, i % 2 == 0 ? "sim/text" : "sim/image", i % 3 == 0 ? null : key, 100_000));
        }

        // A cancel races every completion: exactly one of the two settles each execution, and only it is counted.
        await Task.WhenAll(running.SelectMany((e, i) => new[]
        {
            Task.Run(() => Executions.TransitionAsync(Complete(e.Id, i * 4_999), None)),
            Task.Run(() => Executions.TransitionAsync(ExecutionTransition.Cancel(e.Id, account), None)),
        }));

        var byModel = await UsageAsync(account, UsageGrouping.Model);
        var byKey = await UsageAsync(account, UsageGrouping.Key);
        var charged = await ChargedByLedgerAsync(account);
        byModel.Sum(r => r.Executions).ShouldBe(40);
        byModel.Sum(r => r.Completed + r.Cancelled).ShouldBe(40);
        byModel.Sum(r => r.ChargedMicros).ShouldBe(charged);
        byKey.Sum(r => r.ChargedMicros).ShouldBe(charged);
        byKey.Sum(r => r.Executions).ShouldBe(40);
        var ended = await Task.WhenAll(running.Select(e => Executions.GetAsync(e.Id, null, None)));
        byModel.Single(r => r.Group == "sim/text").Completed.ShouldBe(ended.Count(e => e!.Model == "sim/text" && e.Status == ExecutionStatus.Completed));
        byModel.Sum(r => r.OverageMicros).ShouldBe(ended.Where(e => e!.Status == ExecutionStatus.Completed).Sum(e => e!.OverageMicros));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task An_accounts_usage_holds_only_its_own_endings_and_the_operators_view_holds_every_account()
    {
        var mine = await NewAccountAsync(10_000_000);
        var theirs = await NewAccountAsync(10_000_000);
        var a = await RunningAsync(mine, "sim/text", null);
        var b = await RunningAsync(theirs, "sim/text", null);
        var c = await RunningAsync(theirs, "sim/text", null);
        foreach (var (e, cost) in new[] { (a, 1_000L), (b, 2_000L), (c, 4_000L) })
        {
            (await Executions.TransitionAsync(Complete(e.Id, cost), None)).ShouldNotBeNull();
        }

        (await UsageAsync(mine, UsageGrouping.Model)).ShouldBe([new UsageRow("sim/text", 1, 1, 0, 0, 0, 1_000, 0)]);
        (await UsageAsync(theirs, UsageGrouping.Model)).ShouldBe([new UsageRow("sim/text", 2, 2, 0, 0, 0, 6_000, 0)]);
        (await UsageAsync(Ids.New("acct"), UsageGrouping.Model)).ShouldBeEmpty();
        var everyone = await UsageAsync(null, UsageGrouping.Account);
        everyone.Single(r => r.Group == mine).ChargedMicros.ShouldBe(1_000);
        everyone.Single(r => r.Group == theirs).ChargedMicros.ShouldBe(6_000);
    }

    [Fact]
    public async Task Usage_is_kept_per_UTC_day_and_a_range_takes_from_and_leaves_to()
    {
        Time.SetUtcNow(new DateTimeOffset(2026, 3, 1, 23, 59, 59, 999, TimeSpan.Zero));
        var account = await NewAccountAsync(10_000_000);
        var late = await RunningAsync(account, "sim/text", null);
        var early = await RunningAsync(account, "sim/text", null);
        var first = Today;

        (await Executions.TransitionAsync(Complete(late.Id, 1_000), None)).ShouldNotBeNull();
        Time.Advance(TimeSpan.FromMilliseconds(1));
        (await Executions.TransitionAsync(Complete(early.Id, 2_000), None)).ShouldNotBeNull();

        Today.ShouldBe(first + 1);
        (await UsageAsync(account, UsageGrouping.Model, first, first + 1)).Single().ChargedMicros.ShouldBe(1_000);
        (await UsageAsync(account, UsageGrouping.Model, first + 1, first + 2)).Single().ChargedMicros.ShouldBe(2_000);
        (await UsageAsync(account, UsageGrouping.Model, first - 5, first)).ShouldBeEmpty();
        (await UsageAsync(account, UsageGrouping.Day, first, first + 2)).Select(r => (r.Group, r.ChargedMicros))
            .ShouldBe([(first.ToString(CultureInfo.InvariantCulture), 1_000L), ((first + 1).ToString(CultureInfo.InvariantCulture), 2_000L)]);
    }

    [Fact]
    public async Task An_upgraded_store_counts_the_executions_that_ended_before_the_upgrade_once()
    {
        var account = await NewAccountAsync(10_000_000);
        var key = await KeyAsync(account, null);
        var done = await RunningAsync(account, "sim/text", key);
        var over = await RunningAsync(account, "sim/text", null);
        var failed = await RunningAsync(account, "sim/image", key);
        var open = await RunningAsync(account, "sim/image", key);
        (await Executions.TransitionAsync(Complete(done.Id, 4_000), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(Complete(over.Id, 30_000), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Fail(failed.Id, [ExecutionStatus.Processing], Timeout, Attempt(1, "failed"), "node-a"), None)).ShouldNotBeNull();
        var settled = (await UsageAsync(account, UsageGrouping.Key), await UsageAsync(account, UsageGrouping.Model));

        await RerunUsageMigrationAsync();

        (await UsageAsync(account, UsageGrouping.Key)).ShouldBe(settled.Item1);
        (await UsageAsync(account, UsageGrouping.Model)).ShouldBe(settled.Item2);
        (await Executions.TransitionAsync(Complete(open.Id, 1_000), None)).ShouldNotBeNull();
        (await UsageAsync(account, UsageGrouping.Model)).Single(r => r.Group == "sim/image").ShouldBe(new UsageRow("sim/image", 2, 1, 1, 0, 0, 1_000, 0));
        (await UsageAsync(account, UsageGrouping.Model)).Sum(r => r.ChargedMicros).ShouldBe(await ChargedByLedgerAsync(account));
    }
}
