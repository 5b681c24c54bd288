using System.Text.Json;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;
using ModelRoute.Client.Tests.Infrastructure;

namespace ModelRoute.Client.Tests;

/// <summary>docs/mcp.md: <c>modelroute mcp</c> serves the gateway's tools over stdio, through the C# MCP client.</summary>
public sealed class McpStdioTests(ClientGatewayFixture fixture) : IClassFixture<ClientGatewayFixture>
{
    private ClientGateway Gateway => fixture.Gateway;

    private async Task<McpClient> ConnectAsync(string? key = null)
    {
        key ??= (await Gateway.NewAccountAsync()).Key;
        var transport = new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "modelroute",
            Command = "dotnet",
            Arguments = [Cli.DllPath(), "mcp"],
            EnvironmentVariables = new Dictionary<string, string?> { ["MODELROUTE_URL"] = Gateway.BaseAddress.ToString(), ["MODELROUTE_API_KEY"] = key },
        });
        return await McpClient.CreateAsync(transport);
    }

    private static async Task<CallToolResult> CallAsync(McpClient client, string tool, string argumentsJson = "{}") =>
        await client.CallToolAsync(tool, JsonSerializer.Deserialize<Dictionary<string, object?>>(argumentsJson)!);

    private static JsonElement Structured(CallToolResult result)
    {
        result.IsError.ShouldNotBe(true, string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text)));
        return JsonSerializer.SerializeToElement(result.StructuredContent);
    }

    private static string ErrorCode(CallToolResult result)
    {
        result.IsError.ShouldBe(true);
        return JsonSerializer.SerializeToElement(result.StructuredContent).GetProperty("code").GetString()!;
    }

    [Fact]
    public async Task The_stdio_server_lists_the_tools_submits_waits_and_returns_an_image_as_image_content()
    {
        await using var client = await ConnectAsync();

        var tools = await client.ListToolsAsync();
        var submitted = Structured(await CallAsync(client, "submit_execution", """{"model":"sim/image","input":{"prompt":"a cat","n":1},"idempotency_key":"stdio-img-1"}"""));
        var id = submitted.GetProperty("id").GetString()!;
        var waited = Structured(await CallAsync(client, "wait_for_execution", $$"""{"id":"{{id}}","timeout_seconds":30}"""));
        var artifact = await CallAsync(client, "get_artifact", $$"""{"id":"{{id}}","name":"image-0.png"}""");
        var balance = Structured(await CallAsync(client, "get_balance"));

        tools.Count.ShouldBe(9);
        tools.Single(t => t.Name == "submit_execution").Description.ShouldContain("order-42-step-3");
        waited.GetProperty("status").GetString().ShouldBe("COMPLETED");
        var image = artifact.Content.OfType<ImageContentBlock>().Single();
        image.MimeType.ShouldBe("image/png");
        image.DecodedData.Length.ShouldBe(Structured(artifact).GetProperty("size_bytes").GetInt32());
        balance.GetProperty("held").GetString().ShouldBe("0.000000");
        var listed = Structured(await CallAsync(client, "list_executions", """{"limit":5}"""));
        listed.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()).ShouldBe([id]);
    }

    [Fact]
    public async Task Over_stdio_the_gateways_refusals_are_tool_errors_with_its_codes_and_other_accounts_stay_walled_off()
    {
        await using var owner = await ConnectAsync();
        await using var other = await ConnectAsync();
        var id = Structured(await CallAsync(owner, "submit_execution", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}],"simulate":{"latency_ms":30000}},"idempotency_key":"stdio-wall-1"}"""))
            .GetProperty("id").GetString()!;

        ErrorCode(await CallAsync(owner, "submit_execution", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}]}}""")).ShouldBe("VALIDATION_ERROR");
        ErrorCode(await CallAsync(owner, "submit_execution", """{"model":"sim/nope","input":{"prompt":"x"},"idempotency_key":"stdio-nope"}""")).ShouldBe("MODEL_NOT_FOUND");
        ErrorCode(await CallAsync(other, "get_execution", $$"""{"id":"{{id}}"}""")).ShouldBe("NOT_FOUND");
        ErrorCode(await CallAsync(other, "cancel_execution", $$"""{"id":"{{id}}"}""")).ShouldBe("NOT_FOUND");
        Structured(await CallAsync(owner, "cancel_execution", $$"""{"id":"{{id}}"}""")).GetProperty("status").GetString().ShouldBe("CANCELLED");
        ErrorCode(await CallAsync(owner, "cancel_execution", $$"""{"id":"{{id}}"}""")).ShouldBe("INVALID_STATE");
    }

    [Fact]
    public async Task Over_stdio_list_executions_passes_the_idempotency_key_metadata_and_time_filters_to_the_gateway()
    {
        await using var client = await ConnectAsync();
        var mine = Structured(await CallAsync(client, "submit_execution", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"a"}]},"idempotency_key":"stdio-find-1","metadata":{"order":"42 & 43"}}"""))
            .GetProperty("id").GetString()!;
        Structured(await CallAsync(client, "submit_execution", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"b"}]},"idempotency_key":"stdio-find-2","metadata":{"order":"44"}}"""));

        var byMetadata = Structured(await CallAsync(client, "list_executions", """{"metadata":{"order":"42 & 43"},"created_before":"2999-01-01T00:00:00Z"}"""));
        var byKey = Structured(await CallAsync(client, "list_executions", """{"idempotency_key":"stdio-find-1","created_after":1000000000}"""));
        var tooEarly = Structured(await CallAsync(client, "list_executions", """{"created_before":"2020-01-01T00:00:00Z"}"""));
        var bad = await CallAsync(client, "list_executions", """{"created_before":"yesterday"}""");

        byMetadata.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()).ShouldBe([mine]);
        byKey.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()).ShouldBe([mine]);
        tooEarly.GetProperty("data").GetArrayLength().ShouldBe(0);
        ErrorCode(bad).ShouldBe("VALIDATION_ERROR");
        JsonSerializer.SerializeToElement(bad.StructuredContent).GetProperty("field").GetString().ShouldBe("created_before");
    }

    [Fact]
    public async Task With_a_bad_key_every_tool_answers_unauthenticated_as_a_tool_error()
    {
        await using var client = await ConnectAsync("mr_live_not_a_key");

        ErrorCode(await CallAsync(client, "get_balance")).ShouldBe("UNAUTHENTICATED");
    }
}
