namespace ModelRoute.Tests.Storage;

/// <summary>docs/observability.md#traces on both stores: the trace context given at submission is kept, read back and copied to deliveries.</summary>
public abstract partial class ExecutionStoreContract
{
    /// <summary>Every row of the outbox: (execution_id, trace_parent).</summary>
    protected abstract Task<IReadOnlyList<(string ExecutionId, string? TraceParent)>> DeliveryTraceParentsAsync();

    protected const string DeliveryTraceParentsSql = "SELECT execution_id, trace_parent FROM webhook_deliveries";

    private static string TraceParentOf(int i) => $"00-{i + 1:x32}-{i + 1:x16}-01";

    [Fact]
    public async Task The_trace_context_given_at_submission_is_read_back_on_every_path_and_copied_to_its_deliveries()
    {
        var account = await NewAccountAsync(10_000_000);
        var keyId = await KeyAsync(account, 1_000_000);

        // Submitted together (PostgreSQL's grouped insert), alone under a key's limit, and one with none (a row from before).
        var made = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Executions.SubmitAsync(
            NewExecution(account, 10_000) with { TraceParent = TraceParentOf(i), WebhookUrl = $"https://receiver.example/hook/{i}" }, None)));
        var limited = await Executions.SubmitAsync(
            NewExecution(account, 10_000) with { TraceParent = TraceParentOf(8), WebhookUrl = "https://receiver.example/hook/8", ApiKeyId = keyId, KeySpendLimited = true }, None);
        var without = await Executions.SubmitAsync(NewExecution(account, 10_000) with { WebhookUrl = "https://receiver.example/hook/none" }, None);
        var submitted = made.Append(limited).Select(o => o.Execution.ShouldNotBeNull()).ToList();
        submitted.Select(e => e.TraceParent).ShouldBe(Enumerable.Range(0, 9).Select(TraceParentOf));
        var expected = submitted.ToDictionary(e => e.Id, e => e.TraceParent);
        expected[without.Execution.ShouldNotBeNull().Id] = null;

        foreach (var (id, traceParent) in expected)
        {
            (await Executions.GetAsync(id, account, None)).ShouldNotBeNull().TraceParent.ShouldBe(traceParent);
        }

        var claimed = await Executions.ClaimDueAsync("node-a", 100, Now, Now + Lease, None);
        claimed.ToDictionary(e => e.Id, e => e.TraceParent).ShouldBe(expected, ignoreOrder: true);
        foreach (var (id, traceParent) in expected)
        {
            (await Executions.TransitionAsync(StartAttempt(id, "node-a"), None)).ShouldNotBeNull().TraceParent.ShouldBe(traceParent);
        }

        var completed = await Task.WhenAll(expected.Keys.Select(id => Executions.TransitionAsync(Complete(id, 5_000), None)));
        completed.ToDictionary(e => e.ShouldNotBeNull().Id, e => e!.TraceParent).ShouldBe(expected, ignoreOrder: true);

        var deliveries = await DeliveryTraceParentsAsync();
        deliveries.Count.ShouldBe(expected.Count);
        deliveries.ToDictionary(d => d.ExecutionId, d => d.TraceParent).ShouldBe(expected, ignoreOrder: true);
    }

    [Fact]
    public async Task A_replay_answers_the_trace_context_of_the_original_submission()
    {
        var account = await NewAccountAsync(10_000_000);
        var first = NewExecution(account, 10_000, key: "same") with { TraceParent = TraceParentOf(1) };
        (await Executions.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Created);

        var again = await Executions.SubmitAsync(first with { Id = Ids.New("exe"), TraceParent = TraceParentOf(2) }, None);

        again.Result.ShouldBe(SubmitResult.Replayed);
        again.Execution.ShouldNotBeNull().TraceParent.ShouldBe(TraceParentOf(1));
    }
}
