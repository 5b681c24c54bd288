using ModelRoute.Server.Hosting;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Storage;

/// <summary>Retention's purges on every store: what they report of artifacts, and test deliveries (docs/webhooks.md#delivery-rules).</summary>
public abstract partial class ExecutionStoreContract
{
    [Fact]
    public async Task Purging_reports_the_artifact_stores_only_of_executions_that_kept_artifacts()
    {
        var account = await NewAccountAsync(1_000_000);
        var plain = await ProcessingAsync(account, 10_000);
        var onDisk = await ProcessingAsync(account, 10_000);
        var both = await ProcessingAsync(account, 10_000);
        (await Executions.TransitionAsync(Complete(plain.Id, 5_000), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(Complete(onDisk.Id, 5_000) with { Artifacts = [new Artifact("a.png", "image/png", 3)] }, None)).ShouldNotBeNull();
        Artifact[] kept = [new("a.png", "image/png", 3, "ab", ArtifactStoreKinds.S3), new("b.png", "image/png", 3, "cd", ArtifactStoreKinds.S3), new("c.png", "image/png", 3)];
        (await Executions.TransitionAsync(Complete(both.Id, 5_000) with { Artifacts = kept }, None)).ShouldNotBeNull();
        Time.Advance(TimeSpan.FromDays(31));

        var purged = await Executions.PurgeAsync(Now - TimeSpan.FromDays(30), 100, None);

        var stores = purged.ToDictionary(p => p.Id, p => p.ArtifactStores);
        stores.Keys.ShouldBe([plain.Id, onDisk.Id, both.Id], ignoreOrder: true);
        stores[plain.Id].ShouldBeEmpty("it kept no artifacts");
        stores[onDisk.Id].ShouldBe([ArtifactStoreKinds.File], "an artifact naming no store is in the file store");
        stores[both.Id].ShouldBe([ArtifactStoreKinds.S3, ArtifactStoreKinds.File], ignoreOrder: true);
        (await Executions.PurgeAsync(Now - TimeSpan.FromDays(30), 100, None)).ShouldBeEmpty("each is reported once");
    }

    [Fact]
    public async Task Purges_running_at_once_report_each_execution_once_with_its_artifacts()
    {
        // Two nodes' sweepers may purge together: an execution reported twice would have its artifacts deleted twice,
        // one reported by neither would strand them.
        var account = await NewAccountAsync(1_000_000);
        var ended = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            var running = await ProcessingAsync(account, 10_000);
            var done = Complete(running.Id, 5_000) with { Artifacts = [new Artifact("a.png", "image/png", 3, "ab", ArtifactStoreKinds.S3)] };
            (await Executions.TransitionAsync(done, None)).ShouldNotBeNull();
            ended.Add(running.Id);
        }

        Time.Advance(TimeSpan.FromDays(31));
        var cutoff = Now - TimeSpan.FromDays(30);

        var batches = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(async () =>
        {
            var mine = new List<PurgedExecution>();
            IReadOnlyList<PurgedExecution> batch;
            do
            {
                batch = await Executions.PurgeAsync(cutoff, 4, None);
                mine.AddRange(batch);
            }
            while (batch.Count > 0);
            return mine;
        })));

        var reported = batches.SelectMany(b => b).ToList();
        reported.Select(p => p.Id).ShouldBe(ended, ignoreOrder: true);
        reported.ShouldAllBe(p => p.ArtifactStores.Count == 1 && p.ArtifactStores[0] == ArtifactStoreKinds.S3);
    }

    [Fact]
    public async Task Purging_test_deliveries_forgets_finished_ones_past_the_cutoff_with_their_attempts_a_batch_at_a_time()
    {
        var webhooks = CreateWebhookStore();
        var account = await NewAccountAsync(0);
        var endpoint = new WebhookEndpoint(Ids.New("whe"), account, "https://receiver.example/hook", WebhookEventTypes.Default, false, null, "enabled", null, null, null, Now);
        await webhooks.CreateEndpointAsync(endpoint, "whsec_contract", None);
        var oldSucceeded = await FinishedTestDeliveryAsync(webhooks, account, endpoint.Id, succeeded: true);
        var oldFailed = await FinishedTestDeliveryAsync(webhooks, account, endpoint.Id, succeeded: false);
        var oldPending = await webhooks.CreateTestDeliveryAsync(account, endpoint.Id, Ids.New("whd"), Ids.New("evt"), "{}", Now + TimeSpan.FromHours(1), None);
        Time.Advance(TimeSpan.FromDays(31));
        var recent = await FinishedTestDeliveryAsync(webhooks, account, endpoint.Id, succeeded: true);
        var cutoff = Now - TimeSpan.FromDays(30);

        (await webhooks.PurgeTestDeliveriesAsync(cutoff, 1, None)).ShouldBe(1);
        (await webhooks.PurgeTestDeliveriesAsync(cutoff, 1, None)).ShouldBe(1);
        (await webhooks.PurgeTestDeliveriesAsync(cutoff, 1, None)).ShouldBe(0);

        (await webhooks.GetDeliveryAsync(account, oldSucceeded, None)).ShouldBeNull();
        (await webhooks.GetDeliveryAsync(account, oldFailed, None)).ShouldBeNull();
        (await webhooks.ListAttemptsAsync([oldSucceeded, oldFailed], None)).ShouldBeEmpty("their attempts go with them");
        (await webhooks.GetDeliveryAsync(account, oldPending.ShouldNotBeNull().Id, None)).ShouldNotBeNull("one still being delivered stays");
        (await webhooks.GetDeliveryAsync(account, recent, None)).ShouldNotBeNull("it ended after the cutoff");
        (await webhooks.ListAttemptsAsync([recent], None)).ShouldHaveSingleItem();
    }

    /// <summary>A test delivery sent once now: succeeded, or failed for good (no next attempt).</summary>
    private async Task<string> FinishedTestDeliveryAsync(IWebhookStore webhooks, string account, string endpointId, bool succeeded)
    {
        var delivery = (await webhooks.CreateTestDeliveryAsync(account, endpointId, Ids.New("whd"), Ids.New("evt"), "{}", Now, None)).ShouldNotBeNull();
        var claimed = await webhooks.ClaimDueAsync("node-a", 10, Now, Now + Lease, None);
        claimed.Select(d => d.Id).ShouldContain(delivery.Id);
        await webhooks.RecordAttemptAsync(new AttemptResult(delivery.Id, "node-a", Now, succeeded ? 200 : 500, 5, null, succeeded, null, null), None);
        (await webhooks.GetDeliveryAsync(account, delivery.Id, None)).ShouldNotBeNull().Status.ShouldBe(succeeded ? DeliveryStatuses.Succeeded : DeliveryStatuses.Failed);
        return delivery.Id;
    }
}
