using ModelRoute.Server.Http;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Providers;

public sealed record CallbackReceipt(bool Received, bool Changed, string Status);

/// <summary>
/// <c>POST /v1/provider-callbacks/{provider}/{execution_id}</c>: results from async providers,
/// accepted only with the attempt's secret token. A callback for an execution that already
/// ended is acknowledged and changes nothing (docs/architecture.md, One execution, end to end).
/// </summary>
public static class ProviderCallbackEndpoints
{
    public static void MapProviderCallbacks(this RouteGroupBuilder v1) =>
        v1.MapPost("/provider-callbacks/{provider}/{executionId}", ReceiveAsync)
            .WithTags("Provider callbacks")
            .WithName("receiveProviderCallback").WithSummary("Receive a provider's report of a job's end")
            .WithDescription("Called by asynchronous providers (Replicate, fal, the simulator), not by clients: accepted only with the attempt's secret token; a report on an ended execution changes nothing.")
            .AllowAnonymous()
            .Produces<CallbackReceipt>(200).ProducesProblem(401).ProducesProblem(404);

    private static async Task<IResult> ReceiveAsync(
        string provider,
        string executionId,
        string? token,
        HttpRequest request,
        IExecutionStore store,
        ProviderRegistry providers,
        ExecutionOutcomes outcomes,
        TimeProvider time,
        IOptions<ModelRouteOptions> options,
        CancellationToken cancellationToken)
    {
        var execution = await store.GetAsync(executionId, null, cancellationToken);
        if (execution is null || execution.Provider != provider)
        {
            return Problem.NotFound("The execution").ToResult();
        }

        if (!ProviderCallbacks.Matches(token, execution.CallbackTokenHash))
        {
            return new Problem(401, ErrorCodes.Unauthenticated, "The callback token is not valid for this execution.").ToResult();
        }

        if (execution.Status.IsTerminal())
        {
            return TypedResults.Ok(new CallbackReceipt(true, false, execution.Status.ToWire()));
        }

        var (document, problem, raw) = await JsonBody.ReadWithRawAsync(request, options.Value.Limits.MaxBatchRequestBytes, cancellationToken);
        using (document)
        {
            if (problem is not null)
            {
                return problem.ToResult();
            }

            if (providers.CallFor(execution) is not (_, { } call))
            {
                return Problem.NotFound("The execution's route").ToResult();
            }

            var adapter = providers.Find(provider)!.Adapter;
            var callback = new ProviderCallback(
                document!.RootElement,
                System.Text.Encoding.UTF8.GetString(raw.Span),
                request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString(), StringComparer.Ordinal));
            if (!await adapter.VerifyCallbackAsync(call, callback, cancellationToken))
            {
                return new Problem(401, ErrorCodes.Unauthenticated, "The callback's signature does not verify.").ToResult();
            }

            return await ApplyAsync(execution, adapter.ReadCallback(call, callback), store, outcomes, time, cancellationToken);
        }
    }

    /// <summary>A verified callback's outcome applied to the execution; progress news changes nothing.</summary>
    private static async Task<IResult> ApplyAsync(
        Execution execution, ProviderOutcome outcome, IExecutionStore store, ExecutionOutcomes outcomes, TimeProvider time, CancellationToken cancellationToken)
    {
        if (outcome is ProviderOutcome.Running)
        {
            return TypedResults.Ok(new CallbackReceipt(true, false, execution.Status.ToWire()));
        }

        var attempt = new AttemptRecord(
            execution.Attempts,
            execution.Provider!,
            execution.ProviderModel ?? "",
            "callback_" + ExecutionOutcomes.OutcomeName(outcome),
            time.GetUtcNow(),
            (long)(time.GetUtcNow() - execution.UpdatedAt).TotalMilliseconds,
            (outcome as ProviderOutcome.Failed)?.Error);
        var changed = await outcomes.ApplyAsync(
            execution, outcome, [ExecutionStatus.Processing, ExecutionStatus.AwaitingWebhook], attempt, null, cancellationToken);
        var status = changed?.Status ?? (await store.GetAsync(execution.Id, null, cancellationToken))?.Status ?? execution.Status;
        return TypedResults.Ok(new CallbackReceipt(true, changed is not null, status.ToWire()));
    }
}
