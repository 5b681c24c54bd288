using System.Security.Claims;
using ModelRoute.Mcp;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Mcp;

/// <summary>The services the MCP tools share with the HTTP endpoints (one instance per node).</summary>
internal sealed class McpGatewayServices(
    ModelCatalog catalog,
    SingleSubmission submissions,
    BatchSubmission batches,
    ExecutionCancellation cancellation,
    IExecutionStore store,
    IAccountStore accounts,
    IArtifactStore artifacts,
    ExecutionChanges changes,
    IOptions<ModelRouteOptions> options,
    TimeProvider time) : IGatewayConnector
{
    public ModelCatalog Catalog => catalog;

    public SingleSubmission Submissions => submissions;

    public BatchSubmission Batches => batches;

    public ExecutionCancellation Cancellation => cancellation;

    public IExecutionStore Store => store;

    public IAccountStore Accounts => accounts;

    public IArtifactStore Artifacts => artifacts;

    public ExecutionChanges Changes => changes;

    public TimeProvider Time => time;

    /// <summary>The caller's account: /mcp requires the account policy, so the user always carries one.</summary>
    public IGatewayOperations For(ClaimsPrincipal? user) =>
        user?.FindFirst(Claims.AccountIdType) is null
            ? throw new InvalidOperationException("The MCP endpoint is mapped without the account policy.")
            : new ServerGatewayOperations(this, user.AccountId(), user.SubmittingKey(), Origin(user));

    /// <summary>
    /// Where artifact links point: ModelRoute:PublicBaseUrl when set, as for every public URL the gateway gives
    /// (docs/mcp.md#tools), so a request's Host header never makes the link; the address the client reached otherwise.
    /// </summary>
    private string? Origin(ClaimsPrincipal user) =>
        options.Value.PublicBaseUrl is { Length: > 0 } publicBaseUrl ? publicBaseUrl.TrimEnd('/') : user.FindFirst(McpEndpoints.OriginClaim)?.Value;
}
