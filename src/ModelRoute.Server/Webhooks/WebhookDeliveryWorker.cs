using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// Sends due deliveries from the outbox, signed the Standard Webhooks way, under a lease so that a
/// crashed node's deliveries are taken over. Success is a 2xx within the timeout; anything else is
/// retried on the schedule, and a 410 Gone disables the endpoint (docs/architecture.md). Claims, hand-overs and
/// shutdown follow the shared <see cref="LeasedWorkLoop{T}"/> (docs/architecture.md, "Workers"): on the way
/// out, deliveries in flight are finished and recorded, within the host's shutdown timeout.
/// </summary>
public sealed partial class WebhookDeliveryWorker(
    IWebhookStore store,
    ExecutionChanges changes,
    WebhookHandoff handoff,
    IHttpClientFactory httpClients,
    NodeIdentity node,
    GatewayMetrics metrics,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ILogger<WebhookDeliveryWorker> logger,
    StoreAvailability? availability = null) : BackgroundService, ILeasedWork<WebhookDelivery>
{
    public const string HttpClientName = "webhooks";
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromDays(1);

    // An account's default secret never changes once set, so a delivery to a submission's
    // webhook_url needs no read after the first; endpoint secrets rotate and are read each time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<string>> _accountSecrets = new(StringComparer.Ordinal);

    // Fires when the host's shutdown timeout runs out: deliveries still in flight then are dropped (their lease runs
    // out and they are sent again, at least once); until then they finish and record their attempt.
    private readonly CancellationTokenSource _abandon = new();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var loop = new LeasedWorkLoop<WebhookDelivery>(this, options.Value.Webhooks.MaxInFlight, options.Value.Dispatch.PollInterval, time, availability);
        var handedOver = loop.TakeHandedOverAsync(handoff.Reader, handoff.Taken, stoppingToken, _abandon.Token);
        await loop.ClaimUntilStoppedAsync(stoppingToken, _abandon.Token);
        await handedOver;
        await loop.WhenIdleAsync();
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        using (cancellationToken.Register(_abandon.Cancel))
        {
            await base.StopAsync(cancellationToken);
        }
    }

    public override void Dispose()
    {
        _abandon.Dispose();
        base.Dispose();
    }

    async Task<IReadOnlyList<WebhookDelivery>> ILeasedWork<WebhookDelivery>.ClaimAsync(int free, CancellationToken stoppingToken)
    {
        var webhooks = options.Value.Webhooks;
        var dispatch = options.Value.Dispatch;
        var now = time.GetUtcNow();
        // The lease outlives the request timeout, so a live worker never loses a delivery mid-send.
        var claimed = await store.ClaimDueAsync(node.Id, free, now, now + webhooks.Timeout + dispatch.LeaseDuration, stoppingToken);
        if (claimed.Count == 0)
        {
            await changes.WaitForWebhooksAsync(dispatch.PollInterval, time, stoppingToken);
        }

        return claimed;
    }

    Task ILeasedWork<WebhookDelivery>.RunAsync(WebhookDelivery delivery, bool handedOver, CancellationToken cancellationToken) => DeliverAsync(delivery, cancellationToken);

    void ILeasedWork<WebhookDelivery>.ClaimFailed(Exception exception) => LogLoopFailed(logger, exception);

    void ILeasedWork<WebhookDelivery>.RunFailed(WebhookDelivery delivery, Exception exception) => LogDeliveryFailed(logger, delivery.Id, exception);

    /// <summary>
    /// Sends one attempt of <paramref name="delivery"/> in its log scope and its <c>modelroute.webhook.delivery</c> span,
    /// parented on the trace context its execution was submitted with (docs/observability.md#traces).
    /// </summary>
    public async Task DeliverAsync(WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        using var scope = LogScopes.Delivery(logger, delivery.Id, delivery.ExecutionId, delivery.TraceParent);
        using var span = TraceContext.Start("modelroute.webhook.delivery", delivery.TraceParent, ActivityKind.Client);
        if (span is { IsAllDataRequested: true })
        {
            span.SetTag(TraceTags.DeliveryId, delivery.Id);
            span.SetTag(TraceTags.ExecutionId, delivery.ExecutionId);
            span.SetTag(TraceTags.EventType, delivery.EventType);
            span.SetTag(TraceTags.Attempt, delivery.Attempts + 1);
        }

        var (outcome, statusCode, elapsed) = await SendAndRecordAsync(delivery, cancellationToken);
        metrics.WebhookSent(outcome, elapsed);
        if (span is not null)
        {
            span.SetTag(TraceTags.Outcome, outcome);
            span.SetTag(TraceTags.HttpStatusCode, statusCode);
            if (outcome != DeliveryOutcomes.Succeeded)
            {
                TraceContext.Failed(span, outcome);
            }
        }
    }

    /// <summary>Sends the attempt and records it; what it came to (<see cref="DeliveryOutcomes"/>), the status code, and how long the send took.</summary>
    private async Task<(string Outcome, int? StatusCode, TimeSpan Elapsed)> SendAndRecordAsync(WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        var webhooks = options.Value.Webhooks;
        var attemptedAt = time.GetUtcNow();
        var secrets = await SigningSecretsAsync(delivery, attemptedAt, cancellationToken);
        if (secrets is null)
        {
            await store.RecordAttemptAsync(
                new AttemptResult(delivery.Id, node.Id, attemptedAt, null, 0, "The endpoint was deleted or disabled.", false, null, null),
                cancellationToken);
            return (DeliveryOutcomes.EndpointGone, null, TimeSpan.Zero);
        }

        var stopwatch = Stopwatch.StartNew();
        var (outcome, statusCode, error, retryAfter, excerpt) = await SendAsync(delivery, secrets, attemptedAt, cancellationToken);
        var elapsed = stopwatch.Elapsed;
        var succeeded = error is null;
        var (next, disable) = NextStep(delivery, statusCode, succeeded, retryAfter, attemptedAt);
        if (!succeeded && disable is null && delivery.EndpointId is not null && await FailingTooLongAsync(delivery, attemptedAt, cancellationToken))
        {
            (next, disable) = (null, FailingTooLongReason(webhooks.DisableAfter));
        }

        await store.RecordAttemptAsync(
            new AttemptResult(delivery.Id, node.Id, attemptedAt, statusCode, stopwatch.ElapsedMilliseconds, error, succeeded, next, disable)
            {
                ResponseBody = excerpt.Body,
                ResponseBodyTruncated = excerpt.Truncated,
            },
            cancellationToken);
        if (!succeeded)
        {
            // One line per failed attempt, no stack trace: a receiver that is down is the receiver's problem,
            // and the attempt (with its error) is kept on the delivery for the account to see.
            LogAttemptFailed(logger, delivery.Id, delivery.Attempts + 1, error!, next?.ToString("O", CultureInfo.InvariantCulture) ?? "none");
        }

        return (outcome, statusCode, elapsed);
    }

    /// <summary>The signed request sent within the timeout: what it came to, and the error kept on the attempt (null: it succeeded).
    /// The receiver's response body is kept as an excerpt (docs/webhooks.md#response-excerpts).</summary>
    private async Task<(string Outcome, int? StatusCode, string? Error, TimeSpan? RetryAfter, ResponseExcerpt Excerpt)> SendAsync(
        WebhookDelivery delivery, IReadOnlyList<string> secrets, DateTimeOffset attemptedAt, CancellationToken cancellationToken)
    {
        var webhooks = options.Value.Webhooks;
        using var request = SignedRequest(delivery, secrets, attemptedAt);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(webhooks.Timeout);
        try
        {
            using var client = httpClients.CreateClient(HttpClientName);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var statusCode = (int)response.StatusCode;
            var retryAfter = RetryAfter(response, attemptedAt);
            var succeeded = statusCode is >= 200 and < 300;
            var excerpt = await ResponseExcerpt.ReadAsync(response.Content, waitForBody: !succeeded, timeout.Token, cancellationToken);
            return succeeded
                ? (DeliveryOutcomes.Succeeded, statusCode, null, retryAfter, excerpt)
                : (DeliveryOutcomes.OfStatus(statusCode), statusCode,
                    statusCode is >= 300 and < 400 ? "Redirects are not followed." : $"The receiver answered {statusCode}.", retryAfter, excerpt);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return (DeliveryOutcomes.Timeout, null, $"No answer within {webhooks.Timeout.TotalSeconds:0.#} s.", null, ResponseExcerpt.None);
        }
        catch (HttpRequestException ex)
        {
            var refused = ex.InnerException as WebhookAddressRefusedException;
            return (refused is null ? DeliveryOutcomes.ConnectError : DeliveryOutcomes.Refused, null, refused?.Message ?? $"Could not connect ({ex.HttpRequestError}).", null, ResponseExcerpt.None);
        }
    }

    /// <summary>The secrets to sign with (null: the endpoint is gone); an account's default one is read once.</summary>
    private async ValueTask<IReadOnlyList<string>?> SigningSecretsAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (delivery.EndpointId is null && _accountSecrets.TryGetValue(delivery.AccountId, out var known))
        {
            return known;
        }

        var secrets = await store.SigningSecretsAsync(delivery, now, cancellationToken);
        if (delivery.EndpointId is null && secrets is not null && _accountSecrets.Count < 100_000)
        {
            _accountSecrets.TryAdd(delivery.AccountId, secrets);
        }

        return secrets;
    }

    private static HttpRequestMessage SignedRequest(WebhookDelivery delivery, IReadOnlyList<string> secrets, DateTimeOffset attemptedAt)
    {
        var timestamp = attemptedAt.ToUnixTimeSeconds();
        var request = new HttpRequestMessage(HttpMethod.Post, delivery.Url)
        {
            Content = new StringContent(delivery.Payload, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("webhook-id", delivery.EventId);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSigner.Header(secrets, delivery.EventId, timestamp, delivery.Payload));
        request.Headers.UserAgent.ParseAdd("ModelRoute-Webhooks/1.0");

        // The delivery span's when it is recorded, else the execution's (HttpClient adds none: see CreateHandler).
        TraceContext.Propagate(request.Headers, delivery.TraceParent);
        return request;
    }

    /// <summary>When to try again (null: not again) and why to disable the endpoint (null: keep it), by the answer alone.</summary>
    private (DateTimeOffset? Next, string? Disable) NextStep(WebhookDelivery delivery, int? statusCode, bool succeeded, TimeSpan? retryAfter, DateTimeOffset attemptedAt)
    {
        var schedule = options.Value.Webhooks.Schedule;
        var attemptNumber = delivery.Attempts + 1;
        if (statusCode == 410)
        {
            return (null, delivery.EndpointId is null ? null : "The receiver answered 410 Gone.");
        }

        if (succeeded || attemptNumber >= schedule.Count)
        {
            return (null, null);
        }

        var delay = Jitter(schedule[attemptNumber]);
        if (retryAfter is { } after && after > delay)
        {
            delay = after < MaxRetryAfter ? after : MaxRetryAfter;
        }

        return (attemptedAt + delay, null);
    }

    private static string FailingTooLongReason(TimeSpan disableAfter) => disableAfter >= TimeSpan.FromDays(1)
        ? $"Every delivery has failed for {disableAfter.TotalDays:0.#} days."
        : $"Every delivery has failed for {disableAfter.TotalSeconds:0.#} seconds.";

    private async Task<bool> FailingTooLongAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var endpoint = await store.GetEndpointAsync(delivery.AccountId, delivery.EndpointId!, cancellationToken);
        return endpoint?.FailingSince is { } since && now - since >= options.Value.Webhooks.DisableAfter;
    }

    /// <summary>±10 % so that retries from many events do not arrive in step.</summary>
    private static TimeSpan Jitter(TimeSpan delay) => delay * (0.9 + (Random.Shared.NextDouble() * 0.2));

    private static TimeSpan? RetryAfter(HttpResponseMessage response, DateTimeOffset now) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } when date > now => date - now,
        _ => null,
    };

    /// <summary>
    /// The handler behind the webhook client: no redirects, no proxy, and every connection checked
    /// against the URL policy at the moment of connecting (a DNS answer that changed is caught here).
    /// </summary>
    /// <remarks>
    /// No propagator, so HttpClient makes no span of its own for a send: the delivery span is already one client span
    /// per request, and its <c>traceparent</c> is set by <see cref="TraceContext.Propagate"/> (docs/observability.md#what-it-costs).
    /// HttpClient's request metrics are kept.
    /// </remarks>
    public static SocketsHttpHandler CreateHandler(WebhookUrlPolicy policy, IHostResolver resolver) => new()
    {
        ActivityHeadersPropagator = null,
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ConnectCallback = (context, cancellationToken) => GuardedConnection.ConnectAsync(
            context, resolver, policy.MayConnect,
            host => new WebhookAddressRefusedException($"Refused: '{host}' resolves to a loopback, private, link-local or metadata address."), cancellationToken),
    };

    [LoggerMessage(Level = LogLevel.Error, Message = "The webhook delivery loop failed; retrying")]
    private static partial void LogLoopFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook delivery {DeliveryId} attempt {Attempt} failed: {Error} Next attempt: {NextAttemptAt}")]
    private static partial void LogAttemptFailed(ILogger logger, string deliveryId, int attempt, string error, string nextAttemptAt);

    [LoggerMessage(Level = LogLevel.Error, Message = "Delivering {DeliveryId} failed; its lease will run out and it will be sent again")]
    private static partial void LogDeliveryFailed(ILogger logger, string deliveryId, Exception exception);
}

public sealed class WebhookAddressRefusedException(string message) : Exception(message);

/// <summary>What a webhook send came to, as the delivery metric and span name it (docs/observability.md#traces).</summary>
public static class DeliveryOutcomes
{
    public const string Succeeded = "succeeded";
    public const string Http4xx = "http_4xx";
    public const string Http5xx = "http_5xx";
    public const string Timeout = "timeout";
    public const string ConnectError = "connect_error";
    public const string Refused = "refused";
    public const string EndpointGone = "endpoint_gone";

    /// <summary>A non-2xx answer: 410 Gone is the receiver saying it is gone; a redirect (not followed) counts with the 4xx.</summary>
    public static string OfStatus(int statusCode) => statusCode switch
    {
        410 => EndpointGone,
        >= 500 => Http5xx,
        _ => Http4xx,
    };
}
