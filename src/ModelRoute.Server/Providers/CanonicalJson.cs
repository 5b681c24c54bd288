using System.Text.Json;
using System.Text.Json.Nodes;

namespace ModelRoute.Server.Providers;

/// <summary>Small readers of canonical input and provider answers that several adapters share.</summary>
public static class CanonicalJson
{
    /// <summary>A message's text: the string itself, or the text parts of a content array joined.</summary>
    public static string TextOf(JsonElement content) =>
        content.ValueKind == JsonValueKind.String
            ? content.GetString()!
            : string.Concat(content.EnumerateArray()
                .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                .Select(p => p.GetProperty("text").GetString()));

    /// <summary>Copies a number from the input to the provider's payload under the provider's name, as written.</summary>
    public static void CopyNumber(JsonElement input, string from, JsonObject target, string to)
    {
        if (input.TryGetProperty(from, out var v) && v.ValueKind == JsonValueKind.Number)
        {
            target[to] = JsonNode.Parse(v.GetRawText());
        }
    }

    public static long? Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var i) ? i : null;
}
