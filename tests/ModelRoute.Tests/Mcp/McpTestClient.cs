using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Tests.Mcp;

/// <summary>The C# MCP client on a gateway's /mcp, with an API key as the Bearer token.</summary>
public static class McpTestClient
{
    public static Uri Endpoint(GatewayFactory gateway)
    {
        using var anonymous = gateway.Anonymous();
        return new Uri(anonymous.BaseAddress!, "/mcp");
    }

    public static Task<McpClient> ConnectAsync(GatewayFactory gateway, string? key, McpClientOptions? options = null) =>
        ConnectAsync(Endpoint(gateway), key, options);

    public static async Task<McpClient> ConnectAsync(Uri endpoint, string? key, McpClientOptions? options = null)
    {
        var headers = new Dictionary<string, string>();
        if (key is not null)
        {
            headers["Authorization"] = "Bearer " + key;
        }

        var transport = new HttpClientTransport(new HttpClientTransportOptions
        {
            Endpoint = endpoint,
            TransportMode = HttpTransportMode.StreamableHttp,
            AdditionalHeaders = headers,
        });
        return await McpClient.CreateAsync(transport, options);
    }

    public static Task<CallToolResult> CallAsync(this McpClient client, string tool, object? arguments = null, IProgress<ModelContextProtocol.ProgressNotificationValue>? progress = null)
    {
        var args = arguments is null
            ? new Dictionary<string, object?>()
            : JsonSerializer.Deserialize<Dictionary<string, object?>>(JsonSerializer.Serialize(arguments))!;
        return client.CallToolAsync(tool, args, progress).AsTask();
    }

    public static JsonElement Structured(this CallToolResult result)
    {
        result.IsError.ShouldNotBe(true, Text(result));
        return Json(result);
    }

    /// <summary>The normalized code of a tool error.</summary>
    public static string ErrorCode(this CallToolResult result)
    {
        result.IsError.ShouldBe(true, Text(result));
        return Json(result).GetProperty("code").GetString()!;
    }

    public static string? ErrorField(this CallToolResult result) =>
        Json(result).TryGetProperty("field", out var field) ? field.GetString() : null;

    public static string Text(this CallToolResult result) =>
        string.Join("\n", result.Content.OfType<TextContentBlock>().Select(t => t.Text));

    private static JsonElement Json(CallToolResult result) =>
        JsonSerializer.SerializeToElement(result.StructuredContent);
}
