using ModelRoute.Server.Accounts;
using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Webhooks;

public sealed record WebhookEndpointView(
    string Id, string Object, string Url, IReadOnlyList<string> Events, bool Thin, string? Description, string Status,
    string? DisabledReason, string? FailingSince, string? Secret, string? PreviousSecretExpiresAt, string CreatedAt)
{
    public static WebhookEndpointView From(WebhookEndpoint e, string? secret = null) => new(
        e.Id, "webhook_endpoint", e.Url, e.Events, e.Thin, e.Description, e.Status, e.DisabledReason, ExecutionView.Timestamp(e.FailingSince), secret,
        ExecutionView.Timestamp(e.PreviousSecretExpiresAt), ExecutionView.Timestamp(e.CreatedAt));
}

/// <summary>One attempt of a delivery, with the start of what the receiver answered (docs/webhooks.md#response-excerpts).</summary>
public sealed record WebhookAttemptView(
    string Id, string AttemptedAt, int? StatusCode, long LatencyMs, string? Error, string? ResponseBody, bool ResponseBodyTruncated)
{
    public static WebhookAttemptView From(WebhookAttempt a) =>
        new(a.Id, ExecutionView.Timestamp(a.AttemptedAt), a.StatusCode, a.LatencyMs, a.Error, a.ResponseBody, a.ResponseBodyTruncated);
}

public sealed record WebhookDeliveryView(
    string Id, string Object, string EventId, string EventType, string? ExecutionId, string? EndpointId, string Url, string Status,
    int Attempts, string? NextAttemptAt, int? LastStatusCode, string? LastError, string CreatedAt, string? CompletedAt, IReadOnlyList<WebhookAttemptView> AttemptLog)
{
    public static WebhookDeliveryView From(WebhookDelivery d, IEnumerable<WebhookAttempt> attempts) => new(
        d.Id, "webhook_delivery", d.EventId, d.EventType, d.ExecutionId, d.EndpointId, d.Url, d.Status, d.Attempts,
        d.Status == DeliveryStatuses.Pending ? ExecutionView.Timestamp(d.NextAttemptAt) : null, d.LastStatusCode, d.LastError,
        ExecutionView.Timestamp(d.CreatedAt), ExecutionView.Timestamp(d.CompletedAt),
        [.. attempts.Select(WebhookAttemptView.From)]);
}

public sealed record CreateWebhookEndpointRequest(string Url, string[]? Events, bool? Thin, string? Description);

