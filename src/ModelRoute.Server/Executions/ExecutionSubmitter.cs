using ModelRoute.Server.Http;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

public sealed record SubmissionResult(Execution? Execution, bool Replayed, Problem? Problem);

/// <summary>Where a submission is recorded when a tracer records it (docs/observability.md#traces).</summary>
public enum SubmissionSpan
{
    /// <summary>A <c>modelroute.submit</c> span of its own, under the current activity: a batch's item, an MCP tool call.</summary>
    Own,

    /// <summary>
    /// The HTTP request's own span when a tracer records it (else a span of its own): only for a request whose one
    /// submission is all it does (<c>POST /v1/executions</c>), a span less per execution.
    /// </summary>
    Request,
}

/// <summary>Prices a validated submission, places its hold and stores it, all or nothing (docs/api.md#money, docs/api.md#idempotency).</summary>
public sealed class ExecutionSubmitter(IExecutionStore store, IdGenerator ids, Webhooks.WebhookUrlPolicy webhookUrls, Operations.GatewayMetrics metrics, TimeProvider time)
{
    /// <param name="span">Where the submission is recorded when traced: the request's span only when the caller says so.</param>
    /// <param name="key">The API key it is submitted with: the execution records it, and a key's spending limit binds it.</param>
    public async Task<SubmissionResult> SubmitAsync(
        string accountId, ParsedSubmission submission, string fieldPrefix, SubmissionSpan span, CancellationToken cancellationToken, SubmittingKey key = default)
    {
        // An existing key is answered by the store (replay or reuse) even if its URL would be refused now.
        if (submission.WebhookUrl is { } url && await webhookUrls.RefusalAsync(new Uri(url), cancellationToken) is { } refusal
            && await store.FindByIdempotencyKeyAsync(accountId, submission.IdempotencyKey, cancellationToken) is null)
        {
            return new(null, false, new Problem(422, ErrorCodes.WebhookUrlNotAllowed, refusal, fieldPrefix + "webhook_url"));
        }

        var hold = Money.HoldFor(submission.EstimatedMicros);
        var now = time.GetUtcNow();
        var started = time.GetTimestamp();

        // The execution's trace (docs/observability.md#traces): the submitter's when its request carried traceparent. A
        // request of one submission is recorded on its own span when a tracer records that (the caller says which);
        // a batch's items and MCP's tool calls each get a span.
        var request = span == SubmissionSpan.Request ? TraceContext.RecordedRequest() : null;
        using var own = request is null ? TraceContext.StartSubmit() : null;
        var recorded = request ?? own;
        var id = ids.New("exe");
        recorded?.SetTag(TraceTags.Model, submission.Model.Name);
        var outcome = await store.SubmitAsync(
            new NewExecution(
                id,
                accountId,
                submission.Model.Name,
                submission.IdempotencyKey,
                submission.RequestHash,
                submission.Input,
                submission.EstimatedMicros,
                hold,
                submission.Model.Price,
                submission.WebhookUrl,
                submission.WebhookEvents,
                submission.Metadata,
                submission.TimeoutSeconds,
                submission.MaxCostMicros,
                now,
                now.AddSeconds(submission.TimeoutSeconds),
                key.Id,
                key.SpendLimited,
                TraceContext.ForSubmission(recorded)),
            cancellationToken);

        var answer = outcome.Result switch { SubmitResult.Created => "created", SubmitResult.Replayed => "replayed", _ => "refused" };
        metrics.Submitted(submission.Model.Name, answer, time.GetElapsedTime(started), hold);
        recorded?.SetTag(TraceTags.ExecutionId, outcome.Execution?.Id);
        recorded?.SetTag(TraceTags.Outcome, answer);
        return Answer(outcome, hold, submission, fieldPrefix);
    }

    private static SubmissionResult Answer(SubmitOutcome outcome, long hold, ParsedSubmission submission, string fieldPrefix) =>
        outcome.Result switch
        {
            SubmitResult.Created => new(outcome.Execution, false, null),
            SubmitResult.Replayed => new(outcome.Execution, true, null),
            SubmitResult.KeyReused => new(null, false, new Problem(
                422,
                ErrorCodes.IdempotencyKeyReused,
                "This idempotency_key was already used for a different request.",
                fieldPrefix + "idempotency_key")),
            SubmitResult.CostCapExceeded => new(null, false, new Problem(
                422,
                ErrorCodes.CostCapExceeded,
                $"The hold for this execution would be {Money.Format(hold)} USD, above max_cost_usd {Money.Format(submission.MaxCostMicros ?? 0)}.",
                fieldPrefix + "max_cost_usd")),
            SubmitResult.KeySpendLimitExceeded => new(null, false, new Problem(
                402,
                ErrorCodes.KeySpendLimit,
                $"The hold of {Money.Format(hold)} USD for this execution would take this API key past its max_spend_usd (held plus spent).")),
            _ => new(null, false, new Problem(
                402,
                ErrorCodes.InsufficientBalance,
                $"The available balance does not cover the hold of {Money.Format(hold)} USD for this execution.")),
        };
}
