using System.Data.Common;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage;

/// <summary>
/// The part of the delivery outbox each engine writes its own way, beside the shared <see cref="WebhookStore"/>: the
/// claim (locking and planner hints differ), recording attempts (one write each on SQLite's writer, group-committed on
/// PostgreSQL), and the read of an endpoint's secrets when a delivery is sent (batched on PostgreSQL).
/// </summary>
public interface IWebhookOutbox
{
    /// <summary>Leases due pending deliveries to <paramref name="owner"/>.</summary>
    Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken);

    /// <summary>The endpoint's current and previous secrets; null when it is gone or disabled.</summary>
    Task<EndpointSecrets?> ReadEndpointSecretsAsync(string endpointId, CancellationToken cancellationToken);

    /// <summary>Records the attempt and moves the delivery (and its endpoint's health) on, if the lease is still the owner's.</summary>
    Task RecordAttemptAsync(AttemptResult result, CancellationToken cancellationToken);

    /// <summary>Ends the pending deliveries of an endpoint that will take no more, inside the caller's transaction.</summary>
    Task FailPendingAsync(DbConnection connection, DbTransaction transaction, string endpointId, string reason, long now);
}

/// <summary>What signs an endpoint's deliveries: its secret, and the previous one until it expires (a rotation).</summary>
public sealed record EndpointSecrets(string Secret, string? PreviousSecret, long? PreviousSecretExpiresAt);
