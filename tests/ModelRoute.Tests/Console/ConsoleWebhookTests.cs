using System.Security.Cryptography;
using Microsoft.Playwright;
using ModelRoute.Server.Webhooks;
using ModelRoute.Tests.Webhooks;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>
/// The webhooks view against a real receiver on loopback: an endpoint made in the console gets a delivery, a redelivery
/// and a test event; its secret is shown once when made and once when rotated; it is deleted (docs/console.md).
/// </summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleWebhookTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();
    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _receiver.DisposeAsync();
    }

    [Fact]
    public async Task An_endpoint_made_in_the_console_gets_a_delivery_which_is_redelivered_and_a_test_event()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Webhooks" }).ClickAsync();
        await Expect(tab.Page.GetByText("No endpoints yet.")).ToBeVisibleAsync();

        await tab.Page.GetByLabel("URL").FillAsync(_receiver.Url("/console"));
        await tab.Page.GetByLabel("Description (optional)").FillAsync("the console's receiver");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Create endpoint" }).ClickAsync();
        var secret = await TakeSecretOnceAsync(tab);
        secret.ShouldStartWith("whsec_");
        var endpointId = (await account.Client.GetApiAsync("/v1/webhook-endpoints")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        var card = tab.Page.Locator($"article[data-id='{endpointId}']");
        await Expect(card.Locator("h3")).ToHaveTextAsync(_receiver.Url("/console"));
        await Expect(card).ToContainTextAsync("execution.completed, execution.failed, execution.cancelled, execution.expired");

        var executionId = await account.SubmitAsync("sim/text", "notify me");
        await Eventually.HoldsAsync(() => _receiver.Received.Count == 1, "the execution's webhook arrived", 20);
        Verifies(secret, _receiver.Received.Single()).ShouldBeTrue();
        var first = await DeliveriesAsync(account, endpointId);
        var firstId = first[0].GetProperty("id").GetString()!;
        var row = tab.Row(firstId);
        await Expect(tab.Cell(row, "Status")).ToHaveTextAsync("succeeded");
        await Expect(tab.Cell(row, "Response")).ToHaveTextAsync("200");
        await Expect(tab.Cell(row, "Attempts")).ToHaveTextAsync("1");
        await Expect(tab.Cell(row, "Latency")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+ ms$"));
        await Expect(row.Locator($"a[href='#/executions/{executionId}']")).ToBeVisibleAsync();

        await row.GetByRole(AriaRole.Button, new() { Name = $"Redeliver {firstId}" }).ClickAsync();
        await Eventually.HoldsAsync(() => _receiver.Received.Count == 2, "the redelivery arrived", 20);
        _receiver.Received.Last().Json.GetProperty("data").GetProperty("id").GetString().ShouldBe(executionId);
        var redelivered = (await DeliveriesAsync(account, endpointId)).Select(d => d.GetProperty("id").GetString()!).Single(id => id != firstId);
        await Expect(tab.Cell(tab.Row(redelivered), "Status")).ToHaveTextAsync("succeeded");
        await Expect(card.Locator("tbody tr")).ToHaveCountAsync(2);

        await card.GetByRole(AriaRole.Button, new() { Name = "Send a test event" }).ClickAsync();
        await Eventually.HoldsAsync(() => _receiver.Received.Count == 3, "the test event arrived", 20);
        _receiver.Received.Last().Json.GetProperty("type").GetString().ShouldBe("webhook.test");
        await Expect(card.Locator("tbody tr")).ToHaveCountAsync(3);
        await Expect(card.Locator("tbody tr").First.Locator("td[data-testid='Event'] .cell-value")).ToHaveTextAsync("webhook.test");
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task A_rotated_secret_is_shown_once_signs_what_follows_and_the_endpoint_is_deleted_after_a_confirm_in_the_page()
    {
        using var account = await _gateway.CreateAccountAsync();
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{_receiver.Url("/rotated")}}"}""");
        var endpointId = created.Json.GetProperty("id").GetString()!;
        var old = created.Json.GetProperty("secret").GetString()!;
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.Page.Context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"]);
        await tab.SignInAsync(account.Key);
        await tab.Page.GotoAsync("/console/#/webhooks");
        var card = tab.Page.Locator($"article[data-id='{endpointId}']");

        await card.GetByRole(AriaRole.Button, new() { Name = $"Rotate the secret of {endpointId}" }).ClickAsync();
        var panel = card.GetByRole(AriaRole.Group, new() { Name = $"New signing secret of {endpointId}" });
        await Expect(panel).ToContainTextAsync("shown only this once");
        await panel.GetByRole(AriaRole.Button, new() { Name = "Copy" }).ClickAsync();
        var rotated = await TakeSecretOnceAsync(tab);
        rotated.ShouldStartWith("whsec_");
        rotated.ShouldNotBe(old);
        (await tab.Page.EvaluateAsync<string>("() => navigator.clipboard.readText()")).ShouldBe(rotated);
        await Expect(card).ToContainTextAsync("Previous secret valid until");

        await card.GetByRole(AriaRole.Button, new() { Name = "Send a test event" }).ClickAsync();
        await Eventually.HoldsAsync(() => _receiver.Received.Count == 1, "the test event arrived", 20);
        Verifies(rotated, _receiver.Received.Single()).ShouldBeTrue("signed with the new secret");
        await tab.Page.ReloadAsync();
        await Expect(card).ToBeVisibleAsync();
        await Expect(tab.Page.Locator("[data-testid='secret']")).ToHaveCountAsync(0);
        (await tab.Page.ContentAsync()).ShouldNotContain(rotated);

        await card.GetByRole(AriaRole.Button, new() { Name = $"Delete {endpointId}" }).ClickAsync();
        await card.GetByRole(AriaRole.Button, new() { Name = "Keep it" }).ClickAsync();
        await card.GetByRole(AriaRole.Button, new() { Name = $"Delete {endpointId}" }).ClickAsync();
        await card.GetByRole(AriaRole.Button, new() { Name = "Yes, delete" }).ClickAsync();
        await Expect(card).ToHaveCountAsync(0);
        (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}")).Status.ShouldBe(404);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task A_failed_deliverys_response_body_is_shown_under_its_attempt_as_text_and_cut_at_1_KiB()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var body = "upstream exploded: <b>not bold</b>\n" + new string('x', 1100);
        receiver.Answer = (_, _) => ReceiverAnswer.Text(500, body);
        using var account = await _gateway.CreateAccountAsync();
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", $$"""{"url":"{{receiver.Url()}}"}""");
        created.Status.ShouldBe(201, created.Body);
        var endpointId = created.Json.GetProperty("id").GetString()!;
        await account.SubmitAsync("sim/text", "tell the receiver");
        var deliveryId = "";
        await Eventually.HoldsAsync(
            async () => (await DeliveriesAsync(account, endpointId)) is [var d, ..] && d.GetProperty("attempt_log").GetArrayLength() > 0 && (deliveryId = d.GetProperty("id").GetString()!) != "",
            "the first attempt was recorded");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Webhooks" }).ClickAsync();
        var response = tab.Cell(tab.Row(deliveryId), "Response");
        // The retry 5 s later may be recorded before the page shows (a slow store): the newest excerpt comes first, the
        // older ones folded under it, each the same body.
        await Expect(response.Locator("pre").First).ToHaveTextAsync(body[..1024]);
        await Expect(response).ToContainTextAsync("Attempt 1 (500), cut at 1 KiB");
        await Expect(response.Locator("b")).ToHaveCountAsync(0);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    /// <summary>Reads the secret the page shows once, hides it, and checks it is gone from the page.</summary>
    private static async Task<string> TakeSecretOnceAsync(ConsoleTab tab)
    {
        var shown = tab.Page.Locator("[data-testid='secret']");
        await Expect(shown).ToHaveCountAsync(1);
        var secret = (await shown.TextContentAsync())!;
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Done, hide it" }).ClickAsync();
        await Expect(shown).ToHaveCountAsync(0);
        (await tab.Page.ContentAsync()).ShouldNotContain(secret);
        return secret;
    }

    private static async Task<JsonElement[]> DeliveriesAsync(TestAccount account, string endpointId)
    {
        var list = await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}/deliveries");
        list.Status.ShouldBe(200, list.Body);
        return [.. list.Json.GetProperty("data").EnumerateArray()];
    }

    private static bool Verifies(string secret, ReceivedWebhook webhook)
    {
        var expected = Encoding.ASCII.GetBytes(WebhookSigner.Sign(secret, webhook.Id, webhook.Timestamp, webhook.Body));
        return webhook.Signature.Split(' ').Any(s => CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(s), expected));
    }
}
