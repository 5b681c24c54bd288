using Microsoft.Playwright;

namespace ModelRoute.Tests.Console;

/// <summary>
/// Debian's Chromium (<c>/usr/bin/chromium</c>, installed by .ci/run) driven by Playwright; no browser is downloaded.
/// One browser for the console tests, which run on their own so that a busy machine does not slow the page past its timeouts.
/// </summary>
public sealed class ChromiumBrowser : IAsyncLifetime
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public IBrowser Browser { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"Chromium is not installed at {ExecutablePath}: run `apt-get install chromium` (.ci/run does).");
        }

        Environment.SetEnvironmentVariable("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        Assertions.SetDefaultExpectTimeout(20_000);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = ExecutablePath, Headless = true });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }

        _playwright?.Dispose();
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleBrowserTests : ICollectionFixture<ChromiumBrowser>
{
    public const string Name = "Console in a browser";
}

/// <summary>
/// One browser tab on a gateway's console, which records every dialog, uncaught script error and Content-Security-Policy
/// violation, and a flag that hostile test data sets if any of it ever runs as script (docs/console.md#safety).
/// </summary>
public sealed class ConsoleTab : IAsyncDisposable
{
    private const string Watch = """
        window.__cspViolations = [];
        document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
        """;

    private readonly IBrowserContext _context;

    private ConsoleTab(IBrowserContext context, IPage page)
    {
        _context = context;
        Page = page;
        page.Dialog += (_, dialog) =>
        {
            Dialogs.Add($"{dialog.Type}: {dialog.Message}");
            _ = dialog.DismissAsync();
        };
        page.PageError += (_, error) => ScriptErrors.Add(error);
    }

    public IPage Page { get; }

    public ConcurrentBag<string> Dialogs { get; } = [];

    public ConcurrentBag<string> ScriptErrors { get; } = [];

    public static async Task<ConsoleTab> OpenAsync(IBrowser browser, GatewayFactory gateway, int width = 1280, int height = 800)
    {
        using var client = gateway.Anonymous();
        var context = await browser.NewContextAsync(new() { BaseURL = client.BaseAddress!.ToString(), ViewportSize = new() { Width = width, Height = height } });
        context.SetDefaultTimeout(20_000);
        await context.AddInitScriptAsync(Watch);
        return new ConsoleTab(context, await context.NewPageAsync());
    }

    /// <summary>Opens the console and signs in with <paramref name="key"/>, waiting for the view that key lands on.</summary>
    public async Task SignInAsync(string key, string landsOn = "Executions")
    {
        await Page.GotoAsync("/console/");
        await Page.GetByLabel("API key or admin key").FillAsync(key);
        await Page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(Page.GetByRole(AriaRole.Heading, new() { Name = landsOn, Level = 1 })).ToBeVisibleAsync();
    }

    /// <summary>Presses Tab until the element matching <paramref name="selector"/> has the focus (at most 60 times).</summary>
    public async Task TabToAsync(string selector)
    {
        for (var i = 0; i < 60; i++)
        {
            if (await Page.EvaluateAsync<bool>("s => document.activeElement?.matches(s) === true", selector))
            {
                return;
            }

            await Page.Keyboard.PressAsync("Tab");
        }

        throw new ShouldAssertException($"Tab never reached {selector}.");
    }

    public ILocator Row(string id) => Page.Locator($"tr[data-id='{id}']");

    /// <summary>The value of one column in a row (without the column's name, which narrow screens show beside it).</summary>
    public ILocator Cell(ILocator row, string column) => row.Locator($"td[data-testid='{column}'] .cell-value");

    /// <summary>Nothing ran that should not have: no dialog, no script error, no blocked injection, no flag set.</summary>
    public async Task ShouldHaveRunNothingHostileAsync()
    {
        var pwned = await Page.EvaluateAsync<bool>("() => window.__pwned !== undefined");
        var violations = await Page.EvaluateAsync<string[]>("() => window.__cspViolations ?? []");
        Dialogs.ShouldBeEmpty();
        ScriptErrors.ShouldBeEmpty();
        violations.ShouldBeEmpty();
        pwned.ShouldBeFalse();
    }

    /// <summary>
    /// Takes a screenshot of what the tab shows: to docs/console/{name}.png for the documentation when
    /// MODELROUTE_UPDATE_SCREENSHOTS=1, else to a temporary folder, so a test run leaves the working tree as it was.
    /// </summary>
    public async Task ScreenshotAsync(string name)
    {
        var folder = Environment.GetEnvironmentVariable("MODELROUTE_UPDATE_SCREENSHOTS") == "1"
            ? Path.Combine(TestPaths.RepositoryRoot(), "docs", "console")
            : Path.Combine(Path.GetTempPath(), "modelroute-console-screenshots");
        Directory.CreateDirectory(folder);
        await Page.ScreenshotAsync(new() { Path = Path.Combine(folder, name + ".png"), FullPage = false });
    }

    public async ValueTask DisposeAsync() => await _context.DisposeAsync();
}
