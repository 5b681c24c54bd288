using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>The console at a laptop's 1280×800 and a phone's 390×844; the screenshots in docs/console/ come from here.</summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleLayoutTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData(1280, 800, "desktop")]
    [InlineData(390, 844, "phone")]
    public async Task Every_view_fits_the_screen_without_sideways_scrolling(int width, int height, string name)
    {
        using var account = await _gateway.CreateAccountAsync("25.00");
        var ids = new List<string>
        {
            await account.SubmitAsync("sim/text", "Summarize the quarterly report in three bullet points.", key: "report-summary", extra: ""","metadata":{"team":"finance","user":"u_42"}"""),
            await account.SubmitAsync("sim/failover", "Translate to French: good morning", """{"fail":"server_error","fail_times":3,"latency_ms":0}""", key: "translate-1"),
            await account.SubmitAsync("sim/text", "Classify this ticket", """{"fail":"content_policy"}""", key: "ticket-7781"),
        };
        var image = await account.Client.SubmitAsync("sim/image", """{"prompt":"a lighthouse at dusk","n":1}""", "lighthouse-1");
        ids.Add(image.Json.GetProperty("id").GetString()!);
        foreach (var id in ids)
        {
            await account.Client.WaitForTerminalAsync(id);
        }

        var running = await account.SubmitAsync("sim/text", "A long essay", """{"latency_ms":60000}""", key: "essay-long");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway, width, height);
        await tab.SignInAsync(account.Key);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(5);
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"executions-{name}");

        await tab.Page.GotoAsync($"/console/#/executions/{ids[1]}");
        await Expect(tab.Page.Locator("section[aria-labelledby='attempts-title'] tbody tr")).ToHaveCountAsync(4);
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"execution-{name}");

        await tab.Page.GotoAsync($"/console/#/executions/{ids[3]}");
        await Expect(tab.Page.GetByRole(AriaRole.Img, new() { Name = "Artifact image-0.png" })).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);

        await tab.Page.GotoAsync($"/console/#/executions/{running}");
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Cancel execution" })).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);

        await tab.Page.GotoAsync("/console/#/balance");
        await Expect(tab.Page.Locator("section[aria-labelledby='ledger-title'] tbody tr").First).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"balance-{name}");

        await AccountViewsFitAsync(tab, account, name);

        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        await Expect(tab.Row(account.Id)).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"accounts-{name}");
        await OperatorViewsFitAsync(tab);

        await tab.ShouldHaveRunNothingHostileAsync();
        await account.Client.PostJsonAsync($"/v1/executions/{running}/cancel", "{}");
    }

    [Fact]
    public async Task The_keyboard_alone_reaches_the_spend_keys_webhooks_and_overview_views_and_their_actions()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.Page.GotoAsync("/console/");
        await tab.TabToAsync("#key");
        await tab.Page.Keyboard.InsertTextAsync(account.Key);
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Executions", Level = 1 })).ToBeVisibleAsync();

        await tab.TabToAsync("a[href='#/spend']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await tab.TabToAsync("a[href='#/spend?days=30']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.Locator("section[aria-labelledby='spend-day-title'] svg rect.bar")).ToHaveCountAsync(30);

        // A key made and revoked: the secret's panel takes the focus, and the confirm step starts on "Keep it".
        await tab.TabToAsync("a[href='#/keys']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await tab.TabToAsync("#key-name");
        await tab.Page.Keyboard.InsertTextAsync("typed");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.Locator("[data-testid='secret']")).ToBeVisibleAsync();
        await tab.TabToAsync(".secret-once button.secondary");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.Locator("[data-testid='secret']")).ToHaveCountAsync(0);
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data").EnumerateArray().Single(k => k.GetProperty("name").GetString() == "typed").GetProperty("id").GetString()!;
        await tab.TabToAsync($"tr[data-id='{keyId}'] button");
        await tab.Page.Keyboard.PressAsync("Enter");
        (await tab.Page.EvaluateAsync<string>("() => document.activeElement.textContent")).ShouldBe("Keep it");
        await tab.Page.Keyboard.PressAsync("Shift+Tab");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Cell(tab.Row(keyId), "Status")).ToHaveTextAsync("revoked");

        await tab.TabToAsync("a[href='#/webhooks']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await tab.TabToAsync("#endpoint-url");
        await tab.Page.Keyboard.InsertTextAsync("http://127.0.0.1:9/typed");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.Locator("article.endpoint h3")).ToHaveTextAsync("http://127.0.0.1:9/typed");
        await tab.TabToAsync(".secret-once button.secondary");
        await tab.Page.Keyboard.PressAsync("Enter");
        await tab.TabToAsync("article.endpoint button[aria-label^='Send a test event']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.Locator("article.endpoint tbody td[data-testid='Event']").First).ToContainTextAsync("webhook.test");

        await tab.TabToAsync("#sign-out");
        await tab.Page.Keyboard.PressAsync("Enter");
        await tab.TabToAsync("#key");
        await tab.Page.Keyboard.InsertTextAsync(GatewayFactory.AdminKey);
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Accounts", Level = 1 })).ToBeVisibleAsync();
        await tab.TabToAsync("a[href='#/overview']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Overview", Level = 1 })).ToBeVisibleAsync();
        await Expect(tab.Cell(tab.Row("sim"), "Circuit")).ToHaveTextAsync("closed");
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    /// <summary>The spend, webhooks and API keys views, with an endpoint whose receiver is down (port 9 refuses) and a second key.</summary>
    private static async Task AccountViewsFitAsync(ConsoleTab tab, TestAccount account, string name)
    {
        var endpoint = await account.Client.PostJsonAsync("/v1/webhook-endpoints", """{"url":"http://127.0.0.1:9/hooks/modelroute","description":"billing service"}""");
        endpoint.Status.ShouldBe(201, endpoint.Body);
        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpoint.Json.GetProperty("id").GetString()}/test", "{}")).Status.ShouldBe(202);
        (await account.Client.PostJsonAsync("/v1/api-keys", """{"name":"nightly-batch","max_spend_usd":"5.00"}""")).Status.ShouldBe(201);

        await tab.Page.GotoAsync("/console/#/spend");
        await Expect(tab.Page.Locator("section[aria-labelledby='spend-model-title'] svg rect.bar")).ToHaveCountAsync(3);
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"spend-{name}");

        await tab.Page.GotoAsync("/console/#/webhooks");
        await Expect(tab.Page.Locator("article.endpoint tbody tr td[data-testid='Delivery']").First).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"webhooks-{name}");

        await tab.Page.GotoAsync("/console/#/keys");
        await Expect(tab.Page.Locator("section[aria-labelledby='keys-title'] tbody tr")).ToHaveCountAsync(2);
        await ShouldFitAsync(tab.Page);
        if (name == "desktop")
        {
            await tab.ScreenshotAsync("keys-desktop");
        }
    }

    /// <summary>The operator's overview and providers views.</summary>
    private static async Task OperatorViewsFitAsync(ConsoleTab tab)
    {
        foreach (var view in new[] { "overview", "providers" })
        {
            await tab.Page.GotoAsync($"/console/#/{view}");
            await Expect(tab.Page.Locator("tr[data-id='sim'] td[data-testid='Circuit']")).ToBeVisibleAsync();
            await ShouldFitAsync(tab.Page);
        }
    }

    private static async Task ShouldFitAsync(IPage page)
    {
        var (scroll, viewport) = (await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"), page.ViewportSize!.Width);
        scroll.ShouldBeLessThanOrEqualTo(viewport, $"{page.Url} scrolls sideways at {viewport} px");
    }
}
