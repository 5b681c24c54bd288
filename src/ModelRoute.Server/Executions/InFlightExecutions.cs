using System.Collections.Concurrent;

namespace ModelRoute.Server.Executions;

/// <summary>
/// Provider calls running on this node, so a cancel or an expiry can stop them at once, and the dispatcher's one
/// renewal loop can keep their leases (<see cref="DueForRenewal"/>) without a timer per call.
/// </summary>
public sealed class InFlightExecutions
{
    private readonly ConcurrentDictionary<string, InFlightCall> _running = new(StringComparer.Ordinal);

    /// <summary>Notes a call whose lease was written at <paramref name="leaseWrittenAt"/> (its attempt's start).</summary>
    public InFlightCall Register(string executionId, CancellationTokenSource cancellation, DateTimeOffset leaseWrittenAt)
    {
        var call = new InFlightCall(executionId, cancellation, leaseWrittenAt);
        _running[executionId] = call;
        return call;
    }

    /// <summary>The call ended: its lease needs no more renewals. (A later call of the same execution stays.)</summary>
    public void Unregister(InFlightCall call) => _running.TryRemove(new KeyValuePair<string, InFlightCall>(call.ExecutionId, call));

    /// <summary>Whether a call of the execution runs on this node.</summary>
    public bool IsRunning(string executionId) => _running.ContainsKey(executionId);

    /// <summary>Stops the execution's call, if one runs here.</summary>
    public void Stop(string executionId)
    {
        if (_running.TryGetValue(executionId, out var call))
        {
            call.Stop();
        }
    }

    /// <summary>Stops <paramref name="call"/> if it still runs, and not a later call of the same execution.</summary>
    public void Stop(InFlightCall call)
    {
        if (_running.TryGetValue(call.ExecutionId, out var current) && ReferenceEquals(current, call))
        {
            call.Stop();
        }
    }

    /// <summary>The calls whose lease was last written at or before <paramref name="writtenBy"/>.</summary>
    public List<InFlightCall> DueForRenewal(DateTimeOffset writtenBy)
    {
        var due = new List<InFlightCall>();
        foreach (var (_, call) in _running)
        {
            if (call.LeaseWrittenAt <= writtenBy)
            {
                due.Add(call);
            }
        }

        return due;
    }
}

/// <summary>A provider call running on this node.</summary>
public sealed class InFlightCall(string executionId, CancellationTokenSource cancellation, DateTimeOffset leaseWrittenAt)
{
    public string ExecutionId { get; } = executionId;

    /// <summary>When its lease was last written (the attempt's start, then each renewal). Only the renewal loop sets it.</summary>
    public DateTimeOffset LeaseWrittenAt { get; set; } = leaseWrittenAt;

    internal void Stop()
    {
        try
        {
            cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // Finished meanwhile.
        }
    }
}
