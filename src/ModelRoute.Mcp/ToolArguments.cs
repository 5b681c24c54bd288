using System.Text.Json;

namespace ModelRoute.Mcp;

/// <summary>
/// Reads a tool's arguments; a missing or mistyped one is the gateway's VALIDATION_ERROR naming the field, as on HTTP.
/// </summary>
internal sealed class ToolArguments(IDictionary<string, JsonElement>? arguments)
{
    private readonly IDictionary<string, JsonElement> _arguments = arguments ?? new Dictionary<string, JsonElement>();

    public GatewayError? Error { get; private set; }

    /// <summary>The arguments as one JSON object: the body the gateway checks for the submission tools.</summary>
    public JsonElement AsObject()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in _arguments)
            {
                writer.WritePropertyName(name);
                value.WriteTo(writer);
            }

            writer.WriteEndObject();
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.Clone();
    }

    public string RequiredString(string name)
    {
        var value = OptionalString(name);
        if (value is null && Error is null)
        {
            Error = new GatewayError("VALIDATION_ERROR", $"'{name}' is required.", name);
        }

        return value ?? "";
    }

    public string? OptionalString(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text)
        {
            return text;
        }

        Error ??= new GatewayError("VALIDATION_ERROR", $"'{name}' must be a non-empty string.", name);
        return null;
    }

    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when absent.</summary>
    public int Integer(string name, int min, int max, int fallback)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return fallback;
        }

        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= min && number <= max)
        {
            return number;
        }

        Error ??= new GatewayError("VALIDATION_ERROR", $"'{name}' must be a whole number from {min} to {max}.", name);
        return fallback;
    }

    /// <summary>An optional whole number kept as text, for the gateway to check as it checks a query string.</summary>
    public string? IntegerText(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Number)
        {
            return value.GetRawText();
        }

        Error ??= new GatewayError("VALIDATION_ERROR", $"'{name}' must be a whole number.", name);
        return null;
    }

    /// <summary>A time as text (RFC 3339), or a whole number of unix seconds kept as text, for the gateway to check.</summary>
    public string? TimeText(string name)
    {
        if (_arguments.TryGetValue(name, out var value) && value.ValueKind == JsonValueKind.Number)
        {
            return value.GetRawText();
        }

        return OptionalString(name);
    }

    /// <summary>An optional flat object of string values (the gateway checks its keys, values and size).</summary>
    public IReadOnlyDictionary<string, string>? StringMap(string name)
    {
        if (!_arguments.TryGetValue(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (value.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in value.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                {
                    map = null;
                    break;
                }

                map[property.Name] = property.Value.GetString()!;
            }
        }

        if (map is null || value.ValueKind != JsonValueKind.Object)
        {
            Error ??= new GatewayError("VALIDATION_ERROR", $"'{name}' must be an object of string values, e.g. {{\"team\": \"search\"}}.", name);
            return null;
        }

        return map;
    }
}
