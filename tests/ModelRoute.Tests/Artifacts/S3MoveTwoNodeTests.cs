using System.Net;
using System.Security.Cryptography;

namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// Two nodes on one PostgreSQL database: an artifact kept on node A's disk, moved into the bucket with the move command,
/// is then served by node B, which has only the bucket (docs/artifacts.md#moving-file-artifacts-to-s3).
/// </summary>
public sealed class S3MoveTwoNodeTests
{
    [Fact]
    public async Task A_file_artifact_made_on_node_A_and_moved_to_the_bucket_downloads_through_node_B_unchanged()
    {
        var moto = await MotoServer.SharedAsync();
        var bucket = await moto.CreateBucketAsync("move-two-nodes");
        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync("s3_move");
        var diskOfA = TestPaths.NewTempDirectory("node-a-disk");
        var store = new Dictionary<string, string?>
        {
            ["ModelRoute:Store:Kind"] = "postgres",
            ["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(database),
        };
        var bucketOnly = new Dictionary<string, string?>(store.Concat(moto.Settings(bucket, "moved/")));
        var nodeB = new GatewayFactory(bucketOnly);
        try
        {
            nodeB.StartServer();
            string key;
            string id;
            JsonElement artifact;
            await using (var nodeA = new GatewayFactory(new Dictionary<string, string?>(store) { ["ModelRoute:DataDirectory"] = diskOfA }))
            {
                var account = await nodeA.CreateAccountAsync();
                key = account.Key;
                (id, artifact) = await S3ArtifactTests.RunImageAsync(account);
            }

            var name = artifact.GetProperty("name").GetString()!;
            File.Exists(Path.Combine(diskOfA, "artifacts", id, name)).ShouldBeTrue("Artifacts:Kind was file on node A");
            using var onB = nodeB.WithBearer(key);
            (await onB.GetAsync(artifact.GetProperty("url").GetString())).StatusCode.ShouldBe(HttpStatusCode.NotFound, "node B cannot see A's disk");

            await using (var movingA = new GatewayFactory(new Dictionary<string, string?>(bucketOnly) { ["ModelRoute:DataDirectory"] = diskOfA }))
            {
                using var admin = movingA.Admin();
                var moved = await admin.PostJsonAsync("/v1/admin/artifacts/move", "{}");
                moved.Status.ShouldBe(200, moved.Body);
                moved.Json.GetProperty("moved").GetInt32().ShouldBe(1);
            }

            var bytes = await onB.GetByteArrayAsync(artifact.GetProperty("url").GetString());

            (await moto.KeysAsync(bucket)).ShouldContain($"moved/{id}/{name}");
            File.Exists(Path.Combine(diskOfA, "artifacts", id, name)).ShouldBeFalse("the move deletes the file once it is in the bucket");
            bytes.Length.ShouldBe(artifact.GetProperty("size_bytes").GetInt32());
            Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(artifact.GetProperty("sha256").GetString());
        }
        finally
        {
            await nodeB.DisposeAsync();
            await cluster.DropDatabaseAsync(database);
            TestPaths.TryDelete(diskOfA);
        }
    }
}
