using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// docs/api.md#webhooks: "Any Standard Webhooks library must verify what the gateway sends". The gateway delivers
/// to a node process that checks every request with the published <c>standardwebhooks</c> npm library.
/// </summary>
public sealed class StandardWebhooksInteropTests : IAsyncLifetime
{
    // Generous: the first run installs the npm package, and the machine is shared.
    private const int Seconds = 90;

    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:00.200",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:02",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_npm_library_is_installed_by_the_test_run_itself()
    {
        var script = await StandardWebhooksNode.EnsureInstalledAsync();

        File.Exists(script).ShouldBeTrue();
        var package = Path.Combine(StandardWebhooksNode.CacheDirectory, "node_modules", "standardwebhooks", "package.json");
        using var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(package));
        manifest.RootElement.GetProperty("version").GetString().ShouldBe(StandardWebhooksNode.LibraryVersion);
    }

    [Fact]
    public async Task A_submission_webhook_signed_with_the_account_default_secret_verifies_in_the_npm_library()
    {
        using var account = await _gateway.CreateAccountAsync();
        var secret = await DefaultSecretAsync(account);
        await using var node = await StandardWebhooksNode.StartAsync(secret);

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{node.Url}}" """);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        var verdict = await VerdictAsync(node, id, "execution.completed");
        verdict.Valid.ShouldBeTrue($"{verdict} {node.Errors}");
        verdict.Id.ShouldNotBeNull().ShouldStartWith("evt_");
        verdict.Signatures.ShouldBe(1);
        node.Verdicts.Where(v => v.ExecutionId == id).ShouldAllBe(v => v.Valid);

        var delivery = await SettledDeliveryAsync(account, $"/v1/executions/{id}/webhook-deliveries", verdict.Id!);
        delivery.GetProperty("status").GetString().ShouldBe("succeeded", delivery.ToString());
        delivery.GetProperty("last_status_code").GetInt32().ShouldBe(204);
        delivery.GetProperty("endpoint_id").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task A_registered_endpoint_gets_completed_and_failed_events_that_verify_in_the_npm_library()
    {
        using var account = await _gateway.CreateAccountAsync();
        var secretsFile = Path.Combine(_gateway.DataDirectory, $"secrets-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(secretsFile, "");
        await using var node = await StandardWebhooksNode.StartWithSecretsFileAsync(secretsFile);
        var (endpointId, secret) = await CreateEndpointAsync(account, node.Url, """["execution.completed","execution.failed"]""");
        await File.WriteAllTextAsync(secretsFile, secret);

        var completed = await SubmitAndFinishAsync(account, "{}", "COMPLETED");
        var failed = await SubmitAndFinishAsync(account, """{"fail":"content_policy"}""", "FAILED");

        var completedVerdict = await VerdictAsync(node, completed, "execution.completed");
        var failedVerdict = await VerdictAsync(node, failed, "execution.failed");
        completedVerdict.Valid.ShouldBeTrue($"{completedVerdict} {node.Errors}");
        failedVerdict.Valid.ShouldBeTrue($"{failedVerdict} {node.Errors}");
        completedVerdict.Signatures.ShouldBe(1);
        completedVerdict.Id.ShouldNotBe(failedVerdict.Id);
        node.Verdicts.ShouldAllBe(v => v.Valid);

        foreach (var verdict in new[] { completedVerdict, failedVerdict })
        {
            var delivery = await SettledDeliveryAsync(account, $"/v1/webhook-endpoints/{endpointId}/deliveries", verdict.Id!);
            delivery.GetProperty("status").GetString().ShouldBe("succeeded", delivery.ToString());
            delivery.GetProperty("last_status_code").GetInt32().ShouldBe(204);
            delivery.GetProperty("event_type").GetString().ShouldBe(verdict.Type);
        }
    }

    [Fact]
    public async Task During_a_rotation_the_npm_library_verifies_the_two_signatures_with_either_secret()
    {
        using var account = await _gateway.CreateAccountAsync();
        var secretsFile = Path.Combine(_gateway.DataDirectory, $"secrets-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(secretsFile, "");
        await using var node = await StandardWebhooksNode.StartWithSecretsFileAsync(secretsFile);
        var (endpointId, oldSecret) = await CreateEndpointAsync(account, node.Url, """["execution.completed"]""");
        var rotated = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/rotate-secret", "{}");
        rotated.Status.ShouldBe(200, rotated.Body);
        var newSecret = rotated.Json.GetProperty("secret").GetString()!;
        // Each secret on its own, the way a receiver holding only that one checks.
        await File.WriteAllTextAsync(secretsFile, $"{oldSecret} {newSecret}");

        var id = await SubmitAndFinishAsync(account, "{}", "COMPLETED");

        var verdict = await VerdictAsync(node, id, "execution.completed");
        verdict.Signatures.ShouldBe(2);
        verdict.ValidEach.ShouldBe([true, true], $"{verdict} {node.Errors}");
        verdict.Valid.ShouldBeTrue();
    }

    [Fact]
    public async Task A_receiver_holding_the_wrong_secret_rejects_with_400_and_the_gateway_records_the_failed_attempts()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var node = await StandardWebhooksNode.StartAsync(WebhookSigner.NewSecret());
        var (endpointId, _) = await CreateEndpointAsync(account, node.Url, """["execution.completed","execution.failed"]""");

        var id = await SubmitAndFinishAsync(account, "{}", "COMPLETED");

        var verdict = await VerdictAsync(node, id, "execution.completed");
        verdict.Valid.ShouldBeFalse();
        verdict.Error.ShouldNotBeNull().ShouldContain("No matching signature");

        // With the test schedule (3 attempts), the delivery ends failed after three 400s, all with the same webhook-id.
        var delivery = await SettledDeliveryAsync(account, $"/v1/webhook-endpoints/{endpointId}/deliveries", verdict.Id!);
        delivery.GetProperty("status").GetString().ShouldBe("failed", delivery.ToString());
        delivery.GetProperty("last_status_code").GetInt32().ShouldBe(400);
        delivery.GetProperty("attempts").GetInt32().ShouldBe(3);
        var log = delivery.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Count.ShouldBe(3);
        log.ShouldAllBe(a => a.GetProperty("status_code").GetInt32() == 400);
        var seen = node.Verdicts.Where(v => v.ExecutionId == id).ToList();
        seen.Count.ShouldBeGreaterThanOrEqualTo(3);
        seen.ShouldAllBe(v => !v.Valid && v.Id == verdict.Id);
    }

    [Fact]
    public async Task A_body_with_non_ascii_text_is_signed_over_its_utf8_bytes_and_verifies_in_the_npm_library()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var node = await StandardWebhooksNode.StartAsync(await DefaultSecretAsync(account));

        // The simulator echoes the prompt into the output, so the webhook body carries these characters.
        var submitted = await account.Client.SubmitAsync(
            "sim/text",
            """{"messages":[{"role":"user","content":"héllo wörld — ☃ 日本語 🚀 \"quoted\" <tag> & done"}]}""",
            extra: $$""","webhook_url":"{{node.Url}}" """);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id, Seconds)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        var verdict = await VerdictAsync(node, id, "execution.completed");
        verdict.Valid.ShouldBeTrue($"{verdict} {node.Errors}");
    }

    [Fact]
    public async Task A_failed_delivery_redelivered_once_the_receiver_holds_the_right_secret_verifies_with_the_same_webhook_id()
    {
        using var account = await _gateway.CreateAccountAsync();
        var secretsFile = Path.Combine(_gateway.DataDirectory, $"secrets-{Guid.NewGuid():N}.txt");
        await File.WriteAllTextAsync(secretsFile, WebhookSigner.NewSecret());
        await using var node = await StandardWebhooksNode.StartWithSecretsFileAsync(secretsFile);
        var (endpointId, secret) = await CreateEndpointAsync(account, node.Url, """["execution.completed"]""");
        var id = await SubmitAndFinishAsync(account, "{}", "COMPLETED");
        var rejected = await VerdictAsync(node, id, "execution.completed");
        rejected.Valid.ShouldBeFalse();
        var failed = await SettledDeliveryAsync(account, $"/v1/webhook-endpoints/{endpointId}/deliveries", rejected.Id!);
        failed.GetProperty("status").GetString().ShouldBe("failed", failed.ToString());

        await File.WriteAllTextAsync(secretsFile, secret);
        var redelivered = await account.Client.PostJsonAsync($"/v1/webhook-deliveries/{failed.GetProperty("id").GetString()}/redeliver", "{}");
        redelivered.Status.ShouldBe(202, redelivered.Body);

        await Eventually.HoldsAsync(() => node.Verdicts.Any(v => v.ExecutionId == id && v.Valid), "the redelivery verified", Seconds);
        node.Verdicts.First(v => v.ExecutionId == id && v.Valid).Id.ShouldBe(rejected.Id);
    }

    private static async Task<string> DefaultSecretAsync(TestAccount account)
    {
        var response = await account.Client.GetApiAsync("/v1/webhooks/default-secret");
        response.Status.ShouldBe(200, response.Body);
        return response.Json.GetProperty("secret").GetString()!;
    }

    private static async Task<(string Id, string Secret)> CreateEndpointAsync(TestAccount account, string url, string events)
    {
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{url}}","events":{{events}}}""");
        created.Status.ShouldBe(201, created.Body);
        return (created.Json.GetProperty("id").GetString()!, created.Json.GetProperty("secret").GetString()!);
    }

    private static async Task<string> SubmitAndFinishAsync(TestAccount account, string simulate, string status)
    {
        var submitted = await account.Client.SubmitTextAsync(simulate: simulate);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id, Seconds)).GetProperty("status").GetString().ShouldBe(status);
        return id;
    }

    /// <summary>The first request the node receiver got about <paramref name="executionId"/>, which must be of <paramref name="type"/>.</summary>
    private static async Task<NodeVerdict> VerdictAsync(StandardWebhooksNode node, string executionId, string type)
    {
        await Eventually.HoldsAsync(() => node.Verdicts.Any(v => v.ExecutionId == executionId), $"the node receiver got the webhook of {executionId}", Seconds);
        var verdict = node.Verdicts.First(v => v.ExecutionId == executionId);
        verdict.Type.ShouldBe(type, verdict.ToString());
        return verdict;
    }

    /// <summary>The delivery of event <paramref name="eventId"/> once it is no longer pending.</summary>
    private static async Task<JsonElement> SettledDeliveryAsync(TestAccount account, string path, string eventId)
    {
        JsonElement? found = null;
        await Eventually.HoldsAsync(
            async () =>
            {
                var page = await account.Client.GetApiAsync(path);
                page.Status.ShouldBe(200, page.Body);
                found = page.Json.GetProperty("data").EnumerateArray()
                    .Where(d => d.GetProperty("event_id").GetString() == eventId)
                    .Select(d => (JsonElement?)d)
                    .FirstOrDefault();
                return found is { } d && d.GetProperty("status").GetString() != "pending";
            },
            $"the delivery of {eventId} settled",
            Seconds);
        return found!.Value;
    }
}
