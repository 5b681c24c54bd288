using Microsoft.AspNetCore.Http.Json;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Http;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Server.Executions;

/// <summary>
/// The submission body's schema as the OpenAPI document shows it. The endpoints never bind it: they read the body's
/// raw JSON as a <see cref="SubmissionRequest"/> (no copies, no re-serialization) and check it with <see cref="SubmissionValidator"/>.
/// </summary>
public sealed record SubmitExecutionRequest(
    string Model,
    JsonElement Input,
    string IdempotencyKey,
    string? WebhookUrl,
    string[]? WebhookEvents,
    Dictionary<string, JsonElement>? Metadata,
    int? TimeoutSeconds,
    string? MaxCostUsd);

public sealed record BatchSubmitRequest(IReadOnlyList<SubmitExecutionRequest> Executions);

public sealed record BatchItemView(int Index, int Status, ExecutionView? Execution, Microsoft.AspNetCore.Mvc.ProblemDetails? Error);

public sealed record BatchView(string Object, IReadOnlyList<BatchItemView> Data);

public static class ExecutionEndpoints
{
    public const string PollingPolicy = "polling";

    public static void MapExecutionEndpoints(this RouteGroupBuilder v1)
    {
        var executions = v1.MapGroup("/executions").WithTags("Executions");
        executions.MapPost("/", SubmitAsync)
            .WithName("submitExecution").WithSummary("Submit an execution")
            .WithDescription("Queues a model execution and answers 202 with it (PENDING), holding its estimated cost from the balance. The same idempotency_key with the same body answers 200 with the first execution.")
            .Accepts<SubmitExecutionRequest>("application/json")
            .Produces<ExecutionView>(202).Produces<ExecutionView>(200).ProducesProblem(400).ProducesProblem(402).ProducesProblem(413).ProducesProblem(422);
        executions.MapPost("/batch", SubmitBatchAsync)
            .WithName("submitExecutionBatch").WithSummary("Submit several executions at once")
            .WithDescription("Each item is a submission, checked and stored on its own: the answer lists, per item, its status and its execution or its problem.")
            .Accepts<BatchSubmitRequest>("application/json")
            .Produces<BatchView>(200).ProducesProblem(400).ProducesProblem(413);
        executions.MapPost("/{id}/cancel", CancelAsync)
            .WithName("cancelExecution").WithSummary("Cancel an execution")
            .WithDescription("Cancels an execution that has not ended (202 with it, CANCELLED, its hold released); an ended one is 409 INVALID_STATE.")
            .Produces<ExecutionView>(202).ProducesProblem(404).ProducesProblem(409);

        var reads = executions.MapGroup(""); // every account GET is rate limited by the /v1 group's convention
        reads.MapGet("/", ListAsync)
            .WithName("listExecutions").WithSummary("List executions")
            .WithDescription("The account's executions, newest first, a page at a time (has_more and next_cursor); filtered by status, model, created_after and created_before, found by idempotency_key or up to 3 metadata[key]=value (exact string matches).")
            .Produces<ListView<ExecutionView>>(200).ProducesProblem(400);
        reads.MapGet("/{id}", GetAsync)
            .WithName("getExecution").WithSummary("Get an execution, optionally waiting for it to end")
            .WithDescription("The execution as it is now; with ?wait=N (seconds, up to Limits:MaxWait) the answer waits until it ends or N seconds pass.")
            .Produces<ExecutionView>(200).ProducesProblem(404).ProducesProblem(429);
        reads.MapGet("/{id}/events", StreamEventsAsync)
            .WithName("streamExecutionEvents").WithSummary("Stream an execution's status changes as server-sent events")
            .WithDescription("One event per status change of this execution, from its first, until it ends; the last carries the whole execution.")
            .Produces(200, contentType: "text/event-stream").ProducesProblem(404);
        reads.MapGet("/{id}/artifacts/{name}", GetArtifactAsync)
            .WithName("getExecutionArtifact").WithSummary("Download an output file of an execution")
            .WithDescription("The file the gateway copied from the provider, with its recorded content type; other accounts get 404; with Artifacts:RedirectToPresigned an artifact in S3 answers 302 to a short-lived presigned URL.")
            .Produces(200, contentType: "application/octet-stream").Produces(302).ProducesProblem(404);
        v1.MapEventFeed();
    }

