namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#logs: the Development console log stays readable (no HttpClient request lines, no line per
/// refused request), and <c>Logging:Console:FormatterName=json</c> writes one JSON object per line, with scopes on request.
/// The output is read while the gateway runs: it then holds whole lines only (a kill could cut the last one).
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class LogFormatTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("logs");

    [Fact]
    public async Task The_development_log_shows_the_start_and_stays_quiet_while_executions_run()
    {
        // The source folder as content root, so that appsettings.json and appsettings.Development.json are read
        // exactly as `dotnet run --project src/ModelRoute.Server` reads them.
        await using var gateway = await StartAsync(new()
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["ASPNETCORE_CONTENTROOT"] = Path.Combine(TestPaths.RepositoryRoot(), "src", "ModelRoute.Server"),
        });

        await RunTrafficAsync(gateway);

        var lines = gateway.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.ShouldContain(l => l.Contains("Hosting environment: Development", StringComparison.Ordinal), gateway.Output);
        lines.ShouldNotContain(l => l.Contains("System.Net.Http.HttpClient", StringComparison.Ordinal) || l.Contains("Microsoft.Extensions.Http", StringComparison.Ordinal), gateway.Output);
        lines.ShouldNotContain(l => l.Contains("was challenged", StringComparison.Ordinal), gateway.Output);
        lines.Length.ShouldBeLessThanOrEqualTo(10, gateway.Output);
    }

    [Fact]
    public async Task The_json_formatter_writes_one_json_object_per_line()
    {
        await using var gateway = await StartAsync(new() { ["Logging:Console:FormatterName"] = "json" });

        await RunTrafficAsync(gateway);

        var entries = ParseEveryLine(gateway.Output);
        entries.Count.ShouldBeGreaterThanOrEqualTo(4, gateway.Output);
        entries.ShouldContain(e => e.GetProperty("Category").GetString() == "Microsoft.Hosting.Lifetime");
        foreach (var entry in entries)
        {
            entry.TryGetProperty("LogLevel", out _).ShouldBeTrue(entry.ToString());
            entry.TryGetProperty("Message", out _).ShouldBeTrue(entry.ToString());
            entry.TryGetProperty("Scopes", out _).ShouldBeFalse("scopes are off unless asked for");
        }
    }

    [Fact]
    public async Task With_scopes_included_each_json_line_carries_its_scopes()
    {
        await using var gateway = await StartAsync(new()
        {
            ["Logging:Console:FormatterName"] = "json",
            ["Logging:Console:FormatterOptions:IncludeScopes"] = "true",
            // Brings up a line logged inside a request, to see the request's scope on it.
            ["Logging:LogLevel:ModelRoute.Server.Accounts.BearerAuthenticationHandler"] = "Information",
        });

        using (var anonymous = gateway.Client())
        {
            (await anonymous.GetApiAsync("/v1/balance")).Status.ShouldBe(401);
        }

        await Eventually.HoldsAsync(() => gateway.Output.Contains("was challenged", StringComparison.Ordinal), "the refused request was logged");

        var entries = ParseEveryLine(gateway.Output);
        entries.ShouldAllBe(e => e.GetProperty("Scopes").ValueKind == JsonValueKind.Array);
        var challenged = entries.First(e => e.GetProperty("Message").GetString()!.Contains("was challenged", StringComparison.Ordinal));
        var scopes = challenged.GetProperty("Scopes").EnumerateArray().Where(s => s.ValueKind == JsonValueKind.Object).ToList();
        scopes.Select(s => s.TryGetProperty("RequestPath", out var path) ? path.GetString() : null).ShouldContain("/v1/balance", challenged.ToString());
        scopes.Select(s => s.TryGetProperty("TraceId", out var trace) ? trace.GetString() : null).ShouldContain(t => t != null && t.Length == 32, challenged.ToString());
    }

    public void Dispose() => TestPaths.TryDelete(_directory);

    private Task<GatewayProcess> StartAsync(Dictionary<string, string> settings)
    {
        settings["ModelRoute:AdminKey"] = GatewayFactory.AdminKey;
        settings["ModelRoute:DataDirectory"] = _directory;
        return GatewayProcess.StartAsync(_directory, settings);
    }

    /// <summary>Refused requests, an account, and an execution that runs to its end.</summary>
    private static async Task RunTrafficAsync(GatewayProcess gateway)
    {
        using var anonymous = gateway.Client();
        using var admin = gateway.Client(GatewayFactory.AdminKey);
        for (var i = 0; i < 3; i++)
        {
            (await anonymous.GetApiAsync("/v1/balance")).Status.ShouldBe(401);
        }

        var account = (await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"logs"}""")).Json.GetProperty("id").GetString()!;
        var key = (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/credits", """{"amount_usd":"1.00","reference":"logs"}""")).Status.ShouldBe(201);
        using var client = gateway.Client(key);
        var submitted = await client.SubmitTextAsync();
        submitted.Status.ShouldBe(202, submitted.Body);
        (await client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!)).GetProperty("status").GetString().ShouldBe("COMPLETED");
    }

    private static List<JsonElement> ParseEveryLine(string output)
    {
        var entries = new List<JsonElement>();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonElement entry = default;
            Should.NotThrow(() => entry = JsonDocument.Parse(line).RootElement, $"not one JSON object: {line}");
            entry.ValueKind.ShouldBe(JsonValueKind.Object, line);
            entries.Add(entry);
        }

        return entries;
    }
}
