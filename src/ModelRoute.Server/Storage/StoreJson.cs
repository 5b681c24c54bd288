using System.Text.Json;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;

namespace ModelRoute.Server.Storage;

/// <summary>How the stores keep structured columns as JSON text.</summary>
public static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new Http.UtcTimestampConverter() },
    };

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T? Deserialize<T>(string? json) => json is null ? default : JsonSerializer.Deserialize<T>(json, Options);

    public static IReadOnlyList<Artifact> Artifacts(string? json) => Deserialize<List<Artifact>>(json) ?? [];

    public static IReadOnlyList<AttemptRecord> Attempts(string? json) => Deserialize<List<AttemptRecord>>(json) ?? [];

    public static Price Price(string json) => Deserialize<Price>(json) ?? new Price();
}
