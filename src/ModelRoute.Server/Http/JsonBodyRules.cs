namespace ModelRoute.Server.Http;

/// <summary>
/// The rules every JSON request body meets beyond being JSON (docs/api.md, "Bad input"): no name twice
/// in one object, no escaped unpaired surrogate, every number a finite double and every integer within
/// 64 bits. A quick pass says whether a body passes; only a failing body is walked again to name the field.
/// </summary>
public static class JsonBodyRules
{
    /// <summary>Strings and numbers only; duplicate names are refused by the parser itself.</summary>
    public static bool PassesQuickCheck(ReadOnlySpan<byte> json, int maxDepth)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.String or JsonTokenType.PropertyName when reader.ValueIsEscaped && !Unescapes(ref reader):
                case JsonTokenType.Number when !NumberFits(ref reader):
                    return false;
            }
        }

        return true;
    }

    /// <summary>The first rule the body breaks, as a problem naming the field; null when it breaks none (or is not JSON).</summary>
    public static Problem? FindViolation(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        var frames = new List<Frame>();
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.PropertyName)
                {
                    var top = frames[^1];
                    if (!Unescapes(ref reader))
                    {
                        top.Name = null;
                        return Problem.Validation(PathOf(frames), "A field name contains an escaped unpaired surrogate (invalid Unicode).");
                    }

                    top.Name = reader.GetString();
                    if (!top.Names!.Add(top.Name!))
                    {
                        return Problem.Validation(PathOf(frames), $"The field '{Printable(top.Name!)}' appears more than once.");
                    }

                    continue;
                }

                if (reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray)
                {
                    frames.RemoveAt(frames.Count - 1);
                    continue;
                }

                if (frames.Count > 0 && frames[^1].Names is null)
                {
                    frames[^1].Index++;
                }

                if (ValueViolation(ref reader) is { } detail)
                {
                    return Problem.Validation(PathOf(frames), detail);
                }

                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    frames.Add(new Frame(reader.TokenType == JsonTokenType.StartObject ? new HashSet<string>(StringComparer.Ordinal) : null));
                }
            }
        }
        catch (JsonException)
        {
            return null; // not JSON at all: the caller reports the parser's own message
        }

        return null;
    }

    private static string? ValueViolation(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String when reader.ValueIsEscaped && !Unescapes(ref reader) => "The value contains an escaped unpaired surrogate (invalid Unicode).",
        JsonTokenType.Number when !NumberFits(ref reader) => IsInteger(reader.ValueSpan)
            ? "The integer is outside the 64-bit range; send large numbers as strings."
            : "The number is outside the range of a double (it would read as infinity).",
        _ => null,
    };

    /// <summary>
    /// A number is accepted when every client reads it as what was written (docs/api.md, "Bad input"): integers written
    /// without fraction or exponent fit a signed or unsigned 64-bit integer; any other number is a finite double.
    /// </summary>
    private static bool NumberFits(ref Utf8JsonReader reader) =>
        IsInteger(reader.ValueSpan) ? reader.TryGetInt64(out _) || reader.TryGetUInt64(out _) : reader.TryGetDouble(out var value) && double.IsFinite(value);

    private static bool IsInteger(ReadOnlySpan<byte> number) => number.IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;

    /// <summary>JSON allows escapes such as <c>"\ud800"</c> that decode to no valid string; reading one throws.</summary>
    private static bool Unescapes(ref Utf8JsonReader reader)
    {
        try
        {
            reader.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string PathOf(List<Frame> frames)
    {
        var path = new StringBuilder();
        foreach (var frame in frames)
        {
            if (frame.Names is null)
            {
                path.Append(path.Length == 0 ? "body" : "").Append('[').Append(frame.Index.ToString(CultureInfo.InvariantCulture)).Append(']');
            }
            else if (frame.Name is not null)
            {
                path.Append(path.Length == 0 ? "" : ".").Append(Printable(frame.Name));
            }
        }

        return path.Length == 0 ? "body" : path.ToString();
    }

    private static string Printable(string name) =>
        new([.. name.Take(64).Select(c => char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format ? '?' : c)]);

    /// <summary>One open object (its names so far and the current one) or array (the current index).</summary>
    private sealed class Frame(HashSet<string>? names)
    {
        public HashSet<string>? Names { get; } = names;

        public string? Name { get; set; }

        public int Index { get; set; } = -1;
    }
}
