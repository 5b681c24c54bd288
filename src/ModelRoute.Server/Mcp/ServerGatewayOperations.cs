using ModelRoute.Mcp;
using ModelRoute.Server.Http;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Mcp;

/// <summary>
/// The MCP tools' gateway on a node: the services the HTTP endpoints use, for the account of the authenticated key,
/// with the same validation, problems and tenant walls (docs/mcp.md). Every read and write goes to the shared store,
/// so a session on any node sees all of the account's executions.
/// </summary>
internal sealed class ServerGatewayOperations(McpGatewayServices services, string accountId, SubmittingKey key, string? origin) : IGatewayOperations
{
    public Task<GatewayResult> ListModelsAsync(CancellationToken cancellationToken) =>
        Task.FromResult(Ok(ListView<ModelView>.Of([.. services.Catalog.All.Select(OperationsEndpoints.ToView)], false, null)));

    public async Task<GatewayResult> SubmitAsync(JsonElement submission, CancellationToken cancellationToken)
    {
        var result = await services.Submissions.SubmitAsync(submission, accountId, key, SubmissionSpan.Own, cancellationToken);
        return result.Problem is { } problem ? Fail(problem) : Ok(ExecutionView.From(result.Execution!));
    }

    public async Task<GatewayResult> SubmitBatchAsync(JsonElement batch, CancellationToken cancellationToken)
    {
        var (submitted, refused) = await services.Batches.SubmitAsync(batch, accountId, key, cancellationToken);
        return refused is not null ? Fail(refused) : Ok(submitted!);
    }

    /// <summary>As <c>GET /v1/executions/{id}?wait=</c>: woken by the change signal, re-read at least every second for other nodes' changes.</summary>
    public async Task<GatewayResult> GetAsync(string id, int waitSeconds, CancellationToken cancellationToken)
    {
        var time = services.Time;
        var deadline = time.GetUtcNow().AddSeconds(waitSeconds);
        while (true)
        {
            var changed = services.Changes.WhenChanged(id);
            var execution = await services.Store.GetAsync(id, accountId, cancellationToken);
            if (execution is null)
            {
                return Fail(Problem.NotFound("The execution"));
            }

            var remaining = deadline - time.GetUtcNow();
            if (execution.Status.IsTerminal() || remaining <= TimeSpan.Zero)
            {
                return Ok(ExecutionView.From(execution));
            }

            try
            {
                await changed.WaitAsync(remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1), time, cancellationToken);
            }
            catch (TimeoutException)
            {
                // Read again: the change may have been made by another node.
            }
        }
    }

    public async Task<GatewayResult> CancelAsync(string id, CancellationToken cancellationToken)
    {
        var (cancelled, problem) = await services.Cancellation.CancelAsync(id, accountId, cancellationToken);
        return problem is not null ? Fail(problem) : Ok(ExecutionView.From(cancelled!));
    }

    /// <summary>As <c>GET /v1/executions</c>: the same parser, the metadata object given as its <c>metadata[key]</c> entries.</summary>
    public async Task<GatewayResult> ListAsync(ExecutionFilter filter, CancellationToken cancellationToken)
    {
        var (query, size, problem) = ExecutionListQuery.ParsePage(
            ExecutionListQuery.MetadataQuery(filter.Metadata), filter.Status, filter.Model, filter.CreatedAfter, filter.CreatedBefore, filter.IdempotencyKey, filter.Limit, filter.Cursor);
        if (problem is not null)
        {
            return Fail(problem);
        }

        var rows = await services.Store.ListAsync(accountId, query!, cancellationToken);
        return Ok(Paging.Page(rows, size, e => e.Id, ExecutionView.From));
    }

    public async Task<GatewayResult> GetBalanceAsync(CancellationToken cancellationToken) =>
        await services.Accounts.GetAccountAsync(accountId, cancellationToken) is { } account
            ? Ok(new Accounts.BalanceView("balance", Money.Format(account.BalanceMicros), Money.Format(account.HeldMicros), Money.Format(account.AvailableMicros), "usd"))
            : Fail(Problem.NotFound("The account"));

    public async Task<ArtifactBytes> ReadArtifactAsync(string id, string name, long maxBytes, CancellationToken cancellationToken)
    {
        var execution = await services.Store.GetAsync(id, accountId, cancellationToken);
        if (execution?.Artifacts.FirstOrDefault(a => a.Name == name) is not { } artifact || await services.Artifacts.ReadAsync(id, artifact, cancellationToken) is not { } stream)
        {
            return new ArtifactBytes(null, Error(Problem.NotFound("The artifact")));
        }

        if (artifact.SizeBytes > maxBytes)
        {
            await stream.DisposeAsync();
            return new ArtifactBytes(null, Error(Problem.TooLarge($"The artifact is larger than {maxBytes} bytes.")));
        }

        await using (stream)
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy, cancellationToken);
            return copy.Length > maxBytes
                ? new ArtifactBytes(null, Error(Problem.TooLarge($"The artifact is larger than {maxBytes} bytes.")))
                : new ArtifactBytes(copy.ToArray(), null);
        }
    }

    public string ArtifactLink(string path) => origin + path;

    private static GatewayResult Ok<T>(T view) => GatewayResult.Ok(JsonSerializer.SerializeToElement(view, ApiJson.Options));

    private static GatewayResult Fail(Problem problem) => GatewayResult.Fail(Error(problem));

    private static GatewayError Error(Problem problem) => new(problem.Code, problem.Detail, problem.Field);
}
