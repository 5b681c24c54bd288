using System.Net;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// Retention asks the bucket only about executions that kept artifacts there, counted with moto's request recorder on
/// a server of the test's own (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed class S3RetentionTests : IAsyncLifetime
{
    private MotoServer _moto = null!;
    private string _bucket = null!;

    public async Task InitializeAsync()
    {
        _moto = await MotoServer.StartPrivateAsync();
        _bucket = await _moto.CreateBucketAsync("s3-retention");
    }

    public async Task DisposeAsync() => await _moto.DisposeAsync();

    [Fact]
    public async Task Purging_50_executions_of_which_2_kept_artifacts_asks_the_bucket_only_about_those_2()
    {
        await using var gateway = new GatewayFactory(_moto.Settings(_bucket));
        using var account = await gateway.CreateAccountAsync();
        var (first, _) = await S3ArtifactTests.RunImageAsync(account);
        var (second, _) = await S3ArtifactTests.RunImageAsync(account);
        var plain = new List<string>();
        for (var i = 0; i < 48; i++)
        {
            var submitted = await account.Client.SubmitAsync("sim/text", """{"messages":[{"role":"user","content":"hi"}]}""");
            submitted.Status.ShouldBe(202, submitted.Body);
            plain.Add(submitted.Json.GetProperty("id").GetString()!);
        }

        foreach (var id in plain)
        {
            (await account.Client.WaitForTerminalAsync(id, seconds: 60)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        var sweeper = gateway.Services.GetServices<IHostedService>().OfType<ExecutionSweeper>().Single();
        await _moto.StartRecordingAsync();
        await sweeper.PurgeAsync(DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None);
        var requests = await _moto.StopRecordingAsync();

        var toBucket = requests.Where(r => r.Url.Contains(_bucket, StringComparison.Ordinal)).ToList();
        toBucket.ShouldNotBeEmpty("the two executions' objects are deleted");
        toBucket.ShouldAllBe(r => r.Url.Contains(first, StringComparison.Ordinal) || r.Url.Contains(second, StringComparison.Ordinal));
        toBucket.Count(r => r.Method == "GET").ShouldBe(2, "one listing for each execution that kept artifacts, none for the others");
        (await _moto.KeysAsync(_bucket)).ShouldBeEmpty();
        (await account.Client.GetAsync($"/v1/executions/{plain[0]}")).StatusCode.ShouldBe(HttpStatusCode.NotFound, "the others are purged all the same");
    }
}
