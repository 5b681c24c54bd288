using ModelRoute.Server.Accounts;
using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// <c>GET /v1/events</c>: every status change of the account's executions as server-sent events, read from the stored
/// events by their sequence, so that a client resumes with <c>Last-Event-ID</c> or <c>?after=</c> and misses nothing
/// (docs/api.md#the-account-event-feed). It wakes on this node's commits and re-reads every second for other nodes'.
/// </summary>
public static class EventFeedEndpoints
{
    /// <summary>Events read per query; a longer backlog is read in several.</summary>
    internal const int PageSize = 500;

    private static readonly TimeSpan Recheck = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(15);

    /// <summary>The least time between two reads, so that a busy account's feed reads in batches rather than per commit.</summary>
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(100);

    public static void MapEventFeed(this RouteGroupBuilder v1) =>
        v1.MapGet("/events", StreamAsync)
            .WithTags("Executions")
            .WithName("streamAccountEvents")
            .WithSummary("Stream the status changes of all the account's executions as server-sent events; resumable with Last-Event-ID or ?after=")
            .WithDescription("Every status change of the account's executions, in order, as server-sent events; a client resumes with Last-Event-ID or ?after= and misses nothing.")
            .Produces(200, contentType: "text/event-stream")
            .ProducesProblem(400);

