using System.Security.Cryptography;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>docs/api.md#webhooks: endpoint secrets, their rotation with an overlap, and the account's default secret.</summary>
public sealed class SecretRotationTests() : GatewayAndReceiver(FastRetries)
{
    private const int Seconds = 60;

    private static readonly Dictionary<string, string?> FastRetries = new()
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:RetrySchedule:1"] = "00:00:00.200",
        ["ModelRoute:Webhooks:RetrySchedule:2"] = "00:00:00.200",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:02",
    };

    [Fact]
    public async Task After_a_rotation_deliveries_carry_two_signatures_one_verifying_with_the_old_secret_and_one_with_the_new()
    {
        using var account = await Gateway.CreateAccountAsync();
        var (endpointId, oldSecret) = await CreateEndpointAsync(account, Receiver.Url("/rotating"));

        // Before: one signature, by the creation secret.
        var before = await DeliveredAsync(account, Receiver);
        before.Signature.Split(' ').Length.ShouldBe(1);
        Verifies(oldSecret, before).ShouldBeTrue();

        var rotated = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/rotate-secret", "{}");
        rotated.Status.ShouldBe(200, rotated.Body);
        rotated.Json.GetProperty("id").GetString().ShouldBe(endpointId);
        var newSecret = rotated.Json.GetProperty("secret").GetString()!;
        newSecret.ShouldStartWith("whsec_");
        newSecret.ShouldNotBe(oldSecret);
        // The default overlap is 24 hours.
        var expires = DateTimeOffset.Parse(rotated.Json.GetProperty("previous_secret_expires_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        expires.ShouldBeGreaterThan(DateTimeOffset.UtcNow + TimeSpan.FromHours(23));

        var after = await DeliveredAsync(account, Receiver);

        var signatures = after.Signature.Split(' ');
        signatures.Length.ShouldBe(2, after.Signature);
        signatures.ShouldAllBe(s => s.StartsWith("v1,", StringComparison.Ordinal));
        signatures.Distinct().Count().ShouldBe(2);
        Verifies(oldSecret, after).ShouldBeTrue("a receiver still holding the old secret accepts");
        Verifies(newSecret, after).ShouldBeTrue("a receiver already holding the new secret accepts");
        Verifies(WebhookSigner.NewSecret(), after).ShouldBeFalse("some other secret does not verify");
        Verifies(await DefaultSecretAsync(account), after).ShouldBeFalse("an endpoint is not signed with the account default secret");
    }

    [Fact]
    public async Task After_the_overlap_only_the_new_secret_signs()
    {
        var settings = new Dictionary<string, string?>(FastRetries) { ["ModelRoute:Webhooks:RotationOverlap"] = "00:00:01" };
        await using var gateway = new GatewayFactory(settings);
        using var account = await gateway.CreateAccountAsync();
        var (endpointId, oldSecret) = await CreateEndpointAsync(account, Receiver.Url("/short-overlap"));

        var rotated = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/rotate-secret", "{}");
        rotated.Status.ShouldBe(200, rotated.Body);
        var newSecret = rotated.Json.GetProperty("secret").GetString()!;
        var expires = DateTimeOffset.Parse(rotated.Json.GetProperty("previous_secret_expires_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        expires.ShouldBeGreaterThan(DateTimeOffset.UtcNow - TimeSpan.FromSeconds(1));
        // Past the overlap (with room for the clocks' millisecond rounding).
        while (DateTimeOffset.UtcNow <= expires + TimeSpan.FromMilliseconds(250))
        {
            await Task.Delay(100);
        }

        var after = await DeliveredAsync(account, Receiver);

        after.Signature.Split(' ').Length.ShouldBe(1, after.Signature);
        Verifies(newSecret, after).ShouldBeTrue();
        Verifies(oldSecret, after).ShouldBeFalse("the old secret no longer signs once the overlap is over");
    }

    [Fact]
    public async Task Rotating_an_unknown_endpoint_is_404()
    {
        using var account = await Gateway.CreateAccountAsync();

        var response = await account.Client.PostJsonAsync("/v1/webhook-endpoints/we_doesnotexist0000000000/rotate-secret", "{}");

        response.Status.ShouldBe(404, response.Body);
        response.ProblemCode.ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task Rotating_another_accounts_endpoint_is_404_and_leaves_its_secret_alone()
    {
        using var owner = await Gateway.CreateAccountAsync();
        using var other = await Gateway.CreateAccountAsync();
        var (endpointId, secret) = await CreateEndpointAsync(owner, Receiver.Url("/owned"));

        var response = await other.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/rotate-secret", "{}");

        response.Status.ShouldBe(404, response.Body);
        response.ProblemCode.ShouldBe("NOT_FOUND");
        response.Body.ShouldNotContain("whsec_");
        var endpoint = await owner.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}");
        endpoint.Status.ShouldBe(200, endpoint.Body);
        IsNullOrAbsent(endpoint.Json, "previous_secret_expires_at").ShouldBeTrue(endpoint.Body);
        var delivered = await DeliveredAsync(owner, Receiver);
        delivered.Signature.Split(' ').Length.ShouldBe(1, "no rotation happened");
        Verifies(secret, delivered).ShouldBeTrue();
    }

    [Fact]
    public async Task The_default_secret_is_stable_across_calls_and_differs_between_accounts()
    {
        using var first = await Gateway.CreateAccountAsync();
        using var second = await Gateway.CreateAccountAsync();

        var a1 = await DefaultSecretAsync(first);
        var a2 = await DefaultSecretAsync(first);
        var b = await DefaultSecretAsync(second);

        a1.ShouldBe(a2);
        a1.ShouldNotBe(b);
        foreach (var secret in new[] { a1, b })
        {
            secret.ShouldStartWith("whsec_");
            Convert.FromBase64String(secret["whsec_".Length..]).Length.ShouldBeInRange(24, 64);
        }
    }

    [Fact]
    public async Task Endpoint_secrets_are_shown_only_at_creation_and_rotation()
    {
        using var account = await Gateway.CreateAccountAsync();
        var (endpointId, created) = await CreateEndpointAsync(account, Receiver.Url("/shown-once"));
        created.ShouldStartWith("whsec_");
        Convert.FromBase64String(created["whsec_".Length..]).Length.ShouldBeInRange(24, 64);

        var fetched = await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}");
        fetched.Status.ShouldBe(200, fetched.Body);
        IsNullOrAbsent(fetched.Json, "secret").ShouldBeTrue(fetched.Body);
        fetched.Body.ShouldNotContain(created["whsec_".Length..]);

        var listed = await account.Client.GetApiAsync("/v1/webhook-endpoints");
        listed.Status.ShouldBe(200, listed.Body);
        var items = listed.Json.GetProperty("data").EnumerateArray().ToList();
        items.ShouldContain(e => e.GetProperty("id").GetString() == endpointId);
        items.ShouldAllBe(e => IsNullOrAbsent(e, "secret"));
        listed.Body.ShouldNotContain(created["whsec_".Length..]);

        var rotated = await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/rotate-secret", "{}");
        rotated.Status.ShouldBe(200, rotated.Body);
        var secret = rotated.Json.GetProperty("secret").GetString()!;
        secret.ShouldStartWith("whsec_");
        rotated.Body.ShouldNotContain(created["whsec_".Length..]);

        var refetched = await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}");
        IsNullOrAbsent(refetched.Json, "secret").ShouldBeTrue(refetched.Body);
        refetched.Body.ShouldNotContain(secret["whsec_".Length..]);
        var relisted = await account.Client.GetApiAsync("/v1/webhook-endpoints");
        relisted.Json.GetProperty("data").EnumerateArray().ShouldAllBe(e => IsNullOrAbsent(e, "secret"));
        relisted.Body.ShouldNotContain(secret["whsec_".Length..]);
    }

    private static async Task<string> DefaultSecretAsync(TestAccount account)
    {
        var response = await account.Client.GetApiAsync("/v1/webhooks/default-secret");
        response.Status.ShouldBe(200, response.Body);
        return response.Json.GetProperty("secret").GetString()!;
    }

    private static async Task<(string Id, string Secret)> CreateEndpointAsync(TestAccount account, string url)
    {
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{url}}","events":["execution.completed"]}""");
        created.Status.ShouldBe(201, created.Body);
        return (created.Json.GetProperty("id").GetString()!, created.Json.GetProperty("secret").GetString()!);
    }

    /// <summary>Runs one execution to completion and returns the webhook the receiver got for it.</summary>
    private static async Task<ReceivedWebhook> DeliveredAsync(TestAccount account, WebhookReceiver receiver)
    {
        var submitted = await account.Client.SubmitTextAsync();
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id, Seconds)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Eventually.HoldsAsync(() => receiver.Received.Any(w => IsAbout(w, id)), $"the receiver got the webhook of {id}", Seconds);
        var webhook = receiver.Received.First(w => IsAbout(w, id));
        webhook.Json.GetProperty("type").GetString().ShouldBe("execution.completed");
        return webhook;
    }

    private static bool IsAbout(ReceivedWebhook webhook, string executionId) =>
        webhook.Json.TryGetProperty("data", out var data) && data.TryGetProperty("id", out var id) && id.GetString() == executionId;

    /// <summary>What a receiver holding <paramref name="secret"/> does: any v1 signature equal, in constant time, to its own over "{id}.{timestamp}.{body}".</summary>
    private static bool Verifies(string secret, ReceivedWebhook webhook)
    {
        var expected = Encoding.ASCII.GetBytes(WebhookSigner.Sign(secret, webhook.Id, webhook.Timestamp, webhook.Body));
        return webhook.Signature.Split(' ')
            .Where(s => s.StartsWith("v1,", StringComparison.Ordinal))
            .Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }

    private static bool IsNullOrAbsent(JsonElement element, string property) =>
        !element.TryGetProperty(property, out var value) || value.ValueKind == JsonValueKind.Null;
}
