using System.Text.Json.Serialization;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// A provider's result kept on its execution (<c>pending_result</c>) while its outputs are copied: what completing it
/// needs, so that a retried copy, or one resumed by another node after a crash, never calls the provider again.
/// </summary>
public sealed record KeptResult(
    [property: JsonPropertyName("output")] string Output,
    [property: JsonPropertyName("usage")] Usage Usage,
    [property: JsonPropertyName("artifacts")] IReadOnlyList<KeptArtifact> Artifacts)
{
    public string ToJson() => StoreJson.Serialize(this);

    public static KeptResult Parse(string json) =>
        StoreJson.Deserialize<KeptResult>(json) ?? throw new InvalidOperationException("An empty kept result.");
}

/// <summary>One output: still at the provider's <see cref="Url"/>, or already in the artifact store (<see cref="SizeBytes"/>).</summary>
public sealed record KeptArtifact(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("content_type")] string? ContentType,
    [property: JsonPropertyName("url")] Uri? Url,
    [property: JsonPropertyName("size_bytes")] long? SizeBytes = null,
    [property: JsonPropertyName("sha256"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Sha256 = null,
    [property: JsonPropertyName("store"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Store = null);
