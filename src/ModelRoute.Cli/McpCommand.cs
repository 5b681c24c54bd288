using System.CommandLine;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Server;
using ModelRoute.Client;
using ModelRoute.Mcp;

namespace ModelRoute.Cli;

/// <summary>
/// <c>modelroute mcp</c>: the gateway's MCP tools over stdio, calling the gateway with MODELROUTE_URL and
/// MODELROUTE_API_KEY (docs/mcp.md). Stdout is the protocol; anything else goes to stderr.
/// </summary>
internal static class McpCommand
{
    public static Command Create(Func<ParseResult, CancellationToken, Func<ModelRouteClient, Output, CancellationToken, Task<int>>, Task<int>> run)
    {
        var command = new Command("mcp", "Serve the gateway's tools to an agent over MCP (stdio): list_models, submit_execution, wait_for_execution and more");
        command.SetAction((parse, ct) => run(parse, ct, ServeAsync));
        return command;
    }

    private static async Task<int> ServeAsync(ModelRouteClient client, Output output, CancellationToken cancellationToken)
    {
        var services = new ServiceCollection().AddSingleton<IGatewayConnector>(new ClientGatewayOperations(client)).BuildServiceProvider();
        await using (services)
        {
            var options = new McpServerOptions
            {
                ServerInfo = new() { Name = "modelroute", Version = typeof(McpCommand).Assembly.GetName().Version?.ToString(3) ?? "0.1.0" },
            }.WithModelRouteTools();
            await using var server = McpServer.Create(new StdioServerTransport(options), options, loggerFactory: null, services);
            await server.RunAsync(cancellationToken);
        }

        return ExitCodes.Ok;
    }
}

/// <summary>The MCP tools' gateway over HTTP, through <see cref="ModelRouteClient"/>: the API's JSON, its problems as tool errors.</summary>
internal sealed class ClientGatewayOperations(ModelRouteClient client) : IGatewayOperations, IGatewayConnector
{
    public IGatewayOperations For(ClaimsPrincipal? user) => this;

    public Task<GatewayResult> ListModelsAsync(CancellationToken cancellationToken) => SendAsync(HttpMethod.Get, "v1/models", null, true, cancellationToken);

    public Task<GatewayResult> SubmitAsync(JsonElement submission, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "v1/executions", submission, true, cancellationToken);

    public Task<GatewayResult> SubmitBatchAsync(JsonElement batch, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, "v1/executions/batch", batch, true, cancellationToken);

    public Task<GatewayResult> GetAsync(string id, int waitSeconds, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, $"v1/executions/{Uri.EscapeDataString(id)}" + (waitSeconds > 0 ? $"?wait={waitSeconds}" : ""), null, true, cancellationToken);

    public Task<GatewayResult> CancelAsync(string id, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, $"v1/executions/{Uri.EscapeDataString(id)}/cancel", null, false, cancellationToken);

    /// <summary>Every filter as given, the metadata object as <c>metadata[key]=value</c>: the gateway checks them as for any HTTP caller.</summary>
    public Task<GatewayResult> ListAsync(ExecutionFilter filter, CancellationToken cancellationToken)
    {
        var given = new[]
        {
            ("status", filter.Status), ("model", filter.Model), ("idempotency_key", filter.IdempotencyKey), ("created_after", filter.CreatedAfter),
            ("created_before", filter.CreatedBefore), ("limit", filter.Limit), ("cursor", filter.Cursor),
        };
        var metadata = (filter.Metadata ?? new Dictionary<string, string>()).Select(m => ($"metadata[{m.Key}]", (string?)m.Value));
        var query = given.Concat(metadata)
            .Where(q => q.Item2 is not null)
            .Select(q => Uri.EscapeDataString(q.Item1) + "=" + Uri.EscapeDataString(q.Item2!));
        var text = string.Join('&', query);
        return SendAsync(HttpMethod.Get, "v1/executions" + (text.Length == 0 ? "" : "?" + text), null, true, cancellationToken);
    }

    public Task<GatewayResult> GetBalanceAsync(CancellationToken cancellationToken) => SendAsync(HttpMethod.Get, "v1/balance", null, true, cancellationToken);

    public async Task<ArtifactBytes> ReadArtifactAsync(string id, string name, long maxBytes, CancellationToken cancellationToken)
    {
        try
        {
            var bytes = await client.DownloadArtifactAsync(id, name, cancellationToken);
            return bytes.LongLength > maxBytes
                ? new ArtifactBytes(null, new GatewayError("PAYLOAD_TOO_LARGE", $"The artifact is larger than {maxBytes} bytes."))
                : new ArtifactBytes(bytes, null);
        }
        catch (ModelRouteApiException e)
        {
            return new ArtifactBytes(null, Error(e));
        }
    }

    public string ArtifactLink(string path) => new Uri(client.Options.BaseAddress!, path).ToString();

    private async Task<GatewayResult> SendAsync(HttpMethod method, string path, JsonElement? body, bool idempotent, CancellationToken cancellationToken)
    {
        try
        {
            return GatewayResult.Ok(await client.SendJsonAsync(method, path, body, idempotent, cancellationToken));
        }
        catch (ModelRouteApiException e)
        {
            return GatewayResult.Fail(Error(e));
        }
    }

    private static GatewayError Error(ModelRouteApiException e) => new(e.Code, e.Detail ?? e.Problem.Title ?? e.Message, e.Field);
}
