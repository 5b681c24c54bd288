using Microsoft.Extensions.DependencyInjection;
using ModelContextProtocol.Server;

namespace ModelRoute.Mcp;

public static class ModelRouteMcpBuilderExtensions
{
    /// <summary>The gateway's tools and execution resources (docs/mcp.md), over whatever transport the builder has.</summary>
    public static IMcpServerBuilder WithModelRouteTools(this IMcpServerBuilder builder) =>
        builder
            .WithListToolsHandler(GatewayTools.ListAsync)
            .WithCallToolHandler(GatewayTools.CallAsync)
            .WithListResourceTemplatesHandler(ExecutionResources.ListTemplatesAsync)
            .WithReadResourceHandler(ExecutionResources.ReadAsync)
            .WithSubscribeToResourcesHandler(ExecutionSubscriptions.SubscribeAsync)
            .WithUnsubscribeFromResourcesHandler(ExecutionSubscriptions.UnsubscribeAsync);

    /// <summary>The same tools and resources on options for a server made without a host (the CLI's stdio server).</summary>
    public static McpServerOptions WithModelRouteTools(this McpServerOptions options)
    {
        options.Handlers.ListToolsHandler = GatewayTools.ListAsync;
        options.Handlers.CallToolHandler = GatewayTools.CallAsync;
        options.Handlers.ListResourceTemplatesHandler = ExecutionResources.ListTemplatesAsync;
        options.Handlers.ReadResourceHandler = ExecutionResources.ReadAsync;
        options.Handlers.SubscribeToResourcesHandler = ExecutionSubscriptions.SubscribeAsync;
        options.Handlers.UnsubscribeFromResourcesHandler = ExecutionSubscriptions.UnsubscribeAsync;
        return options;
    }
}
