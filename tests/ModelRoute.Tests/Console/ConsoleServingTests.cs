namespace ModelRoute.Tests.Console;

/// <summary>How the gateway serves the console's files: its own, with a strict policy (docs/console.md#safety).</summary>
public sealed class ConsoleServingTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private const string Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        + "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly string[] Files = ["index.html", "app.js", "api.js", "dom.js", "signin.js", "executions.js", "live.js", "execution.js", "balance.js", "accounts.js", "providers.js", "style.css",
        "spend.js", "chart.js", "webhooks.js", "keys.js", "secret.js", "confirm.js", "overview.js"];

    [Fact]
    public async Task Every_console_file_is_served_without_a_key_with_the_strict_policy_and_its_own_type()
    {
        using var client = shared.Gateway.Anonymous();

        foreach (var file in Files)
        {
            var response = await client.GetApiAsync($"/console/{file}");

            response.Status.ShouldBe(200, $"{file}: {response.Header("Location")}");
            ShouldBeSecured(response);
            response.Header("Cache-Control").ShouldBe("no-cache");
            response.Header("ETag").ShouldNotBeNull();
            response.Message.Content.Headers.ContentType!.MediaType.ShouldBe(
                file.EndsWith(".html", StringComparison.Ordinal) ? "text/html" : file.EndsWith(".css", StringComparison.Ordinal) ? "text/css" : "text/javascript");
        }

        var page = await client.GetApiAsync("/console/");
        page.Status.ShouldBe(200);
        page.Body.ShouldContain("<script type=\"module\" src=\"app.js\"></script>");
        ShouldBeSecured(page);
    }

    [Fact]
    public async Task The_bare_path_redirects_to_the_page_and_an_unknown_file_is_not_found_with_the_same_headers()
    {
        using var client = shared.Gateway.Anonymous();
        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = client.BaseAddress };

        var bare = await noRedirects.GetAsync("/console");
        ((int)bare.StatusCode).ShouldBe(302);
        bare.Headers.Location!.ToString().ShouldBe("/console/");

        (await client.GetApiAsync("/console/%2e%2e%2fappsettings.json")).Status.ShouldBe(404);
        var unknown = await client.GetApiAsync("/console/nothing-here.js");
        unknown.Status.ShouldBe(404);
        ShouldBeSecured(unknown);
    }

    [Fact]
    public async Task A_revalidation_with_the_etag_is_answered_not_modified()
    {
        using var client = shared.Gateway.Anonymous();
        var first = await client.GetApiAsync("/console/app.js");

        using var request = new HttpRequestMessage(HttpMethod.Get, "/console/app.js");
        request.Headers.TryAddWithoutValidation("If-None-Match", first.Header("ETag"));
        using var again = await client.SendAsync(request);

        ((int)again.StatusCode).ShouldBe(304);
    }

    [Fact]
    public void The_console_has_no_inline_code_no_innerHTML_no_eval_and_names_no_outside_address()
    {
        var folder = Path.Combine(TestPaths.RepositoryRoot(), "src", "ModelRoute.Server", "Console", "wwwroot");
        var files = Directory.GetFiles(folder).Select(path => Path.GetFileName(path)).Order(StringComparer.Ordinal).ToList();
        files.ShouldBe(Files.Order(StringComparer.Ordinal).ToList(), "every file is served and checked here");

        foreach (var file in Files)
        {
            // The SVG namespace is a name that createElementNS needs, never an address anything is fetched from.
            var text = File.ReadAllText(Path.Combine(folder, file)).Replace("'http://www.w3.org/2000/svg'", "", StringComparison.Ordinal);
            foreach (var banned in new[] { "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "http://", "https://", "//cdn", "@import" })
            {
                text.ShouldNotContain(banned, Case.Sensitive, $"{file} uses {banned}");
            }
        }

        var html = File.ReadAllText(Path.Combine(folder, "index.html"));
        System.Text.RegularExpressions.Regex.Matches(html, "<script").Count.ShouldBe(1);
        html.ShouldNotContain(" style=");
        System.Text.RegularExpressions.Regex.IsMatch(html, @"\son[a-z]+\s*=").ShouldBeFalse("no event handler attributes");
    }

    private static void ShouldBeSecured(ApiResponse response)
    {
        response.Header("Content-Security-Policy").ShouldBe(Policy);
        response.Header("X-Content-Type-Options").ShouldBe("nosniff");
        response.Header("Referrer-Policy").ShouldBe("no-referrer");
    }
}
