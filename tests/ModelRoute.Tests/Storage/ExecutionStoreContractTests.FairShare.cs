namespace ModelRoute.Tests.Storage;

/// <summary>Fair share between accounts in the claim (docs/routing.md), on every store.</summary>
public abstract partial class ExecutionStoreContract
{
    /// <summary>Submits <paramref name="count"/> executions of 10,000 µ$, a millisecond apart, and answers their ids in order.</summary>
    private async Task<List<string>> QueueAsync(string accountId, int count)
    {
        var ids = new List<string>();
        for (var i = 0; i < count; i++)
        {
            Time.Advance(TimeSpan.FromMilliseconds(1));
            var outcome = await Executions.SubmitAsync(NewExecution(accountId, 10_000), None);
            outcome.Result.ShouldBe(SubmitResult.Created);
            ids.Add(outcome.Execution!.Id);
        }

        return ids;
    }

    [Fact]
    public async Task A_claim_takes_the_oldest_of_each_account_before_the_second_of_any()
    {
        var flooding = await NewAccountAsync(100_000_000);
        var quiet = await NewAccountAsync(1_000_000);
        var backlog = await QueueAsync(flooding, 50);
        var lone = await QueueAsync(quiet, 1);

        var claimed = await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None);

        claimed.Select(e => e.Id).Order().ShouldBe(new[] { backlog[0], lone[0] }.Order());
    }

    [Fact]
    public async Task An_account_with_executions_in_flight_comes_after_one_without()
    {
        var flooding = await NewAccountAsync(100_000_000);
        var quiet = await NewAccountAsync(1_000_000);
        var backlog = await QueueAsync(flooding, 30);
        (await Executions.ClaimDueAsync("node-a", 10, Now, Now + Lease, None)).Select(e => e.Id).ShouldBe(backlog[..10]);
        var lone = await QueueAsync(quiet, 1);

        // One place: the account with ten in flight waits, though its next execution is older.
        (await Executions.ClaimDueAsync("node-a", 1, Now, Now + Lease, None)).ShouldHaveSingleItem().Id.ShouldBe(lone[0]);
        (await Executions.ClaimDueAsync("node-a", 1, Now, Now + Lease, None)).ShouldHaveSingleItem().Id.ShouldBe(backlog[10]);
    }

    [Fact]
    public async Task Within_one_account_claims_go_first_in_first_out()
    {
        var account = await NewAccountAsync(100_000_000);
        var other = await NewAccountAsync(100_000_000);
        var queued = await QueueAsync(account, 12);
        await QueueAsync(other, 12);

        var order = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            order.AddRange((await Executions.ClaimDueAsync("node-a", 3, Now, Now + Lease, None)).Where(e => e.AccountId == account).OrderBy(e => e.CreatedAt).Select(e => e.Id));
        }

        order.ShouldBe(queued);
    }

    [Fact]
    public async Task A_capped_account_is_claimed_no_more_than_its_cap_in_flight_by_claimers_at_once()
    {
        var account = await NewAccountAsync(100_000_000);
        (await Accounts.SetMaxConcurrencyAsync(account, 5, None))!.MaxConcurrency.ShouldBe(5);
        var queued = await QueueAsync(account, 40);

        var claimed = new ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async n =>
        {
            foreach (var e in await Executions.ClaimDueAsync($"node-{n}", 10, Now, Now + Lease, None))
            {
                claimed.Add(e.Id);
            }
        }));

        claimed.Order().ShouldBe(queued[..5].Order());

        // One starts calling its provider (still in flight), and one is given back: one more place.
        var first = (await Executions.GetAsync(queued[0], null, None))!;
        (await Executions.TransitionAsync(ExecutionTransition.StartAttempt(first.Id, first.LeaseOwner!, Now + Lease, "sim", "text", "hash"), None)).ShouldNotBeNull();
        (await Executions.ClaimDueAsync("node-x", 10, Now, Now + Lease, None)).ShouldBeEmpty("five are still in flight, one of them calling its provider");
        var second = (await Executions.GetAsync(queued[1], null, None))!;
        await Executions.ReleaseClaimAsync(second.Id, second.LeaseOwner!, second.CreatedAt, None); // Back to its place in the queue.
        (await Executions.ClaimDueAsync("node-x", 10, Now, Now + Lease, None)).ShouldHaveSingleItem().Id.ShouldBe(queued[1]);

        // Without the cap, the rest go.
        (await Accounts.SetMaxConcurrencyAsync(account, null, None))!.MaxConcurrency.ShouldBeNull();
        (await Executions.ClaimDueAsync("node-x", 100, Now, Now + Lease, None)).Count.ShouldBe(35);
    }

    [Fact]
    public async Task Setting_a_cap_on_an_unknown_account_changes_nothing()
    {
        (await Accounts.SetMaxConcurrencyAsync("acct_missing", 3, None)).ShouldBeNull();
        (await Accounts.ListConcurrencyCapsAsync(None)).ContainsKey("acct_missing").ShouldBeFalse();
    }
}
