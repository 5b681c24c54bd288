using System.Text.RegularExpressions;
using Dapper;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#traces with nothing listening to the <c>ModelRoute</c> source (no OTLP endpoint, as by default):
/// the trace context is still stored and handed on, and the attempt, provider-call and delivery metrics are recorded.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingWithoutListenerTests() : GatewayAndReceiver(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
    })
{
    [Fact]
    public Task The_submitters_trace_reaches_the_webhook_receiver_and_shows_on_the_execution() => WithGatewayLogOnFailureAsync(async () =>
    {
        using var account = await Gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"latency_ms":0}""", Receiver.Url());
        var done = await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the webhook arrived");

        done.GetProperty("trace_id").GetString().ShouldBe(traceId);
        Receiver.Received.ShouldHaveSingleItem().Headers["traceparent"].ShouldMatch($"^00-{traceId}-[0-9a-f]{{16}}-01$");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("trace_id").GetString().ShouldBe(traceId);
    });

    [Fact]
    public async Task A_submission_without_traceparent_gets_a_trace_of_its_own_which_its_webhook_carries()
    {
        using var account = await Gateway.CreateAccountAsync();

        var first = await TracingCapture.SubmitTextAsync(account.Client, null, """{"latency_ms":0}""", Receiver.Url("/first"));
        var second = await TracingCapture.SubmitTextAsync(account.Client, null, """{"latency_ms":0}""", Receiver.Url("/second"));
        var traceIds = new[] { first, second }.Select(async id => (await account.Client.WaitForTerminalAsync(id)).GetProperty("trace_id").GetString()!).ToList();
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "both webhooks arrived");

        var (one, two) = (await traceIds[0], await traceIds[1]);
        one.ShouldMatch("^[0-9a-f]{32}$");
        two.ShouldMatch("^[0-9a-f]{32}$");
        one.ShouldNotBe(two, "each submission is a trace of its own");
        Receiver.Received.Single(r => r.Path == "/first").Headers["traceparent"].ShouldStartWith($"00-{one}-");
        Receiver.Received.Single(r => r.Path == "/second").Headers["traceparent"].ShouldStartWith($"00-{two}-");
    }

    [Fact]
    public async Task An_endpoints_delivery_and_the_submissions_own_carry_the_same_trace()
    {
        using var account = await Gateway.CreateAccountAsync();
        (await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{Receiver.Url("/endpoint")}}"}""")).Status.ShouldBe(201);
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();

        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"latency_ms":0}""", Receiver.Url("/own"));
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "both webhooks arrived");

        Receiver.Received.Select(r => r.Path).Order().ShouldBe(["/endpoint", "/own"]);
        Receiver.Received.ShouldAllBe(r => r.Headers["traceparent"].StartsWith($"00-{traceId}-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_redelivery_carries_the_trace_of_the_execution_it_belongs_to()
    {
        using var account = await Gateway.CreateAccountAsync();
        var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();
        var id = await TracingCapture.SubmitTextAsync(account.Client, traceParent, """{"latency_ms":0}""", Receiver.Url());
        await account.Client.WaitForTerminalAsync(id);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 1, "the webhook arrived");
        var delivery = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;

        (await account.Client.PostJsonAsync($"/v1/webhook-deliveries/{delivery}/redeliver", "{}")).Status.ShouldBe(202);
        await Eventually.HoldsAsync(() => Receiver.Received.Count == 2, "the redelivery arrived");

        Receiver.Received.ShouldAllBe(r => r.Headers["traceparent"].StartsWith($"00-{traceId}-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_execution_stored_without_trace_context_shows_a_null_trace_id()
    {
        using var account = await Gateway.CreateAccountAsync();
        var id = await TracingCapture.SubmitTextAsync(account.Client, null, """{"latency_ms":0}""");
        await account.Client.WaitForTerminalAsync(id);

        await using (var connection = Gateway.OpenStoreConnection())
        {
            (await connection.ExecuteAsync("UPDATE executions SET trace_parent = NULL WHERE id = @id", new { id })).ShouldBe(1);
        }

        var execution = (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json;
        execution.TryGetProperty("trace_id", out var traceId).ShouldBeTrue("the field is always there");
        traceId.ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Attempts_retries_provider_calls_queue_waits_and_webhook_sends_are_measured()
    {
        using var account = await Gateway.CreateAccountAsync();
        using var anonymous = Gateway.Anonymous();

        var id = await TracingCapture.SubmitTextAsync(account.Client, null, """{"fail":"server_error","fail_times":1,"latency_ms":0}""", Receiver.Url());
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Eventually.HoldsAsync(() => !Receiver.Received.IsEmpty, "the webhook arrived");

        string metrics = "";
        await Eventually.HoldsAsync(
            async () => (metrics = (await anonymous.GetApiAsync("/metrics")).Body).Contains("modelroute_webhook_delivery_duration_seconds_count", StringComparison.Ordinal),
            "the webhook send is measured");
        Sample(metrics, "modelroute_execution_attempts_total", ("provider", "sim"), ("model", "sim/text")).ShouldBeGreaterThanOrEqualTo(2);
        Sample(metrics, "modelroute_provider_call_duration_seconds_count", ("provider", "sim"), ("outcome", "provider_unavailable")).ShouldBeGreaterThanOrEqualTo(1);
        Sample(metrics, "modelroute_provider_call_duration_seconds_count", ("provider", "sim"), ("outcome", "succeeded")).ShouldBeGreaterThanOrEqualTo(1);
        Sample(metrics, "modelroute_execution_queue_wait_seconds_count", ("model", "sim/text")).ShouldBeGreaterThanOrEqualTo(1);
        Sample(metrics, "modelroute_webhook_delivery_duration_seconds_count", ("outcome", "succeeded")).ShouldBeGreaterThanOrEqualTo(1);
        metrics.ShouldNotContain(id, customMessage: "no execution id is a label");
    }

    /// <summary>The value of the one series of <paramref name="name"/> with these labels (among others); 0 when there is none.</summary>
    private static double Sample(string metrics, string name, params (string Label, string Value)[] labels)
    {
        var values = metrics.Split('\n')
            .Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && labels.All(l => line.Contains($"{l.Label}=\"{l.Value}\"", StringComparison.Ordinal)))
            .Select(line => double.Parse(Regex.Match(line, @"\}\s+(\S+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        return values.Sum();
    }
}
