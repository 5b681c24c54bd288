using System.Diagnostics;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Tests.Mcp;

/// <summary>docs/mcp.md#resources: a session subscribed to an execution is told when it ends, on this node or another.</summary>
public sealed class McpSubscriptionTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>resources/subscribe is a method of the session revisions (up to 2025-11-25), which today's clients speak.</summary>
    private static readonly McpClientOptions SessionRevision = new() { ProtocolVersion = "2025-11-25" };

    [Fact]
    public async Task A_subscribed_session_is_notified_when_the_execution_ends_and_not_after_it_unsubscribes()
    {
        await using var gateway = new GatewayFactory();
        using var account = await gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(gateway, account.Key, SessionRevision);
        var watched = await SubmitSlowAsync(client, "sub-1");
        var dropped = await SubmitSlowAsync(client, "sub-2");
        var updates = new ConcurrentQueue<string>();

        client.ServerCapabilities.Resources!.Subscribe.ShouldBe(true);
        await client.SubscribeToResourceAsync(Uri(watched), (n, _) => Record(updates, n));
        await client.SubscribeToResourceAsync(Uri(dropped), (n, _) => Record(updates, n));
        await client.UnsubscribeFromResourceAsync(Uri(dropped));
        (await client.CallAsync("cancel_execution", new { id = dropped })).Structured().GetProperty("status").GetString().ShouldBe("CANCELLED");
        (await client.CallAsync("cancel_execution", new { id = watched })).Structured().GetProperty("status").GetString().ShouldBe("CANCELLED");

        await Eventually.HoldsAsync(() => updates.Contains(Uri(watched)), "the update of the watched execution", 10);
        await Task.Delay(1500);
        updates.ShouldNotContain(Uri(dropped));
        var unknown = await Should.ThrowAsync<ModelContextProtocol.McpException>(() => client.SubscribeToResourceAsync(Uri("exe_00000000000000000000000000"), (_, _) => ValueTask.CompletedTask));
        unknown.Message.ShouldContain("NOT_FOUND");
    }

    [Fact]
    public async Task A_session_on_one_node_is_notified_within_seconds_when_the_execution_ends_on_the_other()
    {
        await using var nodes = await TwoPostgresNodes.StartAsync("mcpsub");
        using var account = await nodes.A.CreateAccountAsync();
        await using var onA = await McpTestClient.ConnectAsync(nodes.A, account.Key, SessionRevision);
        var id = await SubmitSlowAsync(onA, "xnode-1");
        var updates = new ConcurrentQueue<string>();
        await onA.SubscribeToResourceAsync(Uri(id), (n, _) => Record(updates, n));

        // Cancelled through node B's HTTP API, so that the change is committed there.
        using var onB = nodes.B.WithBearer(account.Key);
        var clock = Stopwatch.StartNew();
        (await onB.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);

        await Eventually.HoldsAsync(() => updates.Contains(Uri(id)), "the update on node A", 10);
        output.WriteLine($"The cancel committed on node B reached the session on node A after {clock.ElapsedMilliseconds} ms.");
        clock.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(3), "the watch re-reads at least every second, as a long-poll does");
        var read = await onA.ReadResourceAsync(Uri(id));
        read.Contents.OfType<TextResourceContents>().Single().Text.ShouldContain("\"status\":\"CANCELLED\"");
    }

    private static string Uri(string id) => "modelroute://executions/" + id;

    private static ValueTask Record(ConcurrentQueue<string> updates, ResourceUpdatedNotificationParams notification)
    {
        updates.Enqueue(notification.Uri);
        return ValueTask.CompletedTask;
    }

    private static async Task<string> SubmitSlowAsync(McpClient client, string key) =>
        (await client.CallAsync("submit_execution", new
        {
            model = "sim/text",
            input = new { messages = new[] { new { role = "user", content = "slow" } }, simulate = new { latency_ms = 60000 } },
            idempotency_key = key,
        })).Structured().GetProperty("id").GetString()!;
}
