using System.Text.Json;
using System.Text.Json.Serialization;

namespace ModelRoute.Client;

/// <summary>The gateway's JSON conventions: snake_case names, money as decimal strings, nulls left out of requests.</summary>
public static class ModelRouteJson
{
    /// <summary>Serializer options matching the gateway's wire format. Do not modify.</summary>
    public static JsonSerializerOptions SerializerOptions { get; } = Create();

    private static JsonSerializerOptions Create()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            NumberHandling = JsonNumberHandling.AllowReadingFromString,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
