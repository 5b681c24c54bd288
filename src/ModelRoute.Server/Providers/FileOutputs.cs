namespace ModelRoute.Server.Providers;

/// <summary>
/// Output files of the asynchronous adapters (Replicate, fal) as artifacts, and the canonical output that points at
/// them (docs/artifacts.md).
/// </summary>
public static class FileOutputs
{
    /// <summary>An output file: by its URL (copied by the gateway), or decoded at once from a <c>data:</c> URI.</summary>
    public static ArtifactContent Artifact(string stem, string url, string defaultExtension)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = url.IndexOf(',', StringComparison.Ordinal);
            var meta = url[5..comma];
            var type = meta.Split(';')[0];
            var data = meta.EndsWith(";base64", StringComparison.OrdinalIgnoreCase)
                ? Convert.FromBase64String(url[(comma + 1)..])
                : Encoding.UTF8.GetBytes(Uri.UnescapeDataString(url[(comma + 1)..]));
            var typeExtension = ExtensionOf(type);
            return new ArtifactContent(stem + (typeExtension ?? defaultExtension), type.Length > 0 ? type : null, data);
        }

        var uri = new Uri(url);
        var extension = Path.GetExtension(uri.AbsolutePath).ToLowerInvariant();
        if (extension.Length is < 2 or > 6 || !extension[1..].All(char.IsAsciiLetterOrDigit))
        {
            extension = defaultExtension;
        }

        return new ArtifactContent(stem + extension, TypeOf(extension), null, uri);
    }

    /// <summary>The canonical image output: each image's artifact name and its gateway URL.</summary>
    public static string Images(IEnumerable<ArtifactContent> artifacts, string executionId) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["images"] = artifacts.Select(a => new Dictionary<string, string> { ["artifact"] = a.Name, ["url"] = Url(executionId, a) }).ToList(),
        });

    /// <summary>The canonical video or audio output: the file's artifact name and gateway URL, and its duration.</summary>
    public static string Media(bool video, ArtifactContent artifact, string executionId, int seconds) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            [video ? "video" : "audio"] = new Dictionary<string, string> { ["artifact"] = artifact.Name, ["url"] = Url(executionId, artifact) },
            ["duration_seconds"] = seconds,
        });

    private static string Url(string executionId, ArtifactContent artifact) => $"/v1/executions/{executionId}/artifacts/{artifact.Name}";

    private static string? TypeOf(string extension) => extension switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".webp" => "image/webp",
        ".gif" => "image/gif",
        ".mp4" => "video/mp4",
        ".webm" => "video/webm",
        ".mov" => "video/quicktime",
        ".wav" => "audio/wav",
        ".mp3" => "audio/mpeg",
        ".ogg" => "audio/ogg",
        _ => null,
    };

    private static string? ExtensionOf(string type) => type.ToLowerInvariant() switch
    {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/webp" => ".webp",
        "image/gif" => ".gif",
        "video/mp4" => ".mp4",
        "video/webm" => ".webm",
        "audio/wav" or "audio/x-wav" => ".wav",
        "audio/mpeg" => ".mp3",
        _ => null,
    };
}
