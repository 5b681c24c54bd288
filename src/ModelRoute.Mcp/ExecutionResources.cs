using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ModelRoute.Mcp;

/// <summary>Each execution as the resource <c>modelroute://executions/{id}</c>, read as the API's JSON (docs/mcp.md#resources).</summary>
public static class ExecutionResources
{
    public const string Prefix = "modelroute://executions/";

    private static readonly ResourceTemplate Template = new()
    {
        Name = "execution",
        Title = "An execution",
        UriTemplate = Prefix + "{id}",
        MimeType = "application/json",
        Description = "An execution of this account as the API's JSON. Subscribe to be told (notifications/resources/updated) when it ends.",
    };

    public static ValueTask<ListResourceTemplatesResult> ListTemplatesAsync(RequestContext<ListResourceTemplatesRequestParams> request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(new ListResourceTemplatesResult { ResourceTemplates = [Template] });

    public static async ValueTask<ReadResourceResult> ReadAsync(RequestContext<ReadResourceRequestParams> request, CancellationToken cancellationToken)
    {
        var uri = request.Params?.Uri ?? "";
        var id = IdOf(uri) ?? throw new McpProtocolException($"Not an execution resource: {uri}; use {Template.UriTemplate}.", McpErrorCode.InvalidParams);
        var result = await GatewayTools.ConnectorOf(request).For(request.User).GetAsync(id, 0, cancellationToken);
        if (result.Error is { } error)
        {
            throw new McpProtocolException($"{error.Code}: {error.Message}", error.Code == "NOT_FOUND" ? McpErrorCode.ResourceNotFound : McpErrorCode.InvalidParams);
        }

        return new ReadResourceResult
        {
            Contents = [new TextResourceContents { Uri = uri, MimeType = "application/json", Text = result.Value.GetRawText() }],
        };
    }

    /// <summary>The execution id of a resource URI, or null when it is not one of ours.</summary>
    public static string? IdOf(string uri) =>
        uri.StartsWith(Prefix, StringComparison.Ordinal) && uri.Length > Prefix.Length && uri.AsSpan(Prefix.Length).IndexOfAny('/', '?', '#') < 0
            ? uri[Prefix.Length..]
            : null;
}
