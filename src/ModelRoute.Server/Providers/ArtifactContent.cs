namespace ModelRoute.Server.Providers;

/// <summary>
/// A binary output: its bytes (decoded from base64, say), or the provider's URL to copy it from
/// before the URL expires. <see cref="ContentType"/> may be null for a URL: the download's is used.
/// </summary>
public sealed record ArtifactContent(string Name, string? ContentType, byte[]? Data, Uri? Source = null);
