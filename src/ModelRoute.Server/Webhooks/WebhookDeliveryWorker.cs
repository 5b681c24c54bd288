using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Options;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// Sends due deliveries from the outbox, signed the Standard Webhooks way, under a lease so that a
/// crashed node's deliveries are taken over. Success is a 2xx within the timeout; anything else is
/// retried on the schedule, and a 410 Gone disables the endpoint (SPEC §7).
/// </summary>
public sealed partial class WebhookDeliveryWorker(
    IWebhookStore store,
    ExecutionChanges changes,
    WebhookHandoff handoff,
    IHttpClientFactory httpClients,
    NodeIdentity node,
    IOptions<ModelRouteOptions> options,
    TimeProvider time,
    ILogger<WebhookDeliveryWorker> logger,
    StoreAvailability? availability = null) : BackgroundService
{
    public const string HttpClientName = "webhooks";
    private static readonly TimeSpan MaxRetryAfter = TimeSpan.FromDays(1);

    // An account's default secret never changes once set, so a delivery to a submission's
    // webhook_url needs no read after the first; endpoint secrets rotate and are read each time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<string>> _accountSecrets = new(StringComparer.Ordinal);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var webhooks = options.Value.Webhooks;
        var dispatch = options.Value.Dispatch;
        using var slots = new SemaphoreSlim(webhooks.MaxInFlight, webhooks.MaxInFlight);
        var handedOver = SendHandedOverAsync(slots, stoppingToken);
        var backoff = new FailureBackoff(dispatch.PollInterval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await slots.WaitAsync(stoppingToken);
                slots.Release();
                var now = time.GetUtcNow();
                // The lease outlives the request timeout, so a live worker never loses a delivery mid-send.
                var claimed = await store.ClaimDueAsync(node.Id, Math.Min(slots.CurrentCount, 64), now, now + webhooks.Timeout + dispatch.LeaseDuration, stoppingToken);
                backoff.Succeeded();
                foreach (var delivery in claimed)
                {
                    await slots.WaitAsync(stoppingToken);
                    _ = DeliverGuardedAsync(delivery, slots, stoppingToken);
                }

                if (claimed.Count == 0)
                {
                    await changes.WaitForWebhooksAsync(dispatch.PollInterval, time, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // A store outage is logged once, by StoreAvailability, not at every try.
                if (availability?.Report(ex) != true)
                {
                    LogLoopFailed(logger, ex);
                }

                await Task.Delay(backoff.Failed(), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }

        await handedOver;
    }

    /// <summary>Sends the deliveries this node's own commits leased to it, without claiming them first.</summary>
    private async Task SendHandedOverAsync(SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var delivery in handoff.Reader.ReadAllAsync(stoppingToken))
            {
                await slots.WaitAsync(stoppingToken);
                handoff.Taken();
                _ = DeliverGuardedAsync(delivery, slots, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: what was handed over and not sent is leased, and is claimed again once the lease runs out.
        }
    }

    private async Task DeliverGuardedAsync(WebhookDelivery delivery, SemaphoreSlim slots, CancellationToken stoppingToken)
    {
        await Task.Yield();
        try
        {
            await DeliverAsync(delivery, stoppingToken);
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            if (availability?.Report(ex) != true)
            {
                LogDeliveryFailed(logger, delivery.Id, ex);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping: the lease runs out and the delivery is sent again, at least once.
        }
        finally
        {
            slots.Release();
        }
    }

    public async Task DeliverAsync(WebhookDelivery delivery, CancellationToken cancellationToken)
    {
        var webhooks = options.Value.Webhooks;
        var attemptedAt = time.GetUtcNow();
        var secrets = delivery.EndpointId is null && _accountSecrets.TryGetValue(delivery.AccountId, out var known)
            ? known
            : await store.SigningSecretsAsync(delivery, attemptedAt, cancellationToken);
        if (delivery.EndpointId is null && secrets is not null && _accountSecrets.Count < 100_000)
        {
            _accountSecrets.TryAdd(delivery.AccountId, secrets);
        }

        if (secrets is null)
        {
            await store.RecordAttemptAsync(
                new AttemptResult(delivery.Id, node.Id, attemptedAt, null, 0, "The endpoint was deleted or disabled.", false, null, null),
                cancellationToken);
            return;
        }

        var timestamp = attemptedAt.ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, delivery.Url)
        {
            Content = new StringContent(delivery.Payload, Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("webhook-id", delivery.EventId);
        request.Headers.Add("webhook-timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("webhook-signature", WebhookSigner.Header(secrets, delivery.EventId, timestamp, delivery.Payload));
        request.Headers.UserAgent.ParseAdd("ModelRoute-Webhooks/1.0");

        int? statusCode = null;
        string? error = null;
        TimeSpan? retryAfter = null;
        var stopwatch = Stopwatch.StartNew();
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(webhooks.Timeout);
            try
            {
                using var client = httpClients.CreateClient(HttpClientName);
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                statusCode = (int)response.StatusCode;
                retryAfter = RetryAfter(response, attemptedAt);
                if (statusCode is < 200 or >= 300)
                {
                    error = statusCode is >= 300 and < 400 ? "Redirects are not followed." : $"The receiver answered {statusCode}.";
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                error = $"No answer within {webhooks.Timeout.TotalSeconds:0.#} s.";
            }
            catch (HttpRequestException ex)
            {
                error = ex.InnerException is WebhookAddressRefusedException refused ? refused.Message : $"Could not connect ({ex.HttpRequestError}).";
            }
        }

        var succeeded = error is null;
        var attemptNumber = delivery.Attempts + 1;
        var schedule = webhooks.Schedule;
        DateTimeOffset? next = null;
        string? disable = null;
        if (statusCode == 410)
        {
            disable = delivery.EndpointId is null ? null : "The receiver answered 410 Gone.";
        }
        else if (!succeeded && attemptNumber < schedule.Count)
        {
            var delay = Jitter(schedule[attemptNumber]);
            if (retryAfter is { } after && after > delay)
            {
                delay = after < MaxRetryAfter ? after : MaxRetryAfter;
            }

            next = attemptedAt + delay;
        }

        if (!succeeded && disable is null && delivery.EndpointId is not null && await FailingTooLongAsync(delivery, attemptedAt, cancellationToken))
        {
            disable = webhooks.DisableAfter >= TimeSpan.FromDays(1)
                ? $"Every delivery has failed for {webhooks.DisableAfter.TotalDays:0.#} days."
                : $"Every delivery has failed for {webhooks.DisableAfter.TotalSeconds:0.#} seconds.";
            next = null;
        }

        await store.RecordAttemptAsync(
            new AttemptResult(delivery.Id, node.Id, attemptedAt, statusCode, stopwatch.ElapsedMilliseconds, error, succeeded, next, disable),
            cancellationToken);
        if (!succeeded)
        {
            // One line per failed attempt, no stack trace: a receiver that is down is the receiver's problem,
            // and the attempt (with its error) is kept on the delivery for the account to see.
            LogAttemptFailed(logger, delivery.Id, attemptNumber, error!, next?.ToString("O", CultureInfo.InvariantCulture) ?? "none");
        }
    }

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
    public static SocketsHttpHandler CreateHandler(WebhookUrlPolicy policy, IHostResolver resolver) => new()
    {
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