/// <summary>Webhook endpoints, their secrets and their deliveries (docs/webhooks.md).</summary>
public static class WebhookEndpoints
{
    public static void MapWebhookEndpoints(this RouteGroupBuilder v1)
    {
        var group = v1.MapGroup("").WithTags("Webhooks");
        group.MapGet("/webhooks/default-secret", async (HttpContext context, IWebhookStore store, CancellationToken ct) =>
            await store.GetDefaultSecretAsync(context.User.AccountId(), ct) is { } secret
                ? Results.Ok(new { @object = "webhook_secret", secret })
                : Problem.NotFound("The account").ToResult())
            .WithName("getDefaultWebhookSecret").WithSummary("Get the account's default webhook signing secret").Produces<Http.OpenApi.WebhookSecretView>(200).ProducesProblem(404)
            .WithDescription("The secret that signs webhooks sent to a submission's webhook_url (an endpoint has its own): `{\"object\":\"webhook_secret\",\"secret\":\"whsec_…\"}`.");
        group.MapPost("/webhook-endpoints", CreateAsync)
            .WithName("createWebhookEndpoint").WithSummary("Register a webhook endpoint")
            .WithDescription("A URL that receives the account's execution events (all, or those listed), signed with a secret of its own shown in the answer.")
            .ProducesProblem(400).ProducesProblem(422).Accepts<CreateWebhookEndpointRequest>("application/json").Produces<WebhookEndpointView>(201);
        group.MapGet("/webhook-endpoints", ListAsync)
            .WithName("listWebhookEndpoints").WithSummary("List webhook endpoints")
            .WithDescription("The account's webhook endpoints, newest first, a page at a time.").Produces<ListView<WebhookEndpointView>>(200);
        group.MapGet("/webhook-endpoints/{id}", async (string id, HttpContext context, IWebhookStore store, CancellationToken ct) =>
            await store.GetEndpointAsync(context.User.AccountId(), id, ct) is { } endpoint
                ? Results.Ok(WebhookEndpointView.From(endpoint))
                : Problem.NotFound("The webhook endpoint").ToResult())
            .WithName("getWebhookEndpoint").WithSummary("Get a webhook endpoint").Produces<WebhookEndpointView>(200).ProducesProblem(404)
            .WithDescription("One webhook endpoint with its state (enabled, or disabled after repeated failures).");
        group.MapDelete("/webhook-endpoints/{id}", async (string id, HttpContext context, IWebhookStore store, TimeProvider time, CancellationToken ct) =>
            await store.DeleteEndpointAsync(context.User.AccountId(), id, time.GetUtcNow(), ct)
                ? Results.Ok(new { id, @object = "webhook_endpoint", deleted = true })
                : Problem.NotFound("The webhook endpoint").ToResult())
            .WithName("deleteWebhookEndpoint").WithSummary("Delete a webhook endpoint").Produces<Http.OpenApi.DeletedView>(200).ProducesProblem(404)
            .WithDescription("Stops deliveries to the endpoint: `{\"id\":…,\"object\":\"webhook_endpoint\",\"deleted\":true}`.");
        group.MapPost("/webhook-endpoints/{id}/rotate-secret", RotateAsync).Produces<WebhookEndpointView>(200).ProducesProblem(404)
            .WithName("rotateWebhookEndpointSecret").WithSummary("Rotate a webhook endpoint's signing secret")
            .WithDescription("A new secret signs from now on; the answer shows it once.");
        group.MapPost("/webhook-endpoints/{id}/enable", async (string id, HttpContext context, IWebhookStore store, CancellationToken ct) =>
            await store.EnableEndpointAsync(context.User.AccountId(), id, ct) is { } endpoint
                ? Results.Ok(WebhookEndpointView.From(endpoint))
                : Problem.NotFound("The webhook endpoint").ToResult()).Produces<WebhookEndpointView>(200).ProducesProblem(404)
            .WithName("enableWebhookEndpoint").WithSummary("Enable a webhook endpoint again")
            .WithDescription("Re-enables an endpoint that was disabled after repeated failed deliveries.");
        group.MapGet("/webhook-deliveries/{id}", async (string id, HttpContext context, IWebhookStore store, CancellationToken ct) =>
            await store.GetDeliveryAsync(context.User.AccountId(), id, ct) is { } delivery
                ? Results.Ok(WebhookDeliveryView.From(delivery, await store.ListAttemptsAsync([delivery.Id], ct)))
                : Problem.NotFound("The webhook delivery").ToResult()).Produces<WebhookDeliveryView>(200).ProducesProblem(404)
            .WithName("getWebhookDelivery").WithSummary("Get a webhook delivery with its attempts")
            .WithDescription("One delivery: its event, its state and each attempt with the receiver's status and latency.");
        group.MapGet("/webhook-endpoints/{id}/deliveries", ListEndpointDeliveriesAsync).Produces<ListView<WebhookDeliveryView>>(200).ProducesProblem(404)
            .WithName("listWebhookEndpointDeliveries").WithSummary("List a webhook endpoint's deliveries")
            .WithDescription("The deliveries made to one endpoint, newest first, a page at a time.");
        group.MapGet("/executions/{id}/webhook-deliveries", ListExecutionDeliveriesAsync).Produces<ListView<WebhookDeliveryView>>(200).ProducesProblem(404)
            .WithName("listExecutionWebhookDeliveries").WithSummary("List the webhook deliveries of an execution")
            .WithDescription("Every delivery of this execution's events, to its webhook_url and to the account's endpoints.");
        group.MapPost("/webhook-deliveries/{id}/redeliver", RedeliverAsync).Produces<WebhookDeliveryView>(202).ProducesProblem(404)
            .WithName("redeliverWebhookDelivery").WithSummary("Send a webhook delivery again")
            .WithDescription("Queues the same event for another delivery, signed anew (202 with the delivery).");
        group.MapPost("/webhook-endpoints/{id}/test", SendTestAsync)
            .WithName("sendWebhookTest")
            .WithSummary("Send the endpoint a signed webhook.test event now, as a delivery listed with its others")
            .WithDescription("For checking a receiver: a webhook.test event signed like the others, delivered now (202 with the delivery); a disabled endpoint is 409.")
            .Produces<WebhookDeliveryView>(202).ProducesProblem(404).ProducesProblem(409);
    }

