namespace ModelRoute.Tests.Storage;

/// <summary>docs/api.md#the-account-event-feed: the store's read of one account's events after a sequence.</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task An_accounts_events_are_read_after_a_sequence_in_order_a_page_at_a_time_and_never_another_accounts()
    {
        var a = await NewAccountAsync(1_000_000);
        var b = await NewAccountAsync(1_000_000);
        (await Executions.LastAccountEventAsync(a, None)).ShouldBe(0, "no events yet");

        var a1 = await SubmitAsync(a, 10_000);
        var b1 = await SubmitAsync(b, 10_000);
        var a2 = await SubmitAsync(a, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(a1.Id, a), None)).ShouldNotBeNull();

        var events = await Executions.ListAccountEventsAsync(a, 0, 100, None);
        events.Select(e => (e.ExecutionId, e.Status)).ShouldBe([(a1.Id, ExecutionStatus.Pending), (a2.Id, ExecutionStatus.Pending), (a1.Id, ExecutionStatus.Cancelled)]);
        events.ShouldAllBe(e => e.AccountId == a);
        events.Select(e => e.Sequence).ShouldBe(events.Select(e => e.Sequence).Order().Distinct(), "in sequence order, each once");
        (await Executions.LastAccountEventAsync(a, None)).ShouldBe(events[^1].Sequence);

        (await Executions.ListAccountEventsAsync(a, events[0].Sequence, 100, None)).Select(e => e.Sequence).ShouldBe([events[1].Sequence, events[2].Sequence]);
        (await Executions.ListAccountEventsAsync(a, 0, 2, None)).Select(e => e.Sequence).ShouldBe([events[0].Sequence, events[1].Sequence], "a page");
        (await Executions.ListAccountEventsAsync(a, events[^1].Sequence, 100, None)).ShouldBeEmpty();
        (await Executions.ListAccountEventsAsync(b, 0, 100, None)).ShouldHaveSingleItem().ExecutionId.ShouldBe(b1.Id);
        (await Executions.ListAccountEventsAsync("acct_nobody", 0, 100, None)).ShouldBeEmpty();
    }
}
