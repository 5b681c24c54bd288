using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>The operator's views (admin key): accounts, credits, disabling, providers (docs/console.md).</summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleOperatorTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_operator_credits_an_account_then_disables_it_so_that_its_key_is_refused_and_enables_it_again()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        var row = tab.Row(account.Id);
        await Expect(tab.Cell(row, "Balance")).ToHaveTextAsync("$1.000000");

        await row.GetByRole(AriaRole.Button, new() { Name = "Credit" }).ClickAsync();
        await tab.Page.GetByLabel("Amount (USD)").FillAsync("5.25");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Add credit" }).ClickAsync();
        await Expect(tab.Cell(row, "Balance")).ToHaveTextAsync("$6.250000");
        (await account.Client.GetApiAsync("/v1/balance")).Json.GetProperty("balance").GetString().ShouldBe("6.250000");

        await row.GetByRole(AriaRole.Button, new() { Name = "Disable" }).ClickAsync();
        await Expect(tab.Cell(row, "Status")).ToHaveTextAsync("disabled");
        var refused = await account.Client.GetApiAsync("/v1/balance");
        refused.Status.ShouldBe(403);
        refused.ProblemCode.ShouldBe("ACCOUNT_DISABLED");

        await row.GetByRole(AriaRole.Button, new() { Name = "Enable" }).ClickAsync();
        await Expect(tab.Cell(row, "Status")).ToHaveTextAsync("active");
        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task The_provider_view_shows_a_providers_circuit_opening()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Providers" }).ClickAsync();
        await Expect(tab.Cell(tab.Row("sim"), "Circuit")).ToHaveTextAsync("closed");
        await Expect(tab.Cell(tab.Row("flaky"), "Circuit")).ToHaveTextAsync("closed");

        // Every attempt fails: two failures are enough for this provider's breaker to open.
        var id = await account.SubmitAsync("sim/flaky", "down", """{"fail":"server_error","latency_ms":0}""");
        await account.Client.WaitForTerminalAsync(id);

        await Expect(tab.Cell(tab.Row("flaky"), "Circuit")).ToHaveTextAsync("open");
        await Expect(tab.Cell(tab.Row("flaky"), "In flight")).ToHaveTextAsync("0");
        await Expect(tab.Cell(tab.Row("sim"), "Circuit")).ToHaveTextAsync("closed");
        await tab.ScreenshotAsync("providers");
    }

    [Fact]
    public async Task The_overview_shows_a_webhook_backlog_work_in_flight_money_held_and_an_open_circuit()
    {
        // The store counted every second, so that the figures follow the test quickly.
        await using var gateway = ConsoleGateway.Start(new Dictionary<string, string?> { ["ModelRoute:Metrics:SampleInterval"] = "00:00:01" });
        using var account = await gateway.CreateAccountAsync();
        // Port 9 (discard) refuses: the execution's webhook stays in the outbox between retries.
        var notified = await account.SubmitAsync("sim/text", "tell a receiver that is down", extra: ""","webhook_url":"http://127.0.0.1:9/hook" """);
        await account.Client.WaitForTerminalAsync(notified);
        var running = await account.SubmitAsync("sim/text", "a long one", """{"latency_ms":60000}""");
        await account.Client.WaitForStatusAsync(running, "PROCESSING");
        // Every attempt fails: two open this provider's circuit, and the execution waits in PENDING for it to close.
        var failing = await account.SubmitAsync("sim/flaky", "down", """{"fail":"server_error","latency_ms":0}""");
        using (var admin = gateway.Admin())
        {
            await Eventually.HoldsAsync(
                async () => (await admin.GetApiAsync("/v1/admin/providers")).Json.GetProperty("data").EnumerateArray().Any(p => p.GetProperty("name").GetString() == "flaky" && p.GetProperty("circuit").GetString() == "open"),
                "the flaky provider's circuit open", 20);
        }

        await account.Client.WaitForStatusAsync(failing, "PENDING");
        var held = (await account.Client.GetApiAsync("/v1/balance")).Json.GetProperty("held").GetString()!;

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, gateway);
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Overview" }).ClickAsync();

        await Expect(tab.Page.Locator(".figure-value[data-testid='Outbox backlog']")).ToHaveTextAsync("1");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Processing']")).ToHaveTextAsync("1");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Pending']")).ToHaveTextAsync("1");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Money held']")).ToHaveTextAsync("$" + held);
        await Expect(tab.Page.Locator(".figure-value[data-testid='Oldest pending delivery']")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"\d+ (s|min)"));
        await Expect(tab.Page.Locator("[data-testid='sampled']")).ToContainTextAsync("Counted at");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Ended per second']")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(@"^\d+(\.\d+)?$"));
        await Expect(tab.Cell(tab.Row("flaky"), "Circuit")).ToHaveTextAsync("open");
        await Expect(tab.Cell(tab.Row("flaky"), "Error rate")).ToHaveTextAsync("100.0%");
        await Expect(tab.Cell(tab.Row("sim"), "In flight")).ToHaveTextAsync("1");
        await Expect(tab.Cell(tab.Row("sim"), "Latency p50 / p95")).ToContainTextAsync(" ms");
        await tab.ScreenshotAsync("overview");

        foreach (var id in new[] { running, failing })
        {
            (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBeOneOf([200, 202]);
        }

        await Expect(tab.Page.Locator(".figure-value[data-testid='Processing']")).ToHaveTextAsync("0");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Pending']")).ToHaveTextAsync("0");
        await Expect(tab.Page.Locator(".figure-value[data-testid='Money held']")).ToHaveTextAsync("$0.000000");
        await tab.ShouldHaveRunNothingHostileAsync();
    }
}
