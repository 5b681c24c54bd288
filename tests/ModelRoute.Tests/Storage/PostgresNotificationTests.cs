using ModelRoute.Server.Storage.Postgres;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// docs/architecture.md: a change committed on one node wakes the other nodes at once, through the notifications
/// sent after commit. The waits below complete only through a notification from the other node
/// (a node's own waiters on an execution are woken by its own commits or by the listener, never by a
/// timer), so they fail if notifications stop arriving, whatever the polling fallbacks do.
/// </summary>
public sealed class PostgresNotificationTests : IAsyncLifetime
{
    private TwoPostgresNodes _nodes = null!;

    private GatewayFactory NodeA => _nodes.A;

    private GatewayFactory NodeB => _nodes.B;

    public async Task InitializeAsync() => _nodes = await TwoPostgresNodes.StartAsync(
        "notify",
        new Dictionary<string, string?>
        {
            // Nothing but the cancels below changes the waiting executions: no callback poll comes meanwhile.
            ["ModelRoute:Dispatch:CallbackPollInterval"] = "00:10:00",
        });

    public Task DisposeAsync() => _nodes.DisposeAsync().AsTask();

    [Fact]
    public async Task A_long_poll_on_one_node_is_woken_by_a_cancel_committed_on_another()
    {
        using var account = await NodeA.CreateAccountAsync();
        using var onB = NodeB.WithBearer(account.Key);
        var id = (await SubmitWaitingAsync(account)).Json.GetProperty("id").GetString()!;
        await onB.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var heardOnB = NodeB.Services.GetRequiredService<ExecutionChanges>().WhenChanged(id);
        var longPoll = onB.GetApiAsync($"/v1/executions/{id}?wait=30");

        (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);

        // Node B made no change to this execution: only node A's notification can complete this.
        await heardOnB.WaitAsync(TimeSpan.FromSeconds(15));
        var polled = await longPoll.WaitAsync(TimeSpan.FromSeconds(30));
        polled.Status.ShouldBe(200, polled.Body);
        polled.Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
    }

    [Fact]
    public async Task Every_change_of_a_burst_reaches_the_other_node_even_when_batched_past_the_payload_limit()
    {
        using var account = await NodeA.CreateAccountAsync("100.00");
        var ids = new List<string>();
        for (var i = 0; i < 300; i++)
        {
            var submitted = await SubmitWaitingAsync(account);
            submitted.Status.ShouldBe(202, submitted.Body);
            ids.Add(submitted.Json.GetProperty("id").GetString()!);
        }

        using var onB = NodeB.WithBearer(account.Key);
        foreach (var id in ids)
        {
            await onB.WaitForStatusAsync(id, "AWAITING_WEBHOOK", seconds: 60);
        }

        var changesOnB = NodeB.Services.GetRequiredService<ExecutionChanges>();
        var heard = ids.Select(changesOnB.WhenChanged).ToList();

        // 300 cancels at once: the notifier packs them into messages under 8000 bytes, several ids each.
        var cancels = await Task.WhenAll(ids.Select(id => account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")));
        cancels.ShouldAllBe(c => c.Status == 202);

        await Task.WhenAll(heard).WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>An execution that waits for a provider callback ten minutes away.</summary>
    private static Task<ApiResponse> SubmitWaitingAsync(TestAccount account) =>
        account.Client.SubmitAsync("sim/image", """{"prompt":"wait","n":1,"simulate":{"latency_ms":600000}}""", extra: ""","timeout_seconds":900""");

    [Fact]
    public void Payloads_are_packed_into_messages_under_the_limit_and_read_back_one_by_one()
    {
        var payloads = Enumerable.Range(0, 1000).Select(i => $"exe_{i:D26} COMPLETED").Append(PostgresDatabase.WebhooksPayload).ToList();

        var messages = PostgresNotifier.Pack(payloads);

        messages.Count.ShouldBeGreaterThan(1);
        messages.ShouldAllBe(m => System.Text.Encoding.UTF8.GetByteCount(m) <= PostgresNotifier.MaxMessageBytes);
        messages.SelectMany(m => m.Split('\n')).ShouldBe(payloads);
    }

    [Fact]
    public void Messages_name_the_node_that_sent_them_on_their_first_line_and_stay_under_the_limit()
    {
        var payloads = Enumerable.Range(0, 1000).Select(i => $"exe_{i:D26} COMPLETED").ToList();

        var messages = PostgresNotifier.Pack(payloads, "host/42/abc");

        messages.Count.ShouldBeGreaterThan(1);
        messages.ShouldAllBe(m => m.StartsWith(PostgresNotifier.OriginPrefix + "host/42/abc\n", StringComparison.Ordinal));
        messages.ShouldAllBe(m => System.Text.Encoding.UTF8.GetByteCount(m) <= PostgresNotifier.MaxMessageBytes);
        messages.SelectMany(m => m.Split('\n').Skip(1)).ShouldBe(payloads);
    }

    [Fact]
    public void A_node_skips_its_own_messages_and_hears_the_other_nodes()
    {
        var node = new ModelRoute.Server.Executions.NodeIdentity();
        var other = new ModelRoute.Server.Executions.NodeIdentity();
        var changes = new ExecutionChanges(new ModelRoute.Server.Operations.GatewayMetrics());
        var listener = new PostgresNotificationListener(null!, changes, TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<PostgresNotificationListener>.Instance, node);
        var changed = changes.WhenChanged("exe_1");

        listener.Handle(PostgresNotifier.Pack(["exe_1 COMPLETED"], node.Id).ShouldHaveSingleItem());
        changed.IsCompleted.ShouldBeFalse("its own commit woke its waiters already");

        listener.Handle(PostgresNotifier.Pack(["exe_1 COMPLETED"], other.Id).ShouldHaveSingleItem());
        changed.IsCompleted.ShouldBeTrue();
    }
}
