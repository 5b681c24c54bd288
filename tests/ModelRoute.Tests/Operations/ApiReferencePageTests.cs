using Microsoft.Playwright;
using ModelRoute.Tests.Console;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// The API reference at /docs renders the gateway's OpenAPI document in a browser with nothing fetched from another
/// host: its script, styles and fonts are the gateway's own (docs/api.md#openapi-and-the-reference-page).
/// </summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ApiReferencePageTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_reference_page_renders_the_operations_without_a_key_and_loads_nothing_from_another_host()
    {
        using var client = _gateway.Anonymous();
        await using var context = await chromium.Browser.NewContextAsync(new() { BaseURL = client.BaseAddress!.ToString() });
        context.SetDefaultTimeout(30_000);
        var outside = new ConcurrentBag<string>();
        var loaded = new ConcurrentBag<string>();
        var scriptErrors = new ConcurrentBag<string>();
        // Every request is seen here; one to another host is recorded and refused, so the test does not wait on the network.
        await context.RouteAsync("**/*", async route =>
        {
            var url = new Uri(route.Request.Url);
            if (url.Scheme is "data" or "blob" || url.IsLoopback)
            {
                loaded.Add(url.AbsolutePath);
                await route.ContinueAsync();
                return;
            }

            outside.Add(route.Request.Url);
            await route.AbortAsync();
        });
        var page = await context.NewPageAsync();
        page.PageError += (_, error) => scriptErrors.Add(error);

        (await page.GotoAsync("/docs"))!.Status.ShouldBe(200);
        await Expect(page.GetByText("Submit an execution").First).ToBeVisibleAsync();
        await Expect(page.GetByText("Get an execution, optionally waiting for it to end").First).ToBeVisibleAsync();
        await Expect(page.GetByText("ModelRoute API").First).ToBeVisibleAsync();
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        loaded.ShouldContain("/docs/scalar.js");
        loaded.ShouldContain("/openapi/v1.json");
        outside.ShouldBeEmpty();
        scriptErrors.ShouldBeEmpty();
    }

    [Fact]
    public async Task The_consoles_sign_in_page_links_to_the_reference()
    {
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);

        await tab.Page.GotoAsync("/console/");
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "API reference" }).ClickAsync();

        await tab.Page.WaitForURLAsync("**/docs/");
        await Expect(tab.Page.GetByText("Submit an execution").First).ToBeVisibleAsync();
    }
}
