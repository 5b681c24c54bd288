using Microsoft.AspNetCore.Http;
using Microsoft.Playwright;
using ModelRoute.Tests.Providers;
using ModelRoute.Tests.Webhooks;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>
/// Whatever a model, a provider or a user wrote is shown as text and runs nothing (docs/console.md#safety): hostile
/// outputs, metadata, idempotency keys, provider error messages, ledger references and account names, opened in every
/// view that shows them, with a dialog, a script error, a policy violation or a flag set by the payloads failing the test.
/// </summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleSafetyTests(ChromiumBrowser chromium) : IAsyncLifetime
{
    /// <summary>Each payload tries to run <c>alert</c> (a dialog) or to set <c>window.__pwned</c>.</summary>
    public static readonly string[] Corpus =
    [
        "<img src=x onerror=alert(1)>",
        "<img src=x onerror=\"window.__pwned=1\">",
        "</script><script>alert(1)</script>",
        "javascript:alert(1)",
        "<a href=\"javascript:window.__pwned=1\">click me</a>",
        "<svg onload=alert(1)><script>window.__pwned=1</script></svg>",
        "<iframe srcdoc=\"<script>parent.__pwned=1</script>\"></iframe>",
        "\"><img src=x onerror=alert(document.domain)>",
        "{{constructor.constructor('alert(1)')()}}",
        "<style>body{display:none}</style>",
        "invoice\u202Egnp.exe",
        "zero\u200Bwidth\u200Djoiner\uFEFFbom",
    ];

    private FakeProviderServer _provider = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        // An OpenAI-compatible provider that refuses every request with a hostile error message.
        _provider = await FakeProviderServer.StartAsync(async context =>
        {
            context.Response.StatusCode = 400;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync(JsonSerializer.Serialize(new { error = new { message = string.Join(" ", Corpus.Take(4)) + " \u202Eevil", type = "invalid_request_error" } }));
        });
        _gateway = ConsoleGateway.Start(new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:evil:Kind"] = "openai",
            ["ModelRoute:Providers:evil:BaseUrl"] = _provider.BaseUrl,
            ["ModelRoute:Providers:evil:ApiKey"] = "sk-test-console",
            ["ModelRoute:Models:evil/text:Modality"] = "text",
            ["ModelRoute:Models:evil/text:Pricing:InputPerMTok"] = "1.00",
            ["ModelRoute:Models:evil/text:Routes:0:Provider"] = "evil",
            ["ModelRoute:Models:evil/text:Routes:0:Model"] = "gpt-test",
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _provider.DisposeAsync();
    }

    [Fact]
    public async Task Hostile_outputs_metadata_keys_error_messages_references_and_names_are_shown_as_text_and_run_nothing()
    {
        using var account = await _gateway.CreateAccountAsync();
        var ids = new List<string>();
        for (var i = 0; i < Corpus.Length; i++)
        {
            // Idempotency keys are printable characters only, so the invisible-character payloads go elsewhere.
            var key = Corpus[i].Any(c => c is '\u202E' or '\u200B') ? $"invisible-{i}" : Corpus[i];
            var metadata = JsonSerializer.Serialize(new Dictionary<string, string> { ["note"] = Corpus[i], ["<b>k</b>"] = Corpus[(i + 1) % Corpus.Length] });
            ids.Add(await account.SubmitAsync("sim/text", Corpus[i], key: key, extra: $",\"metadata\":{metadata}"));
        }

        ids.Add(await account.SubmitAsync("evil/text", "make the provider fail", key: "<img src=x onerror=alert(2)>-provider"));
        foreach (var id in ids)
        {
            await account.Client.WaitForTerminalAsync(id);
        }

        using var admin = _gateway.Admin();
        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/credits", JsonSerializer.Serialize(new { amount_usd = "1.00", reference = Corpus[0] }))).Status.ShouldBe(201);
        (await admin.PostJsonAsync("/v1/admin/accounts", JsonSerializer.Serialize(new { name = Corpus[1] }))).Status.ShouldBe(201);

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(ids.Count);
        await Expect(tab.Cell(tab.Row(ids[0]), "Idempotency key")).ToHaveTextAsync(Corpus[0]);
        await tab.ShouldHaveRunNothingHostileAsync();

        for (var i = 0; i < Corpus.Length; i++)
        {
            await tab.Page.GotoAsync($"/console/#/executions/{ids[i]}");
            var output = tab.Page.Locator("section[aria-labelledby='output-title'] pre").First;
            await Expect(output).ToContainTextAsync(Visible(Corpus[i]));
            await Expect(tab.Page.Locator("section[aria-labelledby='metadata-title']")).ToContainTextAsync("<b>k</b>");
            await tab.ShouldHaveRunNothingHostileAsync();
        }

        await tab.Page.GotoAsync($"/console/#/executions/{ids[^1]}");
        var error = tab.Page.Locator("section[aria-labelledby='error-title']");
        await Expect(error).ToContainTextAsync(Corpus[0] + " " + Corpus[1]);
        await Expect(error).ToContainTextAsync("U+202Eevil");
        await Expect(tab.Page.Locator("section[aria-labelledby='attempts-title'] td[data-testid='Error']").First).ToContainTextAsync(Corpus[2]);
        await tab.ShouldHaveRunNothingHostileAsync();

        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Balance and ledger" }).ClickAsync();
        await Expect(tab.Page.Locator("td[data-testid='Reference'] .cell-value").First).ToHaveTextAsync(Corpus[0]);
        await tab.ShouldHaveRunNothingHostileAsync();

        await tab.Page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await tab.SignInAsync(GatewayFactory.AdminKey, landsOn: "Accounts");
        await Expect(tab.Page.GetByText(Corpus[1], new() { Exact = true })).ToBeVisibleAsync();
        await tab.ShouldHaveRunNothingHostileAsync();
        tab.Page.Url.ShouldNotContain("javascript");
    }

    [Fact]
    public async Task Hostile_endpoint_urls_descriptions_delivery_errors_and_key_names_are_shown_as_text_and_run_nothing()
    {
        using var account = await _gateway.CreateAccountAsync();
        // Invisible characters are refused in URLs, descriptions and key names, so only the printable payloads go there.
        var printable = Corpus.Where(p => !p.Any(c => c is '\u202E' or '\u200B')).ToArray();
        var endpoints = new List<string>();
        foreach (var (payload, i) in printable.Select((p, i) => (p, i)))
        {
            // Port 9 refuses, so every delivery fails with an error shown beside it.
            var url = $"http://127.0.0.1:9/{i}/{payload}?next={payload}";
            var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", JsonSerializer.Serialize(new { url, description = payload }));
            created.Status.ShouldBe(201, created.Body);
            endpoints.Add(created.Json.GetProperty("id").GetString()!);
            (await account.Client.PostJsonAsync("/v1/api-keys", JsonSerializer.Serialize(new { name = payload }))).Status.ShouldBe(201);
        }

        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpoints[0]}/test", "{}")).Status.ShouldBe(202);

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Webhooks" }).ClickAsync();
        await Expect(tab.Page.Locator("article.endpoint")).ToHaveCountAsync(endpoints.Count);
        for (var i = 0; i < endpoints.Count; i++)
        {
            var card = tab.Page.Locator($"article[data-id='{endpoints[i]}']");
            var url = (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpoints[i]}")).Json.GetProperty("url").GetString()!;
            await Expect(card.Locator("h3")).ToHaveTextAsync(url);
            await Expect(card.Locator("dd").Filter(new() { HasText = printable[i] }).First).ToHaveTextAsync(printable[i]);
        }

        await Expect(tab.Page.Locator($"article[data-id='{endpoints[0]}'] td[data-testid='Response']")).ToContainTextAsync("Could not connect");
        await tab.ShouldHaveRunNothingHostileAsync();

        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "API keys" }).ClickAsync();
        await Expect(tab.Page.Locator("section[aria-labelledby='keys-title'] tbody tr")).ToHaveCountAsync(printable.Length + 1);
        foreach (var payload in printable)
        {
            await Expect(tab.Page.Locator("td[data-testid='Key'] bdi").Filter(new() { HasText = payload }).First).ToHaveTextAsync(payload);
        }

        await tab.ShouldHaveRunNothingHostileAsync();
        tab.Page.Url.ShouldNotContain("javascript");
    }

    [Fact]
    public async Task Hostile_webhook_response_bodies_are_shown_as_text_and_run_nothing()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var body = string.Join("\n", Corpus);
        receiver.Answer = (_, _) => ReceiverAnswer.Text(500, body);
        using var account = await _gateway.CreateAccountAsync();
        var created = await account.Client.PostJsonAsync("/v1/webhook-endpoints", JsonSerializer.Serialize(new { url = receiver.Url() }));
        created.Status.ShouldBe(201, created.Body);
        var endpointId = created.Json.GetProperty("id").GetString()!;
        (await account.Client.PostJsonAsync($"/v1/webhook-endpoints/{endpointId}/test", "{}")).Status.ShouldBe(202);
        await Eventually.HoldsAsync(
            async () => (await account.Client.GetApiAsync($"/v1/webhook-endpoints/{endpointId}/deliveries")).Json.GetProperty("data") is { } data
                && data.GetArrayLength() > 0 && data[0].GetProperty("attempt_log").GetArrayLength() > 0,
            "the test event's first attempt was recorded");

        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, _gateway);
        await tab.SignInAsync(account.Key);
        await tab.Page.GetByRole(AriaRole.Link, new() { Name = "Webhooks" }).ClickAsync();
        // A retry may be recorded before the page shows: the newest excerpt comes first, older ones folded under it, each
        // the same body, and each must be shown as text.
        var excerpts = tab.Page.Locator($"article[data-id='{endpointId}'] td[data-testid='Response'] pre");
        var shown = excerpts.First;
        await Expect(shown).ToHaveTextAsync(Visible(body));
        foreach (var excerpt in await excerpts.AllAsync())
        {
            await Expect(excerpt).ToHaveTextAsync(Visible(body));
        }

        await Expect(shown).ToBeVisibleAsync();
        await Expect(tab.Page.Locator($"article[data-id='{endpointId}'] td[data-testid='Response'] img, article[data-id='{endpointId}'] td[data-testid='Response'] script"))
            .ToHaveCountAsync(0);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    /// <summary>How the console shows a text: invisible characters as marks such as U+202E.</summary>
    private static string Visible(string text) =>
        string.Concat(text.Select(c => c is '\u202E' or '\u200B' or '\u200D' or '\uFEFF' ? $"U+{(int)c:X4}" : c.ToString()));
}
