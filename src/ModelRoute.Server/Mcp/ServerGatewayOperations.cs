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
        var (parsed, invalid) = services.Validator.Parse(submission);
        if (invalid is not null)
        {
            return Fail(invalid);
        }

        SubmissionResult result;
        using (services.Load.Enter())
        {
            result = await services.Submitter.SubmitAsync(accountId, parsed!, "", cancellationToken, key);
        }

        return result.Problem is { } problem ? Fail(problem) : Ok(ExecutionView.From(result.Execution!));
    }

    public async Task<GatewayResult> SubmitBatchAsync(JsonElement batch, CancellationToken cancellationToken)
    {
        var max = services.Options.Value.Limits.MaxBatchSize;
        if (!batch.TryGetProperty("executions", out var items) || items.ValueKind != JsonValueKind.Array || items.GetArrayLength() is 0 || items.GetArrayLength() > max)
        {
            return Fail(Problem.Validation("executions", $"'executions' must be an array of 1 to {max} submissions, each with its own idempotency_key."));
        }

        Task<SubmissionResult>[] pending;
        using (services.Load.Enter())
        {
            pending = StartBatch(items, cancellationToken);
            await Task.WhenAll(pending);
        }

        var results = new List<BatchItemView>(pending.Length);
        for (var i = 0; i < pending.Length; i++)
        {
            var result = pending[i].Result;
            results.Add(result.Problem is { } p
                ? new BatchItemView(i, p.Status, null, p.ToProblemDetails())
                : new BatchItemView(i, result.Replayed ? 200 : 202, ExecutionView.From(result.Execution!), null));
        }

        return Ok(new BatchView("batch", results));
    }

    /// <summary>As <c>POST /v1/executions/batch</c>: stored concurrently, an item whose key came earlier waiting for that one.</summary>
    private Task<SubmissionResult>[] StartBatch(JsonElement items, CancellationToken cancellationToken)
    {
        var pending = new Task<SubmissionResult>[items.GetArrayLength()];
        var lastWithKey = new Dictionary<string, Task>(StringComparer.Ordinal);
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            var prefix = $"executions[{index}].";
            var (submission, invalid) = services.Validator.Parse(item, prefix);
            if (invalid is not null)
            {
                pending[index] = Task.FromResult(new SubmissionResult(null, false, invalid));
            }
            else
            {
                pending[index] = SubmitAfterAsync(lastWithKey.GetValueOrDefault(submission!.IdempotencyKey), submission, prefix, cancellationToken);
                lastWithKey[submission.IdempotencyKey] = pending[index];
            }

            index++;
        }

        return pending;
    }

    private async Task<SubmissionResult> SubmitAfterAsync(Task? earlier, ParsedSubmission submission, string prefix, CancellationToken cancellationToken)
    {
        if (earlier is not null)
        {
            await earlier;
        }

        return await services.Submitter.SubmitAsync(accountId, submission, prefix, cancellationToken, key);
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
        while (true)
        {
            if (await services.Store.TransitionAsync(ExecutionTransition.Cancel(id, accountId), cancellationToken) is { } cancelled)
            {
                services.InFlight.Stop(id);
                services.ProviderCancellation.Request(cancelled);
                return Ok(ExecutionView.From(cancelled));
            }

            var current = await services.Store.GetAsync(id, accountId, cancellationToken);
            if (current is null)
            {
                return Fail(Problem.NotFound("The execution"));
            }

            if (current.Status.IsTerminal())
            {
                return Fail(new Problem(409, ErrorCodes.InvalidState, $"The execution is already {current.Status.ToWire()} and cannot be cancelled."));
            }
        }
    }

    public async Task<GatewayResult> ListAsync(ExecutionFilter filter, CancellationToken cancellationToken)
    {
        ExecutionStatus? status = null;
        if (filter.Status is not null && (status = ExecutionStatuses.FromWire(filter.Status)) is null)
        {
            return Fail(Problem.Validation("status", "'status' must be one of PENDING, PROCESSING, AWAITING_WEBHOOK, COMPLETED, FAILED, CANCELLED, EXPIRED."));
        }

        var (size, problem) = Paging.Parse(filter.Limit, filter.Cursor, "exe");
        if (problem is not null)
        {
            return Fail(problem);
        }

        var rows = await services.Store.ListAsync(accountId, new ExecutionQuery(status, filter.Model, null, Paging.Decode(filter.Cursor), size + 1), cancellationToken);
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
