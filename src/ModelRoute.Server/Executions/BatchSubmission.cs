using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// A batch of submissions, checked and stored item by item, for <c>POST /v1/executions/batch</c> and MCP's submit_batch
/// alike (docs/api.md, docs/mcp.md#tools): the answer lists each item, in order, with its status and its execution or problem.
/// </summary>
public sealed class BatchSubmission(SubmissionValidator validator, ExecutionSubmitter submitter, SubmissionLoad load, IOptions<ModelRouteOptions> options)
{
    /// <summary>
    /// Submits the batch in <paramref name="root"/> (a bare array, or <c>{"executions": [...]}</c>); the problem when the
    /// batch itself is refused (no item is stored then).
    /// </summary>
    public async Task<(BatchView? Batch, Problem? Problem)> SubmitAsync(JsonElement root, string accountId, SubmittingKey key, CancellationToken cancellationToken)
    {
        if (Items(root, options.Value.Limits.MaxBatchSize, out var items) is { } refused)
        {
            return (null, refused);
        }

        Task<SubmissionResult>[] pending;
        using (load.Enter()) // A batch counts as one client waiting, however many items it holds.
        {
            pending = Start(items, accountId, key, cancellationToken);
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

        return (new BatchView("batch", results), null);
    }

    /// <summary>The batch's submissions: a bare array, or <c>{"executions": [...]}</c> and nothing else.</summary>
    private static Problem? Items(JsonElement root, int maxBatchSize, out JsonElement items)
    {
        items = default;
        if (root.ValueKind == JsonValueKind.Array)
        {
            items = root;
        }
        else if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("executions", out var list) && list.ValueKind == JsonValueKind.Array
            && root.EnumerateObject().Count() == 1)
        {
            items = list;
        }
        else
        {
            return Problem.Validation("executions", "Send {\"executions\": [ … ]}: an array of submissions, each with its own idempotency_key.");
        }

        var count = items.GetArrayLength();
        return count == 0 || count > maxBatchSize ? Problem.Validation("executions", $"A batch holds 1 to {maxBatchSize} submissions.") : null;
    }

    /// <summary>
    /// Items are stored concurrently, so that they share the store's group commits instead of waiting for one each;
    /// they are started in order, and an item whose key came earlier in the batch waits for that one, so it is
    /// answered as a replay (or a reused key) as before.
    /// </summary>
    private Task<SubmissionResult>[] Start(JsonElement items, string accountId, SubmittingKey key, CancellationToken cancellationToken)
    {
        var pending = new Task<SubmissionResult>[items.GetArrayLength()];
        var lastWithKey = new Dictionary<string, Task>(StringComparer.Ordinal);
        var index = 0;
        foreach (var item in items.EnumerateArray())
        {
            var prefix = $"executions[{index}].";
            var (submission, invalid) = validator.Parse(item, prefix);
            if (invalid is not null)
            {
                pending[index] = Task.FromResult(new SubmissionResult(null, false, invalid));
            }
            else
            {
                var earlier = lastWithKey.GetValueOrDefault(submission!.IdempotencyKey);
                pending[index] = SubmitAfterAsync(earlier, accountId, submission, prefix, key, cancellationToken);
                lastWithKey[submission.IdempotencyKey] = pending[index];
            }

            index++;
        }

        return pending;
    }

    private async Task<SubmissionResult> SubmitAfterAsync(
        Task? earlier, string accountId, ParsedSubmission submission, string prefix, SubmittingKey key, CancellationToken cancellationToken)
    {
        if (earlier is not null)
        {
            await earlier;
        }

        return await submitter.SubmitAsync(accountId, submission, prefix, SubmissionSpan.Own, cancellationToken, key);
    }
}
