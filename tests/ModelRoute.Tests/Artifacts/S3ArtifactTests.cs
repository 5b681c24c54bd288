using System.Net;
using System.Security.Cryptography;
using Amazon.S3.Model;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// Artifacts kept in an S3-compatible bucket (moto), on the suite's store (SQLite, or PostgreSQL under
/// MODELROUTE_TEST_STORE=postgres): presigned downloads, retention, and artifacts kept on disk before the switch
/// (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed class S3ArtifactTests : IAsyncLifetime
{
    private MotoServer _moto = null!;
    private string _bucket = null!;

    public async Task InitializeAsync()
    {
        _moto = await MotoServer.SharedAsync();
        _bucket = await _moto.CreateBucketAsync("s3-artifacts");
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task An_image_is_kept_in_the_bucket_with_its_size_and_sha256_and_downloads_through_the_gateway()
    {
        await using var gateway = new GatewayFactory(_moto.Settings(_bucket, "kept/"));
        using var account = await gateway.CreateAccountAsync();

        var (id, artifact) = await RunImageAsync(account);

        var keys = await _moto.KeysAsync(_bucket);
        keys.ShouldContain($"kept/{id}/{artifact.GetProperty("name").GetString()}");
        File.Exists(Path.Combine(gateway.DataDirectory, "artifacts", id, artifact.GetProperty("name").GetString()!)).ShouldBeFalse("nothing was written to disk");
        using var download = await account.Client.GetAsync(artifact.GetProperty("url").GetString());
        download.StatusCode.ShouldBe(HttpStatusCode.OK);
        download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        var bytes = await download.Content.ReadAsByteArrayAsync();
        bytes.Length.ShouldBe(artifact.GetProperty("size_bytes").GetInt32());
        Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(artifact.GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task With_RedirectToPresigned_a_download_answers_a_short_lived_bucket_address_after_the_key_is_checked()
    {
        var settings = _moto.Settings(_bucket);
        settings["ModelRoute:Artifacts:RedirectToPresigned"] = "true";
        settings["ModelRoute:Artifacts:PresignedLifetime"] = "00:02:00";
        await using var gateway = new GatewayFactory(settings);
        using var account = await gateway.CreateAccountAsync();
        using var stranger = await gateway.CreateAccountAsync();
        var (_, artifact) = await RunImageAsync(account);
        var path = artifact.GetProperty("url").GetString()!;

        using var noRedirects = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = account.Client.BaseAddress };
        noRedirects.DefaultRequestHeaders.Authorization = account.Client.DefaultRequestHeaders.Authorization;
        using var answer = await noRedirects.GetAsync(path);
        using var anonymous = await gateway.Anonymous().GetAsync(path);
        using var other = await stranger.Client.GetAsync(path);

        answer.StatusCode.ShouldBe(HttpStatusCode.Redirect);
        var location = answer.Headers.Location!;
        location.GetLeftPart(UriPartial.Authority).ShouldBe(_moto.Url);
        // Signature version 4, valid for the lifetime from when it was signed (a second may pass before signing).
        var expires = System.Text.RegularExpressions.Regex.Match(location.Query, "X-Amz-Expires=([0-9]+)");
        expires.Success.ShouldBeTrue(location.ToString());
        int.Parse(expires.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture).ShouldBeInRange(110, 121); // The SDK rounds the lifetime up to whole seconds.
        anonymous.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        other.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        using var plain = new HttpClient();
        var bytes = await plain.GetByteArrayAsync(location);
        Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(artifact.GetProperty("sha256").GetString());
    }

    [Fact]
    public async Task Retention_deletes_the_objects_of_a_purged_execution_and_a_missing_object_is_no_error()
    {
        await using var gateway = new GatewayFactory(_moto.Settings(_bucket));
        using var account = await gateway.CreateAccountAsync();
        var (kept, _) = await RunImageAsync(account);
        var (gone, _) = await RunImageAsync(account);
        using (var client = _moto.Client())
        {
            // Someone removed one object by hand already: purging must still go through.
            foreach (var key in (await _moto.KeysAsync(_bucket)).Where(k => k.StartsWith(gone, StringComparison.Ordinal)).Take(1))
            {
                await client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _bucket, Key = key });
            }
        }

        (await _moto.KeysAsync(_bucket)).ShouldContain(k => k.StartsWith(kept + "/", StringComparison.Ordinal));
        var sweeper = gateway.Services.GetServices<IHostedService>().OfType<ExecutionSweeper>().Single();
        await sweeper.PurgeAsync(DateTimeOffset.UtcNow.AddDays(1), CancellationToken.None);

        (await _moto.KeysAsync(_bucket)).ShouldBeEmpty();
        (await account.Client.GetAsync($"/v1/executions/{kept}")).StatusCode.ShouldBe(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Artifacts_kept_on_disk_stay_readable_after_switching_to_s3_while_new_ones_go_to_the_bucket()
    {
        var directory = TestPaths.NewTempDirectory("s3-switch");
        var (shared, cleanup) = await TestStore.SharedAsync(directory);
        try
        {
            string key;
            string onDisk;
            JsonElement diskArtifact;
            await using (var before = new GatewayFactory(shared))
            {
                var account = await before.CreateAccountAsync();
                key = account.Key;
                (onDisk, diskArtifact) = await RunImageAsync(account);
            }

            var settings = new Dictionary<string, string?>(shared);
            foreach (var (name, value) in _moto.Settings(_bucket))
            {
                settings[name] = value;
            }

            await using var after = new GatewayFactory(settings);
            using var client = after.WithBearer(key);
            var bytes = await client.GetByteArrayAsync(diskArtifact.GetProperty("url").GetString());
            Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(diskArtifact.GetProperty("sha256").GetString());
            var (inBucket, _) = await RunImageAsync(new TestAccount("", key, client));
            var keys = await _moto.KeysAsync(_bucket);
            keys.ShouldContain(k => k.StartsWith(inBucket + "/", StringComparison.Ordinal));
            keys.ShouldNotContain(k => k.StartsWith(onDisk + "/", StringComparison.Ordinal));
        }
        finally
        {
            await cleanup();
            TestPaths.TryDelete(directory);
        }
    }

    [Fact]
    public async Task The_move_command_moves_file_artifacts_into_the_bucket_in_resumable_batches()
    {
        var directory = TestPaths.NewTempDirectory("s3-move");
        var (shared, cleanup) = await TestStore.SharedAsync(directory);
        try
        {
            string key;
            var onDisk = new List<(string Id, JsonElement Artifact)>();
            await using (var before = new GatewayFactory(shared))
            {
                var account = await before.CreateAccountAsync();
                key = account.Key;
                for (var i = 0; i < 3; i++)
                {
                    onDisk.Add(await RunImageAsync(account));
                }

                (await before.Admin().PostJsonAsync("/v1/admin/artifacts/move", "{}")).Status.ShouldBe(409, "nothing moves while artifacts are kept on disk");
            }

            var settings = new Dictionary<string, string?>(shared);
            foreach (var (name, value) in _moto.Settings(_bucket, "moved/"))
            {
                settings[name] = value;
            }

            await using var after = new GatewayFactory(settings);
            using var admin = after.Admin();
            (await admin.PostJsonAsync("/v1/admin/artifacts/move?limit=0", "{}")).Status.ShouldBe(400);
            var batches = new List<JsonElement>();
            string? next = "";
            while (next is not null)
            {
                var batch = await admin.PostJsonAsync($"/v1/admin/artifacts/move?limit=2&after={next}", "{}");
                batch.Status.ShouldBe(200, batch.Body);
                batches.Add(batch.Json);
                next = batch.Json.GetProperty("next_after").GetString();
            }

            var again = await admin.PostJsonAsync("/v1/admin/artifacts/move?limit=2", "{}");

            batches.Sum(b => b.GetProperty("moved").GetInt32()).ShouldBe(3);
            again.Json.GetProperty("executions").GetInt32().ShouldBe(0, "a second run finds nothing left to move");
            var keys = await _moto.KeysAsync(_bucket);
            using var client = after.WithBearer(key);
            foreach (var (id, artifact) in onDisk)
            {
                keys.ShouldContain($"moved/{id}/{artifact.GetProperty("name").GetString()}");
                Directory.EnumerateFiles(Path.Combine(directory, "artifacts", id)).ShouldBeEmpty();
                var bytes = await client.GetByteArrayAsync(artifact.GetProperty("url").GetString());
                Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(artifact.GetProperty("sha256").GetString());
            }
        }
        finally
        {
            await cleanup();
            TestPaths.TryDelete(directory);
        }
    }

    /// <summary>A simulated image run to its end; its id and first artifact.</summary>
    public static async Task<(string Id, JsonElement Artifact)> RunImageAsync(TestAccount account, HttpClient? reader = null)
    {
        var submitted = await account.Client.SubmitAsync("sim/image", """{"prompt":"a lighthouse","simulate":{"latency_ms":50}}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        var done = await (reader ?? account.Client).WaitForTerminalAsync(id, seconds: 60);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var artifact = done.GetProperty("artifacts")[0];
        artifact.GetProperty("sha256").GetString()!.Length.ShouldBe(64);
        return (id, artifact);
    }
}
