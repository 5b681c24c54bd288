using System.Security.Cryptography;

namespace ModelRoute.Tests.Artifacts;

/// <summary>Two nodes on one PostgreSQL database and one bucket: every node serves every artifact (docs/artifacts.md#s3-compatible-storage).</summary>
public sealed class S3TwoNodeTests : IAsyncLifetime
{
    private TwoPostgresNodes _nodes = null!;
    private MotoServer _moto = null!;
    private string _bucket = null!;

    public async Task InitializeAsync()
    {
        _moto = await MotoServer.SharedAsync();
        _bucket = await _moto.CreateBucketAsync("two-nodes");
        _nodes = await TwoPostgresNodes.StartAsync("s3_artifacts", _moto.Settings(_bucket));
    }

    public async Task DisposeAsync() => await _nodes.DisposeAsync();

    [Fact]
    public async Task An_artifact_made_through_node_A_downloads_through_node_B()
    {
        using var onA = await _nodes.A.CreateAccountAsync();
        using var onB = _nodes.B.WithBearer(onA.Key);

        var (id, artifact) = await S3ArtifactTests.RunImageAsync(onA, reader: onB);

        (await _moto.KeysAsync(_bucket)).ShouldContain($"{id}/{artifact.GetProperty("name").GetString()}");
        Directory.Exists(Path.Combine(_nodes.A.DataDirectory, "artifacts", id)).ShouldBeFalse();
        Directory.Exists(Path.Combine(_nodes.B.DataDirectory, "artifacts", id)).ShouldBeFalse();
        var bytes = await onB.GetByteArrayAsync(artifact.GetProperty("url").GetString());
        bytes.Length.ShouldBe(artifact.GetProperty("size_bytes").GetInt32());
        Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(artifact.GetProperty("sha256").GetString());
    }
}
