using ModelRoute.Server.Hosting;

namespace ModelRoute.Tests.Storage;

/// <summary>Retention's purges on every store: what they report of artifacts (docs/artifacts.md#s3-compatible-storage).</summary>
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
}