    private static async Task<IResult> SubmitAsync(HttpContext context, SingleSubmission submissions, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var (document, unreadable) = await JsonBody.ReadAsync(context.Request, options.Value.Limits.MaxRequestBytes, cancellationToken);
        using (document)
        {
            if (unreadable is not null)
            {
                return unreadable.ToResult();
            }

            var result = await submissions.SubmitAsync(
                document!.RootElement, context.User.AccountId(), context.User.SubmittingKey(), SubmissionSpan.Request, cancellationToken);
            if (result.Problem is not null)
            {
                return result.Problem.ToResult();
            }

            var view = ExecutionView.From(result.Execution!);
            if (result.Replayed)
            {
                context.Response.Headers["Idempotent-Replayed"] = "true";
                return TypedResults.Ok(view);
            }

            return TypedResults.Accepted($"/v1/executions/{view.Id}", view);
        }
    }

    private static async Task<IResult> SubmitBatchAsync(HttpContext context, BatchSubmission batches, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var (document, unreadable) = await JsonBody.ReadAsync(context.Request, options.Value.Limits.MaxBatchRequestBytes, cancellationToken);
        using (document)
        {
            if (unreadable is not null)
            {
                return unreadable.ToResult();
            }

            var (batch, refused) = await batches.SubmitAsync(document!.RootElement, context.User.AccountId(), context.User.SubmittingKey(), cancellationToken);
            return refused is not null ? refused.ToResult() : TypedResults.Ok(batch);
        }
    }

    private static async Task<IResult> GetAsync(
        string id, string? wait, HttpContext context, IExecutionStore store, ExecutionChanges changes, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken cancellationToken)
    {
        var maxWait = (int)options.Value.Limits.MaxWait.TotalSeconds;
        var waitSeconds = 0;
        if (wait is not null && (!int.TryParse(wait, NumberStyles.None, CultureInfo.InvariantCulture, out waitSeconds) || waitSeconds > maxWait))
        {
            return Problem.Validation("wait", $"'wait' must be a whole number of seconds from 0 to {maxWait}.").ToResult();
        }

        var accountId = context.User.AccountId();
        var deadline = time.GetUtcNow().AddSeconds(waitSeconds);
        while (true)
        {
            var changed = changes.WhenChanged(id);
            var execution = await store.GetAsync(id, accountId, cancellationToken);
            if (execution is null)
            {
                return Problem.NotFound("The execution").ToResult();
            }

            var remaining = deadline - time.GetUtcNow();
            if (execution.Status.IsTerminal() || remaining <= TimeSpan.Zero)
            {
                return TypedResults.Ok(ExecutionView.From(execution));
            }

            // Re-read at least every second: the change may be made by another node.
            await WaitQuietlyAsync(changed, remaining < TimeSpan.FromSeconds(1) ? remaining : TimeSpan.FromSeconds(1), time, cancellationToken);
        }
    }

    private static async Task<IResult> ListAsync(
        HttpContext context,
        IExecutionStore store,
        TimeProvider time,
        string? status,
        string? model,
        string? created_after,
        string? created_before,
        string? idempotency_key,
        string? limit,
        string? cursor,
        CancellationToken cancellationToken)
    {
        var (query, size, problem) = ExecutionListQuery.ParsePage(context.Request.Query, status, model, created_after, created_before, idempotency_key, limit, cursor);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        var started = time.GetTimestamp();
        var rows = await store.ListAsync(context.User.AccountId(), query!, cancellationToken);

        // The store's time, for anyone timing the list from outside (docs/api.md#list-executions).
        context.Response.Headers["Server-Timing"] = FormattableString.Invariant($"store;dur={time.GetElapsedTime(started).TotalMilliseconds:0.0}");
        return TypedResults.Ok(Paging.Page(rows, size, e => e.Id, ExecutionView.From));
    }

