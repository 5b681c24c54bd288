using ModelRoute.Server.Http;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// Cancels an execution that has not ended, for <c>POST /v1/executions/{id}/cancel</c> and MCP's cancel_execution alike
/// (docs/api.md, docs/mcp.md#tools): its hold is released, its run here stopped and its provider asked to stop.
/// </summary>
public sealed class ExecutionCancellation(IExecutionStore store, InFlightExecutions inFlight, ProviderCancellation providerCancellation)
{
    /// <summary>The cancelled execution, or NOT_FOUND (another account's too) or 409 INVALID_STATE when it already ended.</summary>
    public async Task<(Execution? Cancelled, Problem? Problem)> CancelAsync(string id, string accountId, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await store.TransitionAsync(ExecutionTransition.Cancel(id, accountId), cancellationToken) is { } cancelled)
            {
                inFlight.Stop(id);
                providerCancellation.Request(cancelled);
                return (cancelled, null);
            }

            var current = await store.GetAsync(id, accountId, cancellationToken);
            if (current is null)
            {
                return (null, Problem.NotFound("The execution"));
            }

            if (current.Status.IsTerminal())
            {
                return (null, new Problem(409, ErrorCodes.InvalidState, $"The execution is already {current.Status.ToWire()} and cannot be cancelled."));
            }

            // It moved between our write and our read; try again against its new state.
        }
    }
}
