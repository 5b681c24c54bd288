using System.Security.Claims;
using System.Text.Json;

namespace ModelRoute.Mcp;

/// <summary>
/// The gateway as the MCP tools see it (docs/mcp.md): each call answers the API's own JSON, or the problem the
/// HTTP API would answer. The server implements it over its services; the CLI over the HTTP client.
/// </summary>
public interface IGatewayOperations
{
    Task<GatewayResult> ListModelsAsync(CancellationToken cancellationToken);

    /// <summary>Submits one execution; <paramref name="submission"/> is the body of <c>POST /v1/executions</c>.</summary>
    Task<GatewayResult> SubmitAsync(JsonElement submission, CancellationToken cancellationToken);

    /// <summary>Submits a batch; <paramref name="batch"/> is the body of <c>POST /v1/executions/batch</c>.</summary>
    Task<GatewayResult> SubmitBatchAsync(JsonElement batch, CancellationToken cancellationToken);

    /// <summary>Reads an execution, holding up to <paramref name="waitSeconds"/> for it to end (like <c>?wait=</c>).</summary>
    Task<GatewayResult> GetAsync(string id, int waitSeconds, CancellationToken cancellationToken);

    Task<GatewayResult> CancelAsync(string id, CancellationToken cancellationToken);

    Task<GatewayResult> ListAsync(ExecutionFilter filter, CancellationToken cancellationToken);

    Task<GatewayResult> GetBalanceAsync(CancellationToken cancellationToken);

    /// <summary>An artifact's bytes, at most <paramref name="maxBytes"/> of them.</summary>
    Task<ArtifactBytes> ReadArtifactAsync(string id, string name, long maxBytes, CancellationToken cancellationToken);

    /// <summary>Where a client fetches an artifact over HTTP, from the <c>url</c> the execution gives (a path).</summary>
    string ArtifactLink(string path);
}

/// <summary>Gives the operations of the caller: the authenticated user over HTTP, the configured key over stdio.</summary>
public interface IGatewayConnector
{
    IGatewayOperations For(ClaimsPrincipal? user);
}

/// <summary>The filters of <c>GET /v1/executions</c>, as given (checked by the gateway, as the HTTP list checks them).</summary>
public sealed record ExecutionFilter(string? Status, string? Model, string? Limit, string? Cursor)
{
    /// <summary>RFC 3339 or unix seconds, as the HTTP list takes them.</summary>
    public string? CreatedAfter { get; init; }

    public string? CreatedBefore { get; init; }

    public string? IdempotencyKey { get; init; }

    /// <summary>Up to 3 metadata key/values, each matched exactly (<c>metadata[key]=value</c> on HTTP).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
}

/// <summary>The gateway's refusal: the normalized code of the HTTP API and its detail.</summary>
public sealed record GatewayError(string Code, string Message, string? Field = null);

public sealed record GatewayResult(JsonElement Value, GatewayError? Error)
{
    public static GatewayResult Ok(JsonElement value) => new(value, null);

    public static GatewayResult Fail(GatewayError error) => new(default, error);
}

public sealed record ArtifactBytes(byte[]? Content, GatewayError? Error);
