namespace ModelRoute.Server.Webhooks;

public static class WebhookEventTypes
{
    public const string Completed = "execution.completed";
    public const string Failed = "execution.failed";
    public const string Cancelled = "execution.cancelled";
    public const string Expired = "execution.expired";
    public const string Processing = "execution.processing";

    /// <summary>Sent on request to one endpoint only, never subscribed to (docs/api.md#webhooks).</summary>
    public const string Test = "webhook.test";

    /// <summary>What a webhook receives when it names no events: every ending.</summary>
    public static readonly IReadOnlyList<string> Default = [Completed, Failed, Cancelled, Expired];

    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal) { Completed, Failed, Cancelled, Expired, Processing };
}

public static class DeliveryStatuses
{
    public const string Pending = "pending";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
}

public sealed record WebhookEndpoint(
    string Id,
    string AccountId,
    string Url,
    IReadOnlyList<string> Events,
    bool Thin,
    string? Description,
    string Status,
    string? DisabledReason,
    DateTimeOffset? FailingSince,
    DateTimeOffset? PreviousSecretExpiresAt,
    DateTimeOffset CreatedAt);

public sealed record WebhookDelivery(
    string Id,
    string EventId,
    string AccountId,
    string? ExecutionId,
    string? EndpointId,
    string Url,
    string EventType,
    string Payload,
    string Status,
    int Attempts,
    DateTimeOffset NextAttemptAt,
    int? LastStatusCode,
    string? LastError,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    DateTimeOffset? CompletedAt,
    string? TraceParent = null);

public sealed record WebhookAttempt(
    string Id, string DeliveryId, DateTimeOffset AttemptedAt, int? StatusCode, long LatencyMs, string? Error, string? ResponseBody = null, bool ResponseBodyTruncated = false);

/// <summary>What one attempt came to, and what follows: success, another try at <see cref="NextAttemptAt"/>, or the end.</summary>
public sealed record AttemptResult(
    string DeliveryId,
    string Owner,
    DateTimeOffset AttemptedAt,
    int? StatusCode,
    long LatencyMs,
    string? Error,
    bool Succeeded,
    DateTimeOffset? NextAttemptAt,
    string? DisableEndpointReason)
{
    /// <summary>The start of the receiver's response body, as text (null: no answer, or an empty body).</summary>
    public string? ResponseBody { get; init; }

    /// <summary>Whether the body went on past <see cref="ResponseBody"/> (or did not end within the timeout).</summary>
    public bool ResponseBodyTruncated { get; init; }
}

/// <summary>Webhook endpoints, their secrets, and the delivery outbox with its attempts.</summary>
public interface IWebhookStore
{
    /// <summary>The account's default secret (for submissions' webhook_url), made on first use.</summary>
    Task<string?> GetDefaultSecretAsync(string accountId, CancellationToken cancellationToken);

    Task CreateEndpointAsync(WebhookEndpoint endpoint, string secret, CancellationToken cancellationToken);

    Task<WebhookEndpoint?> GetEndpointAsync(string accountId, string id, CancellationToken cancellationToken);

    /// <summary>Newest first; <paramref name="before"/> is the id to continue after.</summary>
    Task<IReadOnlyList<WebhookEndpoint>> ListEndpointsAsync(string accountId, string? before, int limit, CancellationToken cancellationToken);

    /// <summary>Deletes the endpoint and fails its pending deliveries at once.</summary>
    Task<bool> DeleteEndpointAsync(string accountId, string id, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Turns a disabled endpoint back on, with a clean failure record.</summary>
    Task<WebhookEndpoint?> EnableEndpointAsync(string accountId, string id, CancellationToken cancellationToken);

    /// <summary>Makes <paramref name="secret"/> current; the old one keeps signing until <paramref name="previousExpiresAt"/>.</summary>
    Task<WebhookEndpoint?> RotateSecretAsync(string accountId, string id, string secret, DateTimeOffset previousExpiresAt, CancellationToken cancellationToken);

    /// <summary>Leases due pending deliveries to <paramref name="owner"/>.</summary>
    Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>The secrets that sign this delivery now (current, and the previous during a rotation); null when its endpoint is gone or disabled.</summary>
    Task<IReadOnlyList<string>?> SigningSecretsAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Records the attempt and moves the delivery (and its endpoint's health) on, if the lease is still the owner's.</summary>
    Task RecordAttemptAsync(AttemptResult result, CancellationToken cancellationToken);

    Task<WebhookDelivery?> GetDeliveryAsync(string accountId, string id, CancellationToken cancellationToken);

    /// <summary>Deliveries of one endpoint or one execution, newest first.</summary>
    Task<IReadOnlyList<WebhookDelivery>> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, string? before, int limit, CancellationToken cancellationToken);

    Task<IReadOnlyList<WebhookAttempt>> ListAttemptsAsync(IReadOnlyCollection<string> deliveryIds, CancellationToken cancellationToken);

    /// <summary>
    /// A new delivery of <paramref name="payload"/> (a <see cref="WebhookEventTypes.Test"/> event) to the account's endpoint,
    /// due now; null when the account has no such endpoint.
    /// </summary>
    Task<WebhookDelivery?> CreateTestDeliveryAsync(
        string accountId, string endpointId, string deliveryId, string eventId, string payload, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>A new delivery of the same event (same webhook-id and body), due now.</summary>
    Task<WebhookDelivery?> RedeliverAsync(string accountId, string deliveryId, string newId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes up to <paramref name="max"/> finished <c>webhook.test</c> deliveries (they belong to no execution, so the
    /// execution purge never reaches them) completed before <paramref name="endedBefore"/>, with their attempts; returns
    /// how many (docs/webhooks.md#delivery-rules).
    /// </summary>
    Task<int> PurgeTestDeliveriesAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken);
}
