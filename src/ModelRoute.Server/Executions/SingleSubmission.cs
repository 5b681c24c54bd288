using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// One submission, checked and stored, for <c>POST /v1/executions</c> and MCP's submit_execution alike (docs/api.md,
/// docs/mcp.md#tools): its execution (new, or the one its idempotency key replays) or the problem that refused it.
/// </summary>
public sealed class SingleSubmission(SubmissionValidator validator, ExecutionSubmitter submitter, SubmissionLoad load)
{
    /// <summary>Checks the submission in <paramref name="root"/> and stores it; nothing is stored when it is refused.</summary>
    /// <param name="span">
    /// <see cref="SubmissionSpan.Request"/> only from <c>POST /v1/executions</c>, whose request is this one submission;
    /// an MCP tool call is one message of a session's request, and gets a span of its own.
    /// </param>
    public async Task<SubmissionResult> SubmitAsync(JsonElement root, string accountId, SubmittingKey key, SubmissionSpan span, CancellationToken cancellationToken)
    {
        var (submission, invalid) = validator.Parse(root);
        if (invalid is not null)
        {
            return new SubmissionResult(null, false, invalid);
        }

        using (load.Enter())
        {
            return await submitter.SubmitAsync(accountId, submission!, "", span, cancellationToken, key);
        }
    }
}
