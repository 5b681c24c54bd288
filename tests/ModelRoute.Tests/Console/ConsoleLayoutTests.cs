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
        // An endpoint whose receiver is down (port 9 refuses), so that the webhooks view has deliveries with errors.
        (await account.Client.PostJsonAsync("/v1/webhook-endpoints", """{"url":"http://127.0.0.1:9/hooks/modelroute","description":"billing service"}""")).Status.ShouldBe(201);
        (await account.Client.PostJsonAsync("/v1/api-keys", """{"name":"nightly-batch","max_spend_usd":"5.00"}""")).Status.ShouldBe(201);
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

        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        await Expect(tab.Row(account.Id)).ToBeVisibleAsync();
        await ShouldFitAsync(tab.Page);
        await tab.ScreenshotAsync($"accounts-{name}");

        foreach (var view in new[] { "overview", "providers" })
        {
            await tab.Page.GotoAsync($"/console/#/{view}");
            await Expect(tab.Page.Locator("tr[data-id='sim'] td[data-testid='Circuit']")).ToBeVisibleAsync();
            await ShouldFitAsync(tab.Page);
        }

        await tab.ShouldHaveRunNothingHostileAsync();
        await account.Client.PostJsonAsync($"/v1/executions/{running}/cancel", "{}");
    }

    private static async Task ShouldFitAsync(IPage page)
    {
        var (scroll, viewport) = (await page.EvaluateAsync<int>("() => document.documentElement.scrollWidth"), page.ViewportSize!.Width);
        scroll.ShouldBeLessThanOrEqualTo(viewport, $"{page.Url} scrolls sideways at {viewport} px");
    }
}
