namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// The artifact stores in use: the file store always (artifacts kept before S3 stay readable there), and the S3 bucket
/// when one is configured. New artifacts go to Artifacts:Kind; each artifact is read from the store it names
/// (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed class ArtifactStores : IArtifactStore, IDisposable
{
    private readonly ArtifactOptions _options;
    private readonly IArtifactBackend _current;

    public ArtifactStores(IOptions<ModelRouteOptions> options, TimeProvider time)
    {
        _options = options.Value.Artifacts;
        Files = new FileArtifactStore(Path.Combine(options.Value.DataDirectory, "artifacts"));
        // With a bucket configured, S3 artifacts stay readable even after Kind went back to file.
        S3 = string.IsNullOrWhiteSpace(_options.Bucket) ? null : new S3ArtifactStore(S3ArtifactStore.CreateClient(_options), _options, time);
        _current = _options.Kind == ArtifactStoreKinds.S3 ? S3! : Files;
    }

    public FileArtifactStore Files { get; }

    public S3ArtifactStore? S3 { get; }

    public string Kind => _current.Kind;

    public Task<Artifact> SaveAsync(string executionId, string name, string contentType, Stream content, long maxBytes, CancellationToken cancellationToken) =>
        SaveToAsync(_current, executionId, name, contentType, content, maxBytes, cancellationToken);

    /// <summary>Streams <paramref name="content"/> into <paramref name="backend"/>, hashing it on the way.</summary>
    public static async Task<Artifact> SaveToAsync(
        IArtifactBackend backend, string executionId, string name, string contentType, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        await using var hashing = new HashingStream(content, maxBytes);
        await backend.WriteAsync(executionId, name, contentType, hashing, cancellationToken);
        return new Artifact(name, contentType, hashing.BytesRead, hashing.Sha256(), backend.Kind == ArtifactStoreKinds.File ? null : backend.Kind);
    }

    public async Task<ArtifactDownload?> OpenAsync(string executionId, Artifact artifact, CancellationToken cancellationToken)
    {
        if (_options.RedirectToPresigned && artifact.Store == ArtifactStoreKinds.S3 && S3 is not null)
        {
            return new ArtifactDownload(null, await S3.PresignAsync(executionId, artifact.Name));
        }

        return await ReadAsync(executionId, artifact, cancellationToken) is { } stream ? new ArtifactDownload(stream, null) : null;
    }

    public async Task<Stream?> ReadAsync(string executionId, Artifact artifact, CancellationToken cancellationToken)
    {
        if (artifact.Store is null or ArtifactStoreKinds.File)
        {
            return await Files.ReadAsync(executionId, artifact.Name, cancellationToken);
        }

        return artifact.Store == ArtifactStoreKinds.S3 && S3 is not null
            ? await S3.ReadAsync(executionId, artifact.Name, cancellationToken)
            : null; // Kept in a store this node is not configured for.
    }

    public async Task DeleteAllAsync(string executionId, IReadOnlyCollection<string> stores, CancellationToken cancellationToken)
    {
        if (stores.Contains(ArtifactStoreKinds.File))
        {
            await Files.DeleteAllAsync(executionId, cancellationToken);
        }

        if (S3 is not null && stores.Contains(ArtifactStoreKinds.S3))
        {
            await S3.DeleteAllAsync(executionId, cancellationToken);
        }
    }

    public void Dispose() => S3?.Dispose();
}

/// <summary>
/// Checks the S3 store once at start-up (Artifacts:Kind <c>s3</c>), so that wrong credentials or a missing bucket stop the
/// start with one clear line rather than failing every copy later.
/// </summary>
public sealed class ArtifactStoreCheck(ArtifactStores stores) : IHostedService
{
    private bool _passed;

    /// <summary>The problem found, or null when the store is usable (or is the file store).</summary>
    public async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        if (_passed || stores.Kind != ArtifactStoreKinds.S3 || stores.S3 is null)
        {
            return null;
        }

        var problem = await stores.S3.ProblemAsync(cancellationToken);
        _passed = problem is null;
        return problem;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (await ProblemAsync(cancellationToken) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
