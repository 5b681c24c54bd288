using System.Net;
using System.Net.Sockets;

namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// docs/webhooks.md#where-webhooks-may-go: a receiver that is down costs one log line per failed attempt, without a stack trace,
/// and HttpClient's own per-request lines stay below the default level.
/// </summary>
public sealed class DeliveryLogTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:00.200",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_failing_delivery_writes_one_line_per_attempt_and_no_exception()
    {
        using var account = await _gateway.CreateAccountAsync();
        var url = $"http://127.0.0.1:{ClosedPort()}/hook";
        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{url}}" """);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;

        // Three attempts (the schedule's length), each refused: the delivery ends failed.
        System.Text.Json.JsonElement delivery = default;
        await Eventually.HoldsAsync(
            async () =>
            {
                var list = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data");
                delivery = list.EnumerateArray().FirstOrDefault();
                return delivery.ValueKind != System.Text.Json.JsonValueKind.Undefined && delivery.GetProperty("status").GetString() == "failed";
            },
            "the delivery failed every attempt");
        var deliveryId = delivery.GetProperty("id").GetString()!;
        var attempts = delivery.GetProperty("attempts").GetInt32();
        attempts.ShouldBe(3);

        // The last attempt's line is written after its result is stored, so the list may show the end a moment first.
        await Eventually.HoldsAsync(
            () => Task.FromResult(_gateway.Logs.Lines.Count(l => l.Contains(deliveryId, StringComparison.Ordinal)) >= attempts),
            "a line for each attempt");
        var lines = _gateway.Logs.Lines.ToList();
        var aboutDelivery = lines.Where(l => l.Contains(deliveryId, StringComparison.Ordinal)).ToList();
        aboutDelivery.Count.ShouldBe(attempts, string.Join('\n', aboutDelivery));
        aboutDelivery.ShouldAllBe(l => l.StartsWith("Warning ", StringComparison.Ordinal) && !l.Contains("Exception", StringComparison.Ordinal) && !l.Contains("   at ", StringComparison.Ordinal));
        lines.Where(l => l.Contains(" System.Net.Http.HttpClient", StringComparison.Ordinal) || l.Contains(" Microsoft.Extensions.Http", StringComparison.Ordinal))
            .ShouldBeEmpty("HttpClient's request lines are below the default level");
        lines.Where(l => l.Contains("Exception", StringComparison.Ordinal)).ShouldBeEmpty();
    }

    /// <summary>A loopback port nothing listens on: connecting is refused at once.</summary>
    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
