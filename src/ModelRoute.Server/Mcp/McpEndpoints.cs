using ModelRoute.Mcp;

namespace ModelRoute.Server.Mcp;

/// <summary>MCP over Streamable HTTP at <c>/mcp</c> (docs/mcp.md): the API key is the Bearer token, as on the HTTP API.</summary>
public static class McpEndpoints
{
    public const string Path = "/mcp";

    public static IServiceCollection AddModelRouteMcp(this IServiceCollection services)
    {
        services.AddHttpContextAccessor();
        services.AddSingleton<McpGatewayServices>();
        services.AddSingleton<IGatewayConnector>(sp => sp.GetRequiredService<McpGatewayServices>());
        // Stateful sessions (progress and subscriptions need them): a session lives on the node that made it
        // (docs/mcp.md#sessions-and-nodes); every tool reads and writes the shared store.
        services.AddMcpServer(o => o.ServerInfo = new() { Name = "modelroute", Version = typeof(McpEndpoints).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" })
            .WithHttpTransport()
            .WithModelRouteTools();
        return services;
    }

    public static IEndpointRouteBuilder MapModelRouteMcp(this IEndpointRouteBuilder app)
    {
        app.MapMcp(Path).RequireAuthorization(Policies.Account).WithTags("MCP");
        return app;
    }
}