    private static async Task<IResult> CancelAsync(string id, HttpContext context, ExecutionCancellation cancellation, CancellationToken cancellationToken)
    {
        var (cancelled, problem) = await cancellation.CancelAsync(id, context.User.AccountId(), cancellationToken);
        return problem is not null ? problem.ToResult() : TypedResults.Accepted($"/v1/executions/{id}", ExecutionView.From(cancelled!));
    }

    private static async Task StreamEventsAsync(
        string id, HttpContext context, IExecutionStore store, ExecutionChanges changes, TimeProvider time, IOptions<JsonOptions> json, StoreAvailability availability, CancellationToken cancellationToken)
    {
        var accountId = context.User.AccountId();
        if (await store.GetAsync(id, accountId, cancellationToken) is null)
        {
            await Problem.NotFound("The execution").WriteAsync(context);
            return;
        }

        var response = context.Response;
        response.Headers.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        long after = long.TryParse(context.Request.Headers["Last-Event-ID"], NumberStyles.None, CultureInfo.InvariantCulture, out var last) ? last : 0;
        var options = json.Value.SerializerOptions;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var changed = changes.WhenChanged(id);
                foreach (var e in await store.ListEventsAsync(id, after, cancellationToken))
                {
                    after = e.Sequence;
                    object data = new { id = e.ExecutionId, @object = "execution", status = e.Status.ToWire() };
                    if (e.Status.IsTerminal() && await store.GetAsync(id, accountId, cancellationToken) is { } final)
                    {
                        data = ExecutionView.From(final);
                    }

                    var payload = JsonSerializer.Serialize(new { id = e.Id, type = e.Type, created_at = ExecutionView.Timestamp(e.CreatedAt), data }, options);
                    await response.WriteAsync($"id: {e.Sequence}\nevent: {e.Type}\ndata: {payload}\n\n", cancellationToken);
                    if (e.Status.IsTerminal())
                    {
                        await response.Body.FlushAsync(cancellationToken);
                        return;
                    }
                }

                await response.Body.FlushAsync(cancellationToken);
                if (!await WaitQuietlyAsync(changed, TimeSpan.FromSeconds(15), time, cancellationToken))
                {
                    await response.WriteAsync(": keep-alive\n\n", cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception ex) when (availability.Report(ex))
        {
            // The store went away mid-stream: the stream ends (its status is sent already) and the client reconnects
            // with Last-Event-ID; the outage is logged once, by StoreAvailability.
        }
    }

    private static async Task<IResult> GetArtifactAsync(string id, string name, HttpContext context, IExecutionStore store, IArtifactStore artifacts, CancellationToken cancellationToken)
    {
        var execution = await store.GetAsync(id, context.User.AccountId(), cancellationToken);
        var artifact = execution?.Artifacts.FirstOrDefault(a => a.Name == name);
        if (artifact is null || await artifacts.OpenAsync(id, artifact, cancellationToken) is not { } download)
        {
            return Problem.NotFound("The artifact").ToResult();
        }

        // Artifacts:RedirectToPresigned sends the client to the bucket itself (docs/artifacts.md#downloads).
        return download.Redirect is { } presigned
            ? TypedResults.Redirect(presigned.AbsoluteUri)
            : TypedResults.Stream(download.Content!, artifact.ContentType, fileDownloadName: null, enableRangeProcessing: download.Content!.CanSeek);
    }

    /// <summary>Waits for <paramref name="changed"/> up to <paramref name="timeout"/>; true if it changed.</summary>
    private static async Task<bool> WaitQuietlyAsync(Task changed, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            await changed.WaitAsync(timeout, time, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }
}
