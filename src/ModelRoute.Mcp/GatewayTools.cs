using System.Text.Json;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ModelRoute.Mcp;

/// <summary>Runs the tools of <see cref="GatewayToolCatalog"/> against the caller's <see cref="IGatewayOperations"/>.</summary>
public static class GatewayTools
{
    /// <summary>wait_for_execution re-reads (and reports progress) at least this often.</summary>
    private const int WaitSliceSeconds = 5;

    /// <summary>Images up to this size are returned inline as image content; larger ones as a link (docs/mcp.md#tools).</summary>
    public const long MaxInlineImageBytes = 4 * 1024 * 1024;

    public static ValueTask<ListToolsResult> ListAsync(RequestContext<ListToolsRequestParams> request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ListToolsResult { Tools = GatewayToolCatalog.All });

    public static async ValueTask<CallToolResult> CallAsync(RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var name = request.Params?.Name ?? "";
        var args = new ToolArguments(request.Params?.Arguments);
        var operations = ConnectorOf(request).For(request.User);
        try
        {
            return await CallAsync(name, args, operations, request, cancellationToken);
        }
        catch (Exception ex) when (ex is HttpRequestException or TimeoutException or IOException && !cancellationToken.IsCancellationRequested)
        {
            // The gateway could not be reached (stdio) or the store failed: a tool error the model can read, not a protocol failure.
            return ToolResults.Error(new GatewayError("STORE_UNAVAILABLE", "The gateway could not be reached; try again shortly."));
        }
    }

    private static async Task<CallToolResult> CallAsync(
        string name, ToolArguments args, IGatewayOperations gateway, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        switch (name)
        {
            case GatewayToolCatalog.ListModels:
                return ToolResults.From(await gateway.ListModelsAsync(cancellationToken), Summaries.Models);
            case GatewayToolCatalog.SubmitExecution:
                return ToolResults.From(await gateway.SubmitAsync(args.AsObject(), cancellationToken), Summaries.Execution);
            case GatewayToolCatalog.SubmitBatch:
                return ToolResults.From(await gateway.SubmitBatchAsync(args.AsObject(), cancellationToken), Summaries.Batch);
            case GatewayToolCatalog.GetBalance:
                return ToolResults.From(await gateway.GetBalanceAsync(cancellationToken), Summaries.Balance);
            case GatewayToolCatalog.ListExecutions:
                var filter = Filter(args);
                return args.Error is { } badFilter ? ToolResults.Error(badFilter) : ToolResults.From(await gateway.ListAsync(filter, cancellationToken), Summaries.Executions);
        }

        var id = args.RequiredString("id");
        switch (name)
        {
            case GatewayToolCatalog.GetExecution when args.Error is null:
                return ToolResults.From(await gateway.GetAsync(id, 0, cancellationToken), Summaries.Execution);
            case GatewayToolCatalog.CancelExecution when args.Error is null:
                return ToolResults.From(await gateway.CancelAsync(id, cancellationToken), Summaries.Execution);
            case GatewayToolCatalog.WaitForExecution:
                var timeout = args.Integer("timeout_seconds", 0, 60, 30);
                return args.Error is { } badWait ? ToolResults.Error(badWait) : await WaitAsync(gateway, id, timeout, request, cancellationToken);
            case GatewayToolCatalog.GetArtifact:
                var artifact = args.RequiredString("name");
                return args.Error is { } badArtifact ? ToolResults.Error(badArtifact) : await ArtifactTool.GetAsync(gateway, id, artifact, cancellationToken);
            case GatewayToolCatalog.GetExecution or GatewayToolCatalog.CancelExecution:
                return ToolResults.Error(args.Error!);
            default:
                return ToolResults.Error(new GatewayError("NOT_FOUND", $"There is no tool '{name}'; call tools/list for the tools."));
        }
    }

    private static ExecutionFilter Filter(ToolArguments args) =>
        new(args.OptionalString("status"), args.OptionalString("model"), args.IntegerText("limit"), args.OptionalString("cursor"))
        {
            CreatedAfter = args.TimeText("created_after"),
            CreatedBefore = args.TimeText("created_before"),
            IdempotencyKey = args.OptionalString("idempotency_key"),
            Metadata = args.StringMap("metadata"),
        };

    /// <summary>
    /// Waits in slices, so that progress is reported every few seconds while the gateway holds each read until the
    /// execution changes; when time runs out, the execution is returned as it is.
    /// </summary>
    private static async Task<CallToolResult> WaitAsync(
        IGatewayOperations gateway, string id, int timeoutSeconds, RequestContext<CallToolRequestParams> request, CancellationToken cancellationToken)
    {
        var progressToken = request.Params?.ProgressToken;
        var waited = 0;
        while (true)
        {
            var slice = Math.Min(WaitSliceSeconds, timeoutSeconds - waited);
            var result = await gateway.GetAsync(id, slice, cancellationToken);
            if (result.Error is not null || Summaries.IsTerminal(result.Value) || slice <= 0)
            {
                return ToolResults.From(result, Summaries.Execution);
            }

            waited += slice;
            if (progressToken is { } token)
            {
                var status = Summaries.Status(result.Value);
                await request.Server.NotifyProgressAsync(
                    token,
                    new ProgressNotificationValue { Progress = waited, Total = timeoutSeconds, Message = $"{id} is {status} after {waited} s" },
                    cancellationToken: cancellationToken);
            }
        }
    }

    internal static IGatewayConnector ConnectorOf(MessageContext request) =>
        (IGatewayConnector?)request.Services?.GetService(typeof(IGatewayConnector))
        ?? (IGatewayConnector?)request.Server.Services?.GetService(typeof(IGatewayConnector))
        ?? throw new InvalidOperationException("No IGatewayConnector is registered.");
}
