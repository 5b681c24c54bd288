using System.Globalization;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>The spend view: charts of GET /v1/usage by day and by model, with tables that add up (docs/console.md).</summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleSpendTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Spend_by_day_and_by_model_is_charted_for_both_models_and_the_tables_totals_are_what_the_api_says()
    {
        using var account = await _gateway.CreateAccountAsync();
        var ids = new[]
        {
            await account.SubmitAsync("sim/text", "one"),
            await account.SubmitAsync("sim/text", "two, a little longer"),
            await account.SubmitAsync("sim/failover", "three"),
        };
        foreach (var id in ids)
        {
            await account.Client.WaitForTerminalAsync(id);
        }

        var from = DateTime.UtcNow.AddDays(-6).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var byModel = (await account.Client.GetApiAsync($"/v1/usage?group_by=model&from={from}")).Json;
        var total = byModel.GetProperty("totals").GetProperty("charged").GetString()!;
        total.ShouldNotBe("0.000000");
        var charged = byModel.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("model").GetString()!, m => m.GetProperty("charged").GetString()!);
        charged.Keys.ShouldBe(["sim/text", "sim/failover"], ignoreOrder: true);

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Spend" }).ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Spend", Level = 1 })).ToBeVisibleAsync();

        var models = tab.Page.Locator("section[aria-labelledby='spend-model-title']");
        await Expect(models.GetByRole(AriaRole.Img, new() { Name = "Spend by model" })).ToBeVisibleAsync();
        await Expect(models.Locator("svg rect.bar")).ToHaveCountAsync(2);
        foreach (var (model, amount) in charged)
        {
            await Expect(models.Locator($"svg rect.bar[data-label='{model}']")).ToHaveAttributeAsync("data-value", "$" + amount);
            (await models.Locator($"svg rect.bar[data-label='{model}']").GetAttributeAsync("width")).ShouldNotBe("0");
        }

        await Expect(models.Locator("tfoot td[data-testid='Charged'] .cell-value")).ToHaveTextAsync("$" + total);
        await Expect(models.Locator("tfoot td[data-testid='Executions'] .cell-value")).ToHaveTextAsync("3");

        var days = tab.Page.Locator("section[aria-labelledby='spend-day-title']");
        await Expect(days.Locator("svg rect.bar")).ToHaveCountAsync(7);
        await Expect(days.Locator($"svg rect.bar[data-label='{DateTime.UtcNow:yyyy-MM-dd}']")).ToHaveAttributeAsync("data-value", "$" + total);
        await Expect(days.Locator("tfoot td[data-testid='Charged'] .cell-value")).ToHaveTextAsync("$" + total);
        await Expect(tab.Page.Locator(".figure-value[data-testid='Charged']")).ToHaveTextAsync("$" + total);

        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Last 30 days" }).ClickAsync();
        await Expect(days.Locator("svg rect.bar")).ToHaveCountAsync(30);
        await Expect(days.Locator("tfoot td[data-testid='Charged'] .cell-value")).ToHaveTextAsync("$" + total);
        await Expect(tab.Page.GetByRole(AriaRole.Link, new() { Name = "Last 30 days" })).ToHaveAttributeAsync("aria-current", "page");
        await tab.ShouldHaveRunNothingHostileAsync();
    }
}
