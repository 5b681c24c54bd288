using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>
/// The executions list in a real browser: server-side search, the time window, and live status from the account's
/// event feed, which the server closes every two seconds here (docs/console.md#search-and-live-updates).
/// </summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleListTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    private const string SearchLabel = "Find by id or idempotency key, or metadata key=value";

    private readonly GatewayFactory _gateway = ConsoleGateway.Start(new Dictionary<string, string?> { ["ModelRoute:Limits:EventFeedLifetime"] = "00:00:02" });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_search_finds_an_execution_by_idempotency_key_or_metadata_beyond_the_first_page()
    {
        using var account = await _gateway.CreateAccountAsync();
        var batch = string.Join(",", Enumerable.Range(0, 25).Select(i =>
            $$$"""{"model":"sim/text","idempotency_key":"order-{{{i}}}","metadata":{"order":"o={{{i}}}","shop":"s1"},"input":{"messages":[{"role":"user","content":"hi"}]}}"""));
        var submitted = await account.Client.PostJsonAsync("/v1/executions/batch", $$"""{"executions":[{{batch}}]}""");
        submitted.Status.ShouldBe(200, submitted.Body);
        var ids = submitted.Json.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("execution").GetProperty("id").GetString()!).ToList();

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(20);

        // The oldest execution is not on the first page: the server finds it.
        await FindAsync(tab, "order-0");
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Row(ids[0])).ToBeVisibleAsync();
        tab.Page.Url.ShouldContain("q=order-0");

        // key=value: the metadata value (which itself holds '='), exactly.
        await FindAsync(tab, "order=o=1");
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Row(ids[1])).ToBeVisibleAsync();
        await FindAsync(tab, "order=o=");
        await Expect(tab.Page.GetByText("Nothing matches the search.")).ToBeVisibleAsync();

        // A search keeps the filters, and the filters keep the search.
        await FindAsync(tab, "shop=s1");
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(20);
        await tab.Page.GetByLabel("Created", new() { Exact = true }).SelectOptionAsync("custom");
        await tab.Page.GetByLabel("Created before").FillAsync("2001-01-01T00:00");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(tab.Page.GetByText("Nothing matches the search.")).ToBeVisibleAsync();
        tab.Page.Url.ShouldContain("q=shop");
        await tab.Page.GetByLabel("Created", new() { Exact = true }).SelectOptionAsync("1h");
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Apply filters" }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(20);
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Load more" }).ClickAsync();
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(25);

        // An id opens the execution.
        await FindAsync(tab, ids[3]);
        await Expect(tab.Page.GetByRole(AriaRole.Heading, new() { Name = $"Execution {ids[3]}" })).ToBeVisibleAsync();
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task Status_changes_and_new_executions_arrive_live_through_the_feed_which_reopens_where_it_stopped()
    {
        using var account = await _gateway.CreateAccountAsync();
        var older = await account.SubmitAsync("sim/text", "first", """{"latency_ms":0}""");
        await account.Client.WaitForTerminalAsync(older);
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        var feeds = new FeedRequests(tab.Page);
        await tab.SignInAsync(account.Key);
        await tab.Page.GotoAsync("/console/#/executions?model=sim%2Ftext");
        await Expect(tab.Row(older)).ToBeVisibleAsync();
        await tab.Page.EvaluateAsync("() => { window.__sameDocument = true; }");

        var slow = await account.SubmitAsync("sim/text", "slowly", """{"latency_ms":3000}""");
        var otherModel = await account.SubmitAsync("sim/failover", "elsewhere", """{"latency_ms":0}""");
        await Expect(tab.Cell(tab.Row(slow), "Status")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("PENDING|PROCESSING"));
        await Expect(tab.Page.Locator("tbody tr").First).ToHaveAttributeAsync("data-id", slow);
        await Expect(tab.Cell(tab.Row(slow), "Status")).ToHaveTextAsync("COMPLETED");

        // The server has closed the feed (2 s) and the console opened it again from the last event it had.
        await Eventually.HoldsAsync(() => feeds.Started >= 3, "the feed was opened again after the server closed it", 15);
        feeds.LastEventIds.ShouldContain(id => id != null, "a reopened feed resumes with Last-Event-ID");
        var late = await account.SubmitAsync("sim/text", "late", """{"latency_ms":0}""");
        await Expect(tab.Page.Locator("tbody tr").First).ToHaveAttributeAsync("data-id", late);
        await Expect(tab.Cell(tab.Row(late), "Status")).ToHaveTextAsync("COMPLETED");
        await Expect(tab.Row(otherModel)).ToHaveCountAsync(0);
        (await tab.Page.EvaluateAsync<bool>("() => window.__sameDocument === true")).ShouldBeTrue();

        // Quiet: no polling of the list while nothing changes.
        var listReads = feeds.ListReads;
        await Task.Delay(3000);
        feeds.ListReads.ShouldBe(listReads, "the list is not polled");

        // Leaving the view stops the stream.
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Balance and ledger" }).ClickAsync();
        await Eventually.HoldsAsync(() => feeds.Open == 0, "the feed is closed when the view is left", 10);
        var started = feeds.Started;
        await Task.Delay(2500);
        feeds.Started.ShouldBe(started, "no feed is opened again once the view is left");
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    [Fact]
    public async Task Hostile_keys_metadata_and_search_text_are_found_exactly_and_only_ever_shown_as_text()
    {
        using var account = await _gateway.CreateAccountAsync();
        const string Key = "k<img src=x onerror=\"window.__pwned=1\">";
        const string Note = "</script><script>window.__pwned=1</script>";
        var id = await account.SubmitAsync("sim/text", "x", key: Key, extra: $$""","metadata":{"note":{{JsonSerializer.Serialize(Note)}}}""");
        await account.SubmitAsync("sim/text", "y", key: "k%", extra: ""","metadata":{"note":"%"}""");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await FindAsync(tab, Key);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Cell(tab.Row(id), "Idempotency key")).ToHaveTextAsync(Key);

        await FindAsync(tab, "note=" + Note);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(1);
        await Expect(tab.Row(id)).ToBeVisibleAsync();
        (await tab.Page.GetByLabel(SearchLabel).InputValueAsync()).ShouldBe("note=" + Note);

        // Text that neither an idempotency key nor a metadata key can hold is refused by the API, and said so.
        await FindAsync(tab, "javascript:alert(1)\u202E=x");
        await Expect(tab.Page.GetByText("Nothing matches the search.")).ToBeVisibleAsync();
        await Expect(tab.Page.Locator("#notice .error")).ToBeVisibleAsync();
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    private static async Task FindAsync(ConsoleTab tab, string text)
    {
        await tab.Page.GetByLabel(SearchLabel).FillAsync(text);
        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Find", Exact = true }).ClickAsync();
    }

    /// <summary>The tab's requests to the account feed (open ones, and the Last-Event-ID each carried) and to the list.</summary>
    private sealed class FeedRequests
    {
        private int _started;
        private int _ended;
        private int _listReads;

        public FeedRequests(IPage page)
        {
            page.Request += (_, request) =>
            {
                if (request.Url.Contains("/v1/events", StringComparison.Ordinal))
                {
                    request.Headers.TryGetValue("last-event-id", out var last);
                    LastEventIds.Add(last);
                    Interlocked.Increment(ref _started);
                }
                else if (request.Url.Contains("/v1/executions?", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref _listReads);
                }
            };
            page.RequestFinished += (_, request) => Ended(request);
            page.RequestFailed += (_, request) => Ended(request);
        }

        public ConcurrentBag<string?> LastEventIds { get; } = [];

        public int Started => Volatile.Read(ref _started);

        public int Open => Volatile.Read(ref _started) - Volatile.Read(ref _ended);

        public int ListReads => Volatile.Read(ref _listReads);

        private void Ended(IRequest request)
        {
            if (request.Url.Contains("/v1/events", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _ended);
            }
        }
    }
}
