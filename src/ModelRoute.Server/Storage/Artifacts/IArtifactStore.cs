using System.Text.RegularExpressions;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>Binary outputs kept by the gateway, so results outlive providers' temporary URLs.</summary>
public interface IArtifactStore
{
    Task SaveAsync(string executionId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken);

    /// <summary>The artifact's bytes, or null when it is not there.</summary>
    Task<Stream?> OpenAsync(string executionId, string name, CancellationToken cancellationToken);

    /// <summary>Removes every artifact of the execution (retention).</summary>
    Task DeleteAllAsync(string executionId, CancellationToken cancellationToken);
}

public static partial class ArtifactNames
{
    /// <summary>Plain file names only: nothing that could climb out of the execution's folder.</summary>
    public static bool IsValid(string name) => name.Length <= 100 && SafeName().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex SafeName();
}

/// <summary>Artifacts as files under <c>{DataDirectory}/artifacts/{execution}/{name}</c>.</summary>
public sealed class FileArtifactStore(string root) : IArtifactStore
{
    public async Task SaveAsync(string executionId, string name, ReadOnlyMemory<byte> content, CancellationToken cancellationToken)
    {
        var path = PathFor(executionId, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Write beside and rename, so a reader never sees half a file.
        var temporary = path + ".tmp";
        await File.WriteAllBytesAsync(temporary, content.ToArray(), cancellationToken);
        File.Move(temporary, path, overwrite: true);
    }

    public Task<Stream?> OpenAsync(string executionId, string name, CancellationToken cancellationToken)
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

    private string PathFor(string executionId, string name)
    {
        if (!ArtifactNames.IsValid(name) || !ArtifactNames.IsValid(executionId))
        {
            throw new ArgumentException("Invalid artifact name.", nameof(name));
        }

        return Path.Combine(root, executionId, name);
    }
}
