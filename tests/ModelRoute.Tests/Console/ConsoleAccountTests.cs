using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>An account's views of the console in a real browser against a real gateway (docs/console.md).</summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleAccountTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = ConsoleGateway.Start();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task An_account_signs_in_sees_its_executions_and_filters_them_by_status_and_model()
    {
        using var account = await _gateway.CreateAccountAsync();
        var done = await account.SubmitAsync("sim/text", "hello", key: "list-done");
        var failed = await account.SubmitAsync("sim/text", "no", """{"fail":"content_policy"}""", key: "list-failed");
        var other = await account.SubmitAsync("sim/failover", "elsewhere", key: "list-other");
        foreach (var id in new[] { done, failed, other })
        {
            await account.Client.WaitForTerminalAsync(id);
        }

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);

        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(3);
        await Expect(tab.Cell(tab.Row(failed), "Status")).ToHaveTextAsync("FAILED");
        await Expect(tab.Cell(tab.Row(done), "Idempotency key")).ToHaveTextAsync("list-done");

        await tab.Page.GetByLabel("Status").SelectOptionAsync("FAILED");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Row(failed)).ToBeVisibleAsync();
        tab.Page.Url.ShouldContain("status=FAILED");

        await tab.Page.GetByLabel("Status").SelectOptionAsync("");
        await Expect(tab.Page.GetByLabel("Model").Locator("option[value='sim/failover']")).ToHaveCountAsync(1);
        await tab.Page.GetByLabel("Model").SelectOptionAsync("sim/failover");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Row(other)).ToBeVisibleAsync();

        // Search: an id opens its page; other text is an idempotency key, found by the server.
        await tab.Page.GotoAsync("/console/#/executions");
        await tab.Page.GetByLabel("Find by id or idempotency key").FillAsync("list-failed");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Find", Exact = true }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await tab.Page.GetByLabel("Find by id or idempotency key").FillAsync(done);
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Find", Exact = true }).ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = $"Execution {done}" })).ToBeVisibleAsync();
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task Executions_come_in_cursor_pages()
    {
        using var account = await _gateway.CreateAccountAsync();
        var batch = string.Join(",", Enumerable.Range(0, 25).Select(i =>
            $$$"""{"model":"sim/text","idempotency_key":"page-{{{i}}}","input":{"messages":[{"role":"user","content":"hi"}]}}"""));
        (await account.Client.PostJsonAsync("/v1/executions/batch", $$"""{"executions":[{{batch}}]}""")).Status.ShouldBe(200);

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);

        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(20);
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Load more" }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(25);
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Load more" })).ToBeHiddenAsync();
    }

    [Fact]
    public async Task A_status_change_arrives_in_the_list_without_a_reload()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.EvaluateAsync("() => { window.__sameDocument = true; }");

        var id = await account.SubmitAsync("sim/text", "slowly", """{"latency_ms":4000}""");

        await Expect(tab.Cell(tab.Row(id), "Status")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("PENDING|PROCESSING"));
        await Expect(tab.Cell(tab.Row(id), "Status")).ToHaveTextAsync("COMPLETED");
        (await tab.Page.EvaluateAsync<bool>("() => window.__sameDocument === true")).ShouldBeTrue();
    }

    [Fact]
    public async Task An_execution_that_retried_and_failed_over_shows_every_attempt_its_cost_and_its_timeline()
    {
        using var account = await _gateway.CreateAccountAsync();
        // Attempts 1–3 fail on the primary route (three tries per route); the fourth, on the backup, completes.
        var id = await account.SubmitAsync("sim/failover", "retry me", """{"fail":"server_error","fail_times":3,"latency_ms":0}""", extra: ""","metadata":{"team":"search"}""");
        await account.Client.WaitForTerminalAsync(id);

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.Locator($"a[href='#/executions/{id}']").ClickAsync();

        await Expect(tab.Page.Locator(".card-head .badge")).ToHaveTextAsync("COMPLETED");
        var attempts = tab.Page.Locator("section[aria-labelledby='attempts-title'] tbody tr");
        await Expect(attempts).ToHaveCountAsync(4);
        await Expect(attempts.Nth(0).Locator("td[data-testid='Error']")).ToContainTextAsync("PROVIDER_UNAVAILABLE");
        await Expect(attempts.Nth(0).Locator("td[data-testid='Provider']")).ToContainTextAsync("primary");
        await Expect(attempts.Nth(3).Locator("td[data-testid='Provider']")).ToContainTextAsync("backup");
        await Expect(attempts.Nth(3).Locator("td[data-testid='Outcome'] .cell-value")).ToHaveTextAsync("completed");
        await Expect(attempts.Nth(3).Locator("td[data-testid='Latency']")).ToContainTextAsync(" ms");

        var execution = (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json;
        var cost = tab.Page.Locator("section[aria-labelledby='cost-title']");
        await Expect(cost).ToContainTextAsync("$" + execution.GetProperty("cost").GetProperty("actual").GetString());
        await Expect(cost).ToContainTextAsync("$" + execution.GetProperty("cost").GetProperty("held").GetString());
        await Expect(tab.Page.Locator("section[aria-labelledby='output-title']")).ToContainTextAsync("Simulated reply from text-b: retry me");
        await Expect(tab.Page.Locator("section[aria-labelledby='metadata-title']")).ToContainTextAsync("search");

        var timeline = tab.Page.Locator(".timeline li");
        await Expect(timeline.Last).ToContainTextAsync("execution.completed");
        (await timeline.AllTextContentsAsync()).Count(t => t.Contains("execution.processing", StringComparison.Ordinal)).ShouldBe(4);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task Cancelling_on_the_execution_page_cancels_it_and_releases_its_hold()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await account.SubmitAsync("sim/text", "take your time", """{"latency_ms":60000}""");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GotoAsync($"/console/#/executions/{id}");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Cancel execution" }).ClickAsync();

        await Expect(tab.Page.Locator(".card-head .badge")).ToHaveTextAsync("CANCELLED");
        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Cancel execution" })).ToHaveCountAsync(0);
        await Expect(tab.Page.Locator(".timeline li").Last).ToContainTextAsync("execution.cancelled");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        (await account.Client.GetApiAsync("/v1/balance")).Json.GetProperty("held").GetString().ShouldBe("0.000000");
    }

    [Fact]
    public async Task An_image_artifact_is_shown_inline()
    {
        using var account = await _gateway.CreateAccountAsync();
        var submitted = await account.Client.SubmitAsync("sim/image", """{"prompt":"a red square","n":1}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GotoAsync($"/console/#/executions/{id}");

        var image = tab.Page.GetByRole(AriaRole.Img, new() { Name = "Artifact image-0.png" });
        await Expect(image).ToBeVisibleAsync();
        (await image.GetAttributeAsync("src"))!.ShouldStartWith("blob:");
        await Expect(image).ToHaveJSPropertyAsync("naturalWidth", 8);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task The_balance_and_the_ledger_show_the_credit_and_each_execution()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var id = await account.SubmitAsync("sim/text", "hello");
        await account.Client.WaitForTerminalAsync(id);
        var balance = (await account.Client.GetApiAsync("/v1/balance")).Json;

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Balance and ledger" }).ClickAsync();

        await Expect(tab.Page.Locator("[data-testid='Balance'].figure-value")).ToHaveTextAsync("$" + balance.GetProperty("balance").GetString());
        await Expect(tab.Page.Locator("[data-testid='Available'].figure-value")).ToHaveTextAsync("$" + balance.GetProperty("available").GetString());
        var kinds = await tab.Page.Locator("section[aria-labelledby='ledger-title'] tbody td[data-testid='Kind'] .cell-value").AllTextContentsAsync();
        kinds.ShouldBe(["charge", "release", "hold", "credit"], ignoreOrder: true);
        await tab.Page.Locator($"section[aria-labelledby='ledger-title'] a[href='#/executions/{id}']").First.ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = $"Execution {id}" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task The_key_lives_only_in_the_tabs_session_storage_and_signing_out_forgets_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);

        (await tab.Page.EvaluateAsync<string>("() => sessionStorage.getItem('modelroute.console.key')")).ShouldBe(account.Key);
        (await tab.Page.EvaluateAsync<int>("() => localStorage.length")).ShouldBe(0);
        (await tab.Page.Context.CookiesAsync()).ShouldBeEmpty();
        tab.Page.Url.ShouldNotContain(account.Key);

        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
        (await tab.Page.EvaluateAsync<int>("() => sessionStorage.length")).ShouldBe(0);

        await tab.Page.GetByLabel("API key or admin key").FillAsync("mr_not-a-key-of-this-gateway");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(tab.Page.GetByRole(AriaRole.Alert)).ToHaveTextAsync("The gateway did not accept this key.");
    }

    [Fact]
    public async Task The_keyboard_alone_signs_in_and_moves_between_views()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await account.SubmitAsync("sim/text", "by keyboard");
        await account.Client.WaitForTerminalAsync(id);
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.Page.GotoAsync("/console/");

        await TabUntilAsync(tab.Page, "#key");
        await tab.Page.Keyboard.InsertTextAsync(account.Key);
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Executions", Level = 1 })).ToBeVisibleAsync();

        await TabUntilAsync(tab.Page, $"a[href='#/executions/{id}']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = $"Execution {id}" })).ToBeVisibleAsync();

        await TabUntilAsync(tab.Page, "a[href='#/balance']");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Balance and ledger", Level = 1 })).ToBeVisibleAsync();

        await TabUntilAsync(tab.Page, "#sign-out");
        await tab.Page.Keyboard.PressAsync("Enter");
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = "Sign in" })).ToBeVisibleAsync();
    }

    /// <summary>Presses Tab until the element matching <paramref name="selector"/> has the focus (at most 40 times).</summary>
    private static async Task TabUntilAsync(IPage page, string selector)
    {
        for (var i = 0; i < 40; i++)
        {
            if (await page.EvaluateAsync<bool>("s => document.activeElement?.matches(s) === true", selector))
            {
                return;
            }

            await page.Keyboard.PressAsync("Tab");
        }

        throw new ShouldAssertException($"Tab never reached {selector}.");
    }
}
