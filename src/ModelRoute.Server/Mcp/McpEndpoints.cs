using System.Security.Claims;
using ModelContextProtocol.AspNetCore;
using ModelRoute.Mcp;
using ModelRoute.Server.Accounts;

namespace ModelRoute.Server.Mcp;

/// <summary>MCP over Streamable HTTP at <c>/mcp</c> (docs/mcp.md): the API key is the Bearer token, as on the HTTP API.</summary>
public static class McpEndpoints
{
    public const string Path = "/mcp";

    /// <summary>The origin the client reached the node at, for artifact links (kept on the user: no per-request accessor on the hot path).</summary>
    public const string OriginClaim = "modelroute:mcp_origin";

    public static IServiceCollection AddModelRouteMcp(this IServiceCollection services)
    {
        services.AddSingleton<McpGatewayServices>();
        services.AddSingleton<IGatewayConnector>(sp => sp.GetRequiredService<McpGatewayServices>());
        // Sessions for clients that open one with initialize (subscriptions need them); a session lives on the node that
        // made it, while 2026-07-28 clients need none (docs/mcp.md#sessions-and-nodes). Every tool reads and writes the shared store.
        services.AddMcpServer(o => o.ServerInfo = new() { Name = "modelroute", Version = typeof(McpEndpoints).Assembly.GetName().Version?.ToString(3) ?? "1.0.0" })
            .WithHttpTransport(o => o.SessionMode = HttpServerSessionMode.StatefulForInitializeClients)
            .WithModelRouteTools();
        return services;
    }

    public static IEndpointRouteBuilder MapModelRouteMcp(this IEndpointRouteBuilder app)
    {
        // A protocol endpoint, not a REST operation: it is described in docs/mcp.md, not in the OpenAPI document.
        var mcp = app.MapMcp(Path).RequireAuthorization(Policies.Account).ExcludeFromDescription();
        mcp.Add(endpoint =>
        {
            var inner = endpoint.RequestDelegate!;
            endpoint.RequestDelegate = context =>
            {
                context.User = ForMcp(context.User, $"{context.Request.Scheme}://{context.Request.Host}");
                return inner(context);
            };
        });
        return app;
    }

    /// <summary>
    /// A copy of the principal (the authenticated one may be shared between requests) with the origin, and with the API
    /// key as NameIdentifier: the SDK binds a session to it, so a session belongs to the key that opened it.
    /// </summary>
    private static ClaimsPrincipal ForMcp(ClaimsPrincipal user, string origin)
    {
        if (user.Identity is not ClaimsIdentity { IsAuthenticated: true } identity)
        {
            return user;
        }

        var claims = identity.Claims.Where(c => c.Type != OriginClaim).Append(new Claim(OriginClaim, origin));
        if (!user.HasClaim(c => c.Type == ClaimTypes.NameIdentifier))
        {
            claims = claims.Append(new Claim(ClaimTypes.NameIdentifier, user.ApiKeyId() is { Length: > 0 } keyId ? keyId : user.AccountId()));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, identity.AuthenticationType));
    }
}
