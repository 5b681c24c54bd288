namespace ModelRoute.Tests.Routing;

/// <summary>
/// A provider that answers in its reply is called while the attempt's start is still being written, and the outcome is
/// queued behind that start, so a quick answer commits with it; a provider that may call back is called only once the
/// start, with its callback token, has committed. Runs on both stores (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class PipelinedAttemptTests
{
    [Fact]
    public async Task An_answer_in_the_reply_is_written_without_waiting_for_the_attempts_start_to_commit()
    {
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        // Each start's answer is held back until a later write of the same execution is asked for (at most 10 s): a
        // dispatcher that waited for the start before calling the provider would sit out the 10 s.
        var later = new ConcurrentDictionary<string, TaskCompletionSource>();
        var outcomeFirst = new ConcurrentDictionary<string, bool>();
        store.BeforeAnswering = async t =>
        {
            var next = later.GetOrAdd(t.ExecutionId, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (t.To == ExecutionStatus.Processing)
            {
                outcomeFirst[t.ExecutionId] = await Task.WhenAny(next.Task, Task.Delay(TimeSpan.FromSeconds(10))) == next.Task;
                later.TryRemove(t.ExecutionId, out _);
            }
            else
            {
                next.TrySetResult();
            }
        };
        using var account = await gateway.CreateAccountAsync();

        var completes = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""")).Json.GetProperty("id").GetString()!;
        // A failure is retried: its first attempt's outcome (back to PENDING) is pipelined the same way.
        var retried = (await account.Client.SubmitTextAsync(simulate: """{"fail":"server_error","fail_times":1,"latency_ms":0}""")).Json.GetProperty("id").GetString()!;

        foreach (var id in new[] { completes, retried })
        {
            var done = await account.Client.WaitForTerminalAsync(id);
            done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
            outcomeFirst[id].ShouldBeTrue("the outcome was asked for before the start's write answered");
            var writes = store.Transitions.Where(t => t.ExecutionId == id).ToList();
            writes.ShouldAllBe(t => t.Pipelined);
            writes.Select(t => t.To).ShouldBe(id == completes
                ? [ExecutionStatus.Processing, ExecutionStatus.Completed]
                : [ExecutionStatus.Processing, ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Completed]);
            var events = await store.ListEventsAsync(id, 0, CancellationToken.None);
            events.Select(e => e.Status).ShouldBe(id == completes
                ? [ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Completed]
                : [ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Completed]);
        }
    }

    [Fact]
    public async Task A_provider_that_may_call_back_is_called_only_after_the_start_commits()
    {
        await using var gateway = new GatewayFactory(services: RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        // The start's answer is held back a moment: a call made before it would have its outcome asked for meanwhile.
        var startAnswered = false;
        bool? startAnsweredWhenOutcomeAsked = null;
        store.BeforeAnswering = async t =>
        {
            if (t.To == ExecutionStatus.Processing)
            {
                await Task.Delay(300);
                Volatile.Write(ref startAnswered, true);
            }
            else
            {
                startAnsweredWhenOutcomeAsked ??= Volatile.Read(ref startAnswered);
            }
        };
        using var account = await gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitAsync("sim/image", """{"prompt":"a lighthouse","n":1,"simulate":{"latency_ms":50}}""")).Json.GetProperty("id").GetString()!;

        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        startAnsweredWhenOutcomeAsked.ShouldBe(true, "the provider was called only after the start had been written");
        var writes = store.Transitions.Where(t => t.ExecutionId == id).ToList();
        writes.Select(t => t.To).ShouldBe([ExecutionStatus.Processing, ExecutionStatus.AwaitingWebhook, ExecutionStatus.Completed]);
        writes.ShouldAllBe(t => !t.Pipelined, "the callback's token is stored before the provider can use it");
    }
}
