using Microsoft.Extensions.DependencyInjection;

namespace ModelRoute.Mcp;

public static class ModelRouteMcpBuilderExtensions
{
    /// <summary>The gateway's tools and execution resources (docs/mcp.md), over whatever transport the builder has.</summary>
    public static IMcpServerBuilder WithModelRouteTools(this IMcpServerBuilder builder) =>
        builder
            .WithListToolsHandler(GatewayTools.ListAsync)
            .WithCallToolHandler(GatewayTools.CallAsync)
            .WithListResourceTemplatesHandler(ExecutionResources.ListTemplatesAsync)
            .WithReadResourceHandler(ExecutionResources.ReadAsync);
}