    private static async Task<IResult> CreateAsync(
        HttpContext context, IWebhookStore store, WebhookUrlPolicy policy, IdGenerator ids, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken ct)
    {
        var (document, problem) = await JsonObjectBody.ReadAsync(
            context.Request, options.Value.Limits.MaxRequestBytes, "Send {\"url\": \"https://…\", \"events\": [\"execution.completed\", …]}.",
            static name => name is "url" or "events" or "thin" or "description", "Unknown field; send url, events, thin and description.", ct);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        using (document)
        {
            var root = document!.RootElement;
            if (!root.TryGetProperty("url", out var urlElement) || urlElement.ValueKind != JsonValueKind.String
                || SubmissionParser.ParseWebhookUrl(urlElement.GetString()!) is not { } url)
            {
                return Problem.Validation("url", "'url' must be an absolute http or https URL of at most 2048 characters.").ToResult();
            }

            if (await policy.RefusalAsync(url, ct) is { } refusal)
            {
                return new Problem(422, ErrorCodes.WebhookUrlNotAllowed, refusal, "url").ToResult();
            }

            var (events, thin, description, refused) = ReadSettings(root);
            if (refused is not null)
            {
                return refused.ToResult();
            }

            var secret = WebhookSigner.NewSecret();
            var endpoint = new WebhookEndpoint(ids.New("we"), context.User.AccountId(), url.AbsoluteUri, events!, thin, description, "enabled", null, null, null, time.GetUtcNow());
            await store.CreateEndpointAsync(endpoint, secret, ct);
            return TypedResults.Created($"/v1/webhook-endpoints/{endpoint.Id}", WebhookEndpointView.From(endpoint, secret));
        }
    }

    /// <summary>A new endpoint's events (the default set when not given), thin flag and description; or the problem with one.</summary>
    private static (IReadOnlyList<string>? Events, bool Thin, string? Description, Problem? Problem) ReadSettings(JsonElement root)
    {
        IReadOnlyList<string> events = WebhookEventTypes.Default;
        if (root.TryGetProperty("events", out var eventsElement) && eventsElement.ValueKind != JsonValueKind.Null)
        {
            if (eventsElement.ValueKind != JsonValueKind.Array || eventsElement.GetArrayLength() == 0
                || eventsElement.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || !WebhookEventTypes.All.Contains(e.GetString()!)))
            {
                return (null, false, null, Problem.Validation("events", $"'events' must be a non-empty array of: {string.Join(", ", WebhookEventTypes.All.Order(StringComparer.Ordinal))}."));
            }

            events = [.. eventsElement.EnumerateArray().Select(e => e.GetString()!).Distinct(StringComparer.Ordinal)];
        }

        var thin = false;
        if (root.TryGetProperty("thin", out var thinElement) && thinElement.ValueKind != JsonValueKind.Null)
        {
            if (thinElement.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                return (null, false, null, Problem.Validation("thin", "'thin' must be true or false."));
            }

            thin = thinElement.GetBoolean();
        }

        string? description = null;
        if (root.TryGetProperty("description", out var descriptionElement) && descriptionElement.ValueKind != JsonValueKind.Null)
        {
            if (descriptionElement.ValueKind != JsonValueKind.String || descriptionElement.GetString() is not { Length: <= 500 } d || SubmissionParser.HasHostileCharacters(d))
            {
                return (null, false, null, Problem.Validation("description", "'description' must be at most 500 printable characters."));
            }

            description = d;
        }

