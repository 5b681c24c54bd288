using System.Text.Json.Nodes;
using ModelRoute.Server.Routing;

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

    /// <summary>
    /// A text input's system prompt (the top-level <c>system</c>, then system and developer messages' text, in order)
    /// and the other messages' roles and contents, for providers that keep the system prompt apart.
    /// </summary>
    public static (List<string> System, List<(string? Role, JsonElement Content)> Turns) Conversation(JsonElement input)
    {
        var system = new List<string>();
        if (input.TryGetProperty("system", out var topSystem) && topSystem.ValueKind == JsonValueKind.String && topSystem.GetString() is { Length: > 0 } s)
        {
            system.Add(s);
        }

        var turns = new List<(string? Role, JsonElement Content)>();
        foreach (var message in input.GetProperty("messages").EnumerateArray())
        {
            var role = message.GetProperty("role").GetString();
            var content = message.GetProperty("content");
            if (role is "system" or "developer")
            {
                system.Add(TextOf(content));
            }
            else
            {
                turns.Add((role, content));
            }
        }

        return (system, turns);
    }

    /// <summary>The canonical <c>stop</c> (a string or an array of them) as an array, or null when there is none.</summary>
    public static JsonNode? StopSequences(JsonElement input) =>
        !input.TryGetProperty("stop", out var stop) ? null
        : stop.ValueKind == JsonValueKind.String ? new JsonArray(stop.GetString())
        : stop.ValueKind == JsonValueKind.Array ? JsonNode.Parse(stop.GetRawText())
        : null;

    /// <summary>The members of the input's <c>provider_options</c> object (none when it has none).</summary>
    public static IEnumerable<JsonProperty> ProviderOptions(JsonElement input) =>
        input.TryGetProperty("provider_options", out var options) && options.ValueKind == JsonValueKind.Object ? options.EnumerateObject() : [];

    /// <summary>Copies a value that is there and not null from the input to the provider's payload under the provider's name.</summary>
    public static void Copy(JsonElement from, JsonObject to, string name, string target)
    {
        if (from.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
        {
            to[target] = JsonNode.Parse(v.GetRawText());
        }
    }

    /// <summary>
    /// An async provider's request input: the canonical input of <paramref name="call"/> translated by
    /// <paramref name="translate"/> for the model's modality, then <c>provider_options</c> over it.
    /// </summary>
    public static JsonObject TranslateInput(ProviderCall call, Action<Modality, JsonElement, JsonObject> translate)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var result = new JsonObject();
        translate(call.Model.Modality, doc.RootElement, result);
        OverlayProviderOptions(doc.RootElement, result);
        return result;
    }

    /// <summary><c>provider_options</c> over the translated input: each member added, or replacing the one of its name.</summary>
    public static void OverlayProviderOptions(JsonElement input, JsonObject target)
    {
        foreach (var option in ProviderOptions(input))
        {
            target[option.Name] = JsonNode.Parse(option.Value.GetRawText());
        }
    }

    /// <summary>A provider's tool call (<c>id</c>, <c>name</c>, and its arguments under <paramref name="arguments"/>) in canonical form.</summary>
    public static Dictionary<string, object?> ToolCall(JsonElement call, string arguments) => new()
    {
        ["id"] = call.TryGetProperty("id", out var id) ? id.GetString() : null,
        ["name"] = call.TryGetProperty("name", out var n) ? n.GetString() : null,
        ["arguments"] = call.TryGetProperty(arguments, out var args) ? args.Clone() : null,
    };

    /// <summary>The canonical text output: the text, the finish reason and the tool calls, if any.</summary>
    public static string TextOutput(string text, string finish, List<Dictionary<string, object?>> toolCalls)
    {
        var output = new Dictionary<string, object> { ["text"] = text, ["finish_reason"] = finish };
        if (toolCalls.Count > 0)
        {
            output["tool_calls"] = toolCalls;
        }

        return JsonSerializer.Serialize(output);
    }

    public static long? Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var i) ? i : null;
}
