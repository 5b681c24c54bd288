using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>The API keys view: a key made in the console works, shown once; revoked there, the API refuses it (docs/console.md).</summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleKeyTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_key_created_in_the_console_is_shown_once_and_works_and_once_revoked_there_the_api_refuses_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        var ownId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await Expect(tab.Cell(tab.Row(ownId), "Key")).ToContainTextAsync("this console's key");

        await tab.Page.GetByLabel("Name (optional)").FillAsync("ci-from-console");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Create key" }).ClickAsync();
        var panel = tab.Page.GetByRole(AriaRole.Group, new() { Name = "New key" });
        await Expect(panel).ToContainTextAsync("shown only this once and cannot be shown again");
        var secret = (await panel.Locator("[data-testid='secret']").TextContentAsync())!;
        secret.ShouldStartWith("mr_");
        var created = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data").EnumerateArray().Single(k => k.GetProperty("name").GetString() == "ci-from-console");
        var keyId = created.GetProperty("id").GetString()!;
        await Expect(tab.Cell(tab.Row(keyId), "Status")).ToHaveTextAsync("active");
        await Expect(tab.Cell(tab.Row(keyId), "Key")).ToContainTextAsync("ci-from-console");
        using (var client = _gateway.WithBearer(secret))
        {
            (await client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
        }

        await panel.GetByRole(AriaRole.Button, new() { Name = "Done, hide it" }).ClickAsync();
        await Expect(tab.Page.Locator("[data-testid='secret']")).ToHaveCountAsync(0);
        (await tab.Page.ContentAsync()).ShouldNotContain(secret);

        await tab.Row(keyId).GetByRole(AriaRole.Button, new() { Name = $"Revoke {keyId}" }).ClickAsync();
        await tab.Row(keyId).GetByRole(AriaRole.Button, new() { Name = "Yes, revoke" }).ClickAsync();
        await Expect(tab.Cell(tab.Row(keyId), "Status")).ToHaveTextAsync("revoked");
        await Expect(tab.Row(keyId).GetByRole(AriaRole.Button)).ToHaveCountAsync(0);

        using (var client = _gateway.WithBearer(secret))
        {
            var refused = await client.GetApiAsync("/v1/balance");
            refused.Status.ShouldBe(401, refused.Body);
        }

        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
        await Expect(tab.Cell(tab.Row(ownId), "Status")).ToHaveTextAsync("active");
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task Revoking_the_key_the_console_is_signed_in_with_signs_the_tab_out()
    {
        using var account = await _gateway.CreateAccountAsync();
        var ownId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GotoAsync("/console/#/keys");

        await tab.Row(ownId).GetByRole(AriaRole.Button, new() { Name = $"Revoke {ownId}" }).ClickAsync();
        await Expect(tab.Row(ownId)).ToContainTextAsync("You will be signed out");
        await tab.Row(ownId).GetByRole(AriaRole.Button, new() { Name = "Yes, revoke" }).ClickAsync();
        await Expect(tab.Cell(tab.Row(ownId), "Status")).ToHaveTextAsync("revoked");

        // The next call with the revoked key is refused, and the tab signs out.
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Balance and ledger" }).ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        (await tab.Page.EvaluateAsync<int>("() => sessionStorage.length")).ShouldBe(0);
        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(401);
        await tab.ShouldHaveRunNothingHostileAsync();
    }
}
