using System.Text.RegularExpressions;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// Binary outputs kept by the gateway, so results outlive providers' temporary URLs. New artifacts go to the configured
/// store (Artifacts:Kind); each kept <see cref="Artifact"/> names its own store, which serves it from then on
/// (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public interface IArtifactStore
{
    /// <summary>The kind new artifacts are kept in (<see cref="ArtifactStoreKinds"/>).</summary>
    string Kind { get; }

    /// <summary>
    /// Streams <paramref name="content"/> into the configured store, at most <paramref name="maxBytes"/> of it
    /// (<see cref="ArtifactTooLargeException"/> beyond); the artifact with its size, SHA-256 and store.
    /// </summary>
    Task<Artifact> SaveAsync(string executionId, string name, string contentType, Stream content, long maxBytes, CancellationToken cancellationToken);

    /// <summary>The artifact's bytes or a presigned address for them, from its own store; null when it is not there.</summary>
    Task<ArtifactDownload?> OpenAsync(string executionId, Artifact artifact, CancellationToken cancellationToken);

    /// <summary>The artifact's bytes from its own store, never a redirect; null when it is not there.</summary>
    Task<Stream?> ReadAsync(string executionId, Artifact artifact, CancellationToken cancellationToken);

    /// <summary>
    /// Removes every artifact of the execution from the <paramref name="stores"/> that hold them (retention); a store this
    /// node is not configured for is skipped, a missing object is not an error.
    /// </summary>
    Task DeleteAllAsync(string executionId, IReadOnlyCollection<string> stores, CancellationToken cancellationToken);
}

/// <summary>An artifact to send: its bytes, or a short-lived address to redirect to.</summary>
public sealed record ArtifactDownload(Stream? Content, Uri? Redirect);

/// <summary>One place artifacts are kept: a folder, or an S3 bucket.</summary>
public interface IArtifactBackend
{
    string Kind { get; }

    /// <summary>Writes the whole of <paramref name="content"/>, never holding more than a bounded part of it in memory.</summary>
    Task WriteAsync(string executionId, string name, string contentType, Stream content, CancellationToken cancellationToken);

    Task<Stream?> ReadAsync(string executionId, string name, CancellationToken cancellationToken);

    Task DeleteAllAsync(string executionId, CancellationToken cancellationToken);
}

public sealed class ArtifactTooLargeException(long limit) : Exception($"larger than {limit} bytes")
{
    public long Limit { get; } = limit;
}

public static partial class ArtifactNames
{
    /// <summary>Plain file names only: nothing that could climb out of the execution's folder.</summary>
    public static bool IsValid(string name) => name.Length <= 100 && SafeName().IsMatch(name);

    /// <summary>Throws unless both names are plain (<see cref="IsValid"/>).</summary>
    public static void Check(string executionId, string name)
    {
        if (!IsValid(name) || !IsValid(executionId))
        {
            throw new ArgumentException("Invalid artifact name.", nameof(name));
        }
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeName();
}

/// <summary>Artifacts as files under <c>{DataDirectory}/artifacts/{execution}/{name}</c>.</summary>
public sealed class FileArtifactStore(string root) : IArtifactBackend
{
    public string Kind => ArtifactStoreKinds.File;

    public async Task WriteAsync(string executionId, string name, string contentType, Stream content, CancellationToken cancellationToken)
    {
        var path = PathFor(executionId, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Write beside and rename, so a reader never sees half a file.
        var temporary = path + ".tmp";
        try
        {
            await using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 81920, useAsync: true))
            {
                await content.CopyToAsync(file, 81920, cancellationToken);
            }

            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    public Task<Stream?> ReadAsync(string executionId, string name, CancellationToken cancellationToken)
    {
        var path = PathFor(executionId, name);
        return Task.FromResult<Stream?>(File.Exists(path) ? File.OpenRead(path) : null);
    }

    public Task DeleteAllAsync(string executionId, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(root, ArtifactNames.IsValid(executionId) ? executionId : throw new ArgumentException("Invalid execution id.", nameof(executionId)));
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }

        return Task.CompletedTask;
    }

    /// <summary>Removes one artifact's file, once it is kept elsewhere (docs/artifacts.md#moving-file-artifacts-to-s3).</summary>
    public void Delete(string executionId, string name) => File.Delete(PathFor(executionId, name));

    private string PathFor(string executionId, string name)
    {
        ArtifactNames.Check(executionId, name);
        return Path.Combine(root, executionId, name);
    }
}
