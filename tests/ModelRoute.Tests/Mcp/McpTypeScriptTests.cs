namespace ModelRoute.Tests.Mcp;

/// <summary>docs/mcp.md: the official TypeScript MCP SDK over both transports, /mcp and <c>modelroute mcp</c>.</summary>
public sealed class McpTypeScriptTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_typescript_sdk_over_streamable_http_lists_submits_waits_cancels_batches_and_sees_an_image()
    {
        using var account = await _gateway.CreateAccountAsync();

        var seen = await RunTourAsync("http", McpTestClient.Endpoint(_gateway).ToString(), account.Key);

        ShouldBeTheWholeTour(seen);
    }

    [Fact]
    public async Task The_typescript_sdk_over_stdio_through_modelroute_mcp_does_the_same()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var anonymous = _gateway.Anonymous();

        var seen = await RunTourAsync("stdio", CliDll(), anonymous.BaseAddress!.ToString(), account.Key);

        ShouldBeTheWholeTour(seen);
    }

    [Fact]
    public async Task A_typescript_subscription_on_one_node_is_notified_when_the_execution_ends_on_the_other()
    {
        await using var nodes = await TwoPostgresNodes.StartAsync("mcptssub");
        using var account = await nodes.A.CreateAccountAsync();
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        using var onB = nodes.B.Anonymous();

        var seen = await RunAsync(McpTypeScriptScripts.SubscribeAcrossNodes, McpTestClient.Endpoint(nodes.A).ToString(), account.Key, id, onB.BaseAddress!.ToString());

        seen.GetProperty("subscribe").GetBoolean().ShouldBeTrue();
        seen.GetProperty("cancel").GetInt32().ShouldBe(202);
        seen.GetProperty("status").GetString().ShouldBe("CANCELLED");
        seen.GetProperty("ms").GetInt32().ShouldBeLessThan(3000, "the watch re-reads at least every second, as a long-poll does");
    }

    private static Task<JsonElement> RunTourAsync(params string[] arguments) => RunAsync(McpTypeScriptScripts.Tour, arguments);

    private static async Task<JsonElement> RunAsync(string script, params string[] arguments)
    {
        var folder = await NpmPackages.EnsureInstalledAsync(McpTypeScriptScripts.Package);
        var path = await NpmPackages.WriteScriptAsync(folder, script);
        var (exit, output) = await NpmPackages.RunNodeAsync(folder, path, arguments, TimeSpan.FromMinutes(2));
        exit.ShouldBe(0, output);
        using var document = JsonDocument.Parse(output.Trim().Split('\n').Last(l => l.StartsWith('{')));
        return document.RootElement.Clone();
    }

    private static void ShouldBeTheWholeTour(JsonElement seen)
    {
        seen.GetProperty("tools").EnumerateArray().Select(t => t.GetString()).ShouldBe(
            ["cancel_execution", "get_artifact", "get_balance", "get_execution", "list_executions", "list_models", "submit_batch", "submit_execution", "wait_for_execution"]);
        var waited = seen.GetProperty("waited");
        waited.GetProperty("status").GetString().ShouldBe("COMPLETED");
        waited.GetProperty("text").GetString()!.ShouldContain("hello from ts");
        waited.GetProperty("progress").GetInt32().ShouldBeGreaterThan(0);
        seen.GetProperty("cancelled").GetString().ShouldBe("CANCELLED");
        seen.GetProperty("cancelAgain").GetProperty("isError").GetBoolean().ShouldBeTrue();
        seen.GetProperty("cancelAgain").GetProperty("code").GetString().ShouldBe("INVALID_STATE");
        seen.GetProperty("batch").EnumerateArray().Select(s => s.GetInt32()).ShouldBe([202, 422]);
        var image = seen.GetProperty("image");
        image.GetProperty("mimeType").GetString().ShouldBe("image/png");
        image.GetProperty("bytes").GetInt32().ShouldBe(image.GetProperty("size").GetInt32());
        var missing = seen.GetProperty("missingKey");
        (missing.GetProperty("code").GetString(), missing.GetProperty("field").GetString()).ShouldBe(("VALIDATION_ERROR", "idempotency_key"));
    }

    /// <summary>The CLI's modelroute.dll, built beside these tests (the test project references it for the build order).</summary>
    private static string CliDll()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(TestPaths.RepositoryRoot(), "src", "ModelRoute.Cli", "bin", configuration, "net10.0", "modelroute.dll");
        File.Exists(path).ShouldBeTrue($"{path} is missing; build src/ModelRoute.Cli");
        return path;
    }
}