    private static async Task StreamAsync(
        HttpContext context, string? after, IExecutionStore store, ExecutionChanges changes, TimeProvider time, IOptions<ModelRouteOptions> options,
        StoreAvailability availability, CancellationToken cancellationToken)
    {
        var accountId = context.User.AccountId();
        var (start, problem) = StartingPoint(context.Request, after);
        if (problem is not null)
        {
            await problem.WriteAsync(context);
            return;
        }

        changes.AccountFeedOpened();
        try
        {
            var cursor = new FeedCursor(start ?? await store.LastAccountEventAsync(accountId, cancellationToken), time.GetUtcNow());
            var response = context.Response;
            response.Headers.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            await response.WriteAsync("retry: 1000\n\n", cancellationToken);
            await FeedAsync(response, accountId, cursor, store, changes, time, options.Value.Limits.EventFeedLifetime, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception ex) when (availability.Report(ex))
        {
            // The store went away: the stream ends and the client reconnects with Last-Event-ID (logged once, by StoreAvailability).
        }
        finally
        {
            changes.AccountFeedClosed();
        }
    }

    /// <summary>Where the feed starts: after the client's Last-Event-ID, else after <c>?after=</c>, else (null) after the newest event.</summary>
    private static (long? After, Problem? Problem) StartingPoint(HttpRequest request, string? after)
    {
        if (long.TryParse(request.Headers["Last-Event-ID"], NumberStyles.None, CultureInfo.InvariantCulture, out var last))
        {
            return (last, null);
        }

        if (after is null)
        {
            return (null, null);
        }

        return long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
            ? (sequence, null)
            : (null, Problem.Validation("after", "'after' must be an event id (a whole number, 0 for the oldest kept event)."));
    }

    /// <summary>Sends what is new until the lifetime ends: at each of this node's commits for the account, and at least every second.</summary>
    private static async Task FeedAsync(
        HttpResponse response, string accountId, FeedCursor cursor, IExecutionStore store, ExecutionChanges changes, TimeProvider time, TimeSpan lifetime,
        CancellationToken cancellationToken)
    {
        var ends = time.GetUtcNow() + lifetime;
        var lastWrite = time.GetUtcNow();
        while (true)
        {
            var changed = changes.WhenAccountChanged(accountId);
            if (await SendNewAsync(response, accountId, cursor, store, cancellationToken))
            {
                lastWrite = time.GetUtcNow();
            }
            else if (time.GetUtcNow() - lastWrite >= Heartbeat)
            {
                await response.WriteAsync(": keep-alive\n\n", cancellationToken);
                lastWrite = time.GetUtcNow();
            }

            await response.Body.FlushAsync(cancellationToken);
            var now = time.GetUtcNow();
            cursor.Advance(now);
            if (now >= ends)
            {
                return; // Bounded, so that a revoked key's feed ends too; the client reconnects with Last-Event-ID.
            }

            await Task.Delay(MinInterval, time, cancellationToken);
            await WaitQuietlyAsync(changed, Min(Recheck, ends - time.GetUtcNow()), time, cancellationToken);
        }
    }

    /// <summary>Reads the account's events from the cursor's floor and writes those not sent yet; true if it wrote any.</summary>
    private static async Task<bool> SendNewAsync(HttpResponse response, string accountId, FeedCursor cursor, IExecutionStore store, CancellationToken cancellationToken)
    {
        var wrote = false;
        var from = cursor.Floor;
        while (true)
        {
            var events = await store.ListAccountEventsAsync(accountId, from, PageSize, cancellationToken);
            foreach (var e in events)
            {
                if (cursor.Take(e.Sequence))
                {
                    var payload = JsonSerializer.Serialize(
                        new FeedEvent(e.Id, e.Type, e.CreatedAt, new FeedExecution(e.ExecutionId, "execution", e.Status.ToWire())), ApiJson.Options);
                    await response.WriteAsync($"id: {e.Sequence}\nevent: {e.Type}\ndata: {payload}\n\n", cancellationToken);
                    wrote = true;
                }
            }

            if (events.Count < PageSize)
            {
                return wrote;
            }

            from = events[^1].Sequence;
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static async Task WaitQuietlyAsync(Task changed, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return;
        }

        try
        {
            await changed.WaitAsync(timeout, time, cancellationToken);
        }
        catch (TimeoutException)
        {
            // Re-read anyway: the change may have been made on another node.
        }
    }

    private sealed record FeedEvent(string Id, string Type, DateTimeOffset CreatedAt, FeedExecution Data);

    private sealed record FeedExecution(string Id, string Object, string Status);
}

/// <summary>
/// Where an account feed is. Sequence numbers are taken when an event is written, but on PostgreSQL transactions commit
/// in any order, so an event with a lower number may become visible just after a higher one was sent. The feed therefore
/// reads again from a floor that trails what it sent by one to two <see cref="Settle"/> periods (and by at most
/// <see cref="MaxTrail"/> events, so that a long replay is not read again), and skips what it sent already. An event
/// that becomes visible later than that behind a higher one is missed; commits take milliseconds.
/// </summary>
internal sealed class FeedCursor(long after, DateTimeOffset now)
{
    internal static readonly TimeSpan Settle = TimeSpan.FromSeconds(2);

    internal const int MaxTrail = 10_000;

    private readonly HashSet<long> _sent = [];
    private readonly Queue<long> _order = new();
    private long _nextFloor = after;
    private DateTimeOffset _nextFloorAt = now + Settle;

    /// <summary>Events at or below it were sent, or are taken never to come.</summary>
    public long Floor { get; private set; } = after;

    /// <summary>The highest sequence sent.</summary>
    public long Last { get; private set; } = after;

    /// <summary>True when the event is to be sent: above the floor and not sent yet.</summary>
    public bool Take(long sequence)
    {
        if (sequence <= Floor || !_sent.Add(sequence))
        {
            return false;
        }

        _order.Enqueue(sequence);
        Last = Math.Max(Last, sequence);
        if (_order.Count > MaxTrail)
        {
            var oldest = _order.Dequeue();
            _sent.Remove(oldest);
            Floor = Math.Max(Floor, oldest);
        }

        return true;
    }

    /// <summary>Raises the floor to what was the last one sent a settle period ago, and forgets what lies below it.</summary>
    public void Advance(DateTimeOffset now)
    {
        if (now < _nextFloorAt)
        {
            return;
        }

        Floor = Math.Max(Floor, _nextFloor);
        while (_order.Count > 0 && _order.Peek() <= Floor)
        {
            _sent.Remove(_order.Dequeue());
        }

        _nextFloor = Last;
        _nextFloorAt = now + Settle;
    }
}