        return (events, thin, description, null);
    }

    private static Task<IResult> ListAsync(HttpContext context, IWebhookStore store, string? limit, string? cursor, CancellationToken ct) =>
        Paging.ListAsync(
            limit, cursor, "we", (before, take) => store.ListEndpointsAsync(context.User.AccountId(), before, take, ct), e => e.Id, e => WebhookEndpointView.From(e));

    private static async Task<IResult> RotateAsync(string id, HttpContext context, IWebhookStore store, TimeProvider time, IOptions<ModelRouteOptions> options, CancellationToken ct)
    {
        var secret = WebhookSigner.NewSecret();
        var rotated = await store.RotateSecretAsync(context.User.AccountId(), id, secret, time.GetUtcNow() + options.Value.Webhooks.RotationOverlap, ct);
        return rotated is null ? Problem.NotFound("The webhook endpoint").ToResult() : TypedResults.Ok(WebhookEndpointView.From(rotated, secret));
    }

    private static async Task<IResult> ListEndpointDeliveriesAsync(string id, HttpContext context, IWebhookStore store, string? limit, string? cursor, CancellationToken ct)
    {
        if (await store.GetEndpointAsync(context.User.AccountId(), id, ct) is null)
        {
            return Problem.NotFound("The webhook endpoint").ToResult();
        }

        return await ListDeliveriesAsync(context.User.AccountId(), id, null, store, limit, cursor, ct);
    }

    private static async Task<IResult> ListExecutionDeliveriesAsync(string id, HttpContext context, IWebhookStore store, IExecutionStore executions, string? limit, string? cursor, CancellationToken ct)
    {
        if (await executions.GetAsync(id, context.User.AccountId(), ct) is null)
        {
            return Problem.NotFound("The execution").ToResult();
        }

        return await ListDeliveriesAsync(context.User.AccountId(), null, id, store, limit, cursor, ct);
    }

    private static async Task<IResult> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, IWebhookStore store, string? limit, string? cursor, CancellationToken ct)
    {
        var (take, problem) = Paging.Parse(limit, cursor, "whd");
        if (problem is not null)
        {
            return problem.ToResult();
        }

        var rows = await store.ListDeliveriesAsync(accountId, endpointId, executionId, Paging.Decode(cursor), take + 1, ct);
        var attempts = (await store.ListAttemptsAsync([.. rows.Take(take).Select(r => r.Id)], ct)).ToLookup(a => a.DeliveryId);
        return TypedResults.Ok(Paging.Page(rows, take, d => d.Id, d => WebhookDeliveryView.From(d, attempts[d.Id])));
    }

    /// <summary>
    /// A <c>webhook.test</c> event written as a delivery due now and the delivery workers woken: it is sent, signed and
    /// recorded as every delivery is, within moments (docs/api.md#webhooks). A disabled endpoint takes none: 409.
    /// </summary>
    private static async Task<IResult> SendTestAsync(string id, HttpContext context, IWebhookStore store, IdGenerator ids, ExecutionChanges changes, TimeProvider time, CancellationToken ct)
    {
        var accountId = context.User.AccountId();
        var endpoint = await store.GetEndpointAsync(accountId, id, ct);
        if (endpoint is null)
        {
            return Problem.NotFound("The webhook endpoint").ToResult();
        }

        if (endpoint.Status != "enabled")
        {
            return new Problem(409, ErrorCodes.InvalidState, "The webhook endpoint is disabled; enable it first.").ToResult();
        }

        var now = time.GetUtcNow();
        var eventId = ids.New("evt");
        var delivery = await store.CreateTestDeliveryAsync(accountId, id, ids.New("whd"), eventId, WebhookPayloads.Test(eventId, now, id), now, ct);
        if (delivery is null)
        {
            return Problem.NotFound("The webhook endpoint").ToResult(); // Deleted meanwhile.
        }

        changes.SignalWebhooks();
        return TypedResults.Accepted($"/v1/webhook-deliveries/{delivery.Id}", WebhookDeliveryView.From(delivery, []));
    }

    private static async Task<IResult> RedeliverAsync(string id, HttpContext context, IWebhookStore store, IdGenerator ids, ExecutionChanges changes, TimeProvider time, CancellationToken ct)
    {
        var delivery = await store.RedeliverAsync(context.User.AccountId(), id, ids.New("whd"), time.GetUtcNow(), ct);
        if (delivery is null)
        {
            return Problem.NotFound("The webhook delivery").ToResult();
        }

        changes.SignalWebhooks();
        return TypedResults.Accepted($"/v1/webhook-deliveries/{delivery.Id}", WebhookDeliveryView.From(delivery, []));
    }
}
