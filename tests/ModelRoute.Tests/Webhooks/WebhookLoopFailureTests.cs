using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// A failed look for due deliveries (the store unreachable for a moment) costs the delivery worker a short wait that
/// grows while failures repeat, not a whole poll: with the poll at a minute, a redelivery whose claims fail at first
/// still arrives within seconds. Runs on both stores (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class WebhookLoopFailureTests
{
    [Fact]
    public async Task A_look_for_deliveries_that_fails_is_made_again_in_a_moment_and_not_a_poll_later()
    {
        ClaimFailingWebhookStore? store = null;
        await using var receiver = await WebhookReceiver.StartAsync();
        await using var gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Dispatch:PollInterval"] = "00:01:00" },
            services =>
            {
                var original = services.Last(d => d.ServiceType == typeof(IWebhookStore));
                services.Remove(original);
                services.AddSingleton<IWebhookStore>(sp => store = new ClaimFailingWebhookStore((IWebhookStore)original.ImplementationFactory!(sp)));
            });
        using var account = await gateway.CreateAccountAsync();

        // The first delivery is handed to the worker without a claim.
        var id = (await account.Client.SubmitTextAsync(extra: $",\"webhook_url\":\"{receiver.Url()}\"")).Json.GetProperty("id").GetString()!;
        await Eventually.HoldsAsync(() => receiver.Received.Count == 1, "the first delivery arrived", 15);
        await Task.Delay(500); // The worker's looks are behind it: the next one is for the redelivery below.
        store!.Claims.Next(2);

        // A redelivery waits for a claim, and the first two claims throw.
        var delivery = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data")[0];
        var redelivered = await account.Client.PostJsonAsync($"/v1/webhook-deliveries/{delivery.GetProperty("id").GetString()}/redeliver", "{}");
        redelivered.Status.ShouldBe(202, redelivered.Body);

        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, "the redelivery arrived", 15);
        store.Claims.Failed.ShouldBe(2);
    }

    /// <summary>The gateway's own webhook store, whose next looks for due deliveries can be made to throw.</summary>
    private sealed class ClaimFailingWebhookStore(IWebhookStore inner) : IWebhookStore
    {
        /// <summary>Looks for due deliveries to make throw.</summary>
        public SimulatedFailures Claims { get; } = new();

        public Task<IReadOnlyList<WebhookDelivery>> ClaimDueAsync(string owner, int max, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken cancellationToken)
        {
            Claims.ThrowIfDue();
            return inner.ClaimDueAsync(owner, max, now, leaseUntil, cancellationToken);
        }

        public Task<string?> GetDefaultSecretAsync(string accountId, CancellationToken cancellationToken) => inner.GetDefaultSecretAsync(accountId, cancellationToken);

        public Task CreateEndpointAsync(WebhookEndpoint endpoint, string secret, CancellationToken cancellationToken) => inner.CreateEndpointAsync(endpoint, secret, cancellationToken);

        public Task<WebhookEndpoint?> GetEndpointAsync(string accountId, string id, CancellationToken cancellationToken) => inner.GetEndpointAsync(accountId, id, cancellationToken);

        public Task<IReadOnlyList<WebhookEndpoint>> ListEndpointsAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) =>
            inner.ListEndpointsAsync(accountId, before, limit, cancellationToken);

        public Task<bool> DeleteEndpointAsync(string accountId, string id, DateTimeOffset now, CancellationToken cancellationToken) => inner.DeleteEndpointAsync(accountId, id, now, cancellationToken);

        public Task<WebhookEndpoint?> EnableEndpointAsync(string accountId, string id, CancellationToken cancellationToken) => inner.EnableEndpointAsync(accountId, id, cancellationToken);

        public Task<WebhookEndpoint?> RotateSecretAsync(string accountId, string id, string secret, DateTimeOffset previousExpiresAt, CancellationToken cancellationToken) =>
            inner.RotateSecretAsync(accountId, id, secret, previousExpiresAt, cancellationToken);

        public Task<IReadOnlyList<string>?> SigningSecretsAsync(WebhookDelivery delivery, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.SigningSecretsAsync(delivery, now, cancellationToken);

        public Task RecordAttemptAsync(AttemptResult result, CancellationToken cancellationToken) => inner.RecordAttemptAsync(result, cancellationToken);

        public Task<WebhookDelivery?> CreateTestDeliveryAsync(
            string accountId, string endpointId, string deliveryId, string eventId, string payload, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.CreateTestDeliveryAsync(accountId, endpointId, deliveryId, eventId, payload, now, cancellationToken);

        public Task<WebhookDelivery?> GetDeliveryAsync(string accountId, string id, CancellationToken cancellationToken) => inner.GetDeliveryAsync(accountId, id, cancellationToken);

        public Task<int> PurgeTestDeliveriesAsync(DateTimeOffset endedBefore, int max, CancellationToken cancellationToken) => inner.PurgeTestDeliveriesAsync(endedBefore, max, cancellationToken);

        public Task<IReadOnlyList<WebhookDelivery>> ListDeliveriesAsync(string accountId, string? endpointId, string? executionId, string? before, int limit, CancellationToken cancellationToken) =>
            inner.ListDeliveriesAsync(accountId, endpointId, executionId, before, limit, cancellationToken);

        public Task<IReadOnlyList<WebhookAttempt>> ListAttemptsAsync(IReadOnlyCollection<string> deliveryIds, CancellationToken cancellationToken) =>
            inner.ListAttemptsAsync(deliveryIds, cancellationToken);

        public Task<WebhookDelivery?> RedeliverAsync(string accountId, string deliveryId, string newId, DateTimeOffset now, CancellationToken cancellationToken) =>
            inner.RedeliverAsync(accountId, deliveryId, newId, now, cancellationToken);
    }
}
