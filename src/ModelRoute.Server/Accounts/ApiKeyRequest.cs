using ModelRoute.Server.Http;

namespace ModelRoute.Server.Accounts;

/// <summary>
/// The body that creates an API key, <c>{name?, expires_at?, max_spend_usd?}</c>, read strictly: an unknown or repeated
/// field, a wrong type, an expiry that is not in the future or a limit that is not a USD amount is a 400 naming the field.
/// </summary>
public sealed record ApiKeyRequest(string? Name, DateTimeOffset? ExpiresAt, long? MaxSpendMicros)
{
    /// <summary>The largest limit a key may have, as for a credit.</summary>
    private const long MaxLimitMicros = 1_000_000 * Money.MicrosPerDollar;

    public static async Task<(ApiKeyRequest? Request, Problem? Problem)> ReadAsync(HttpRequest request, long maxBytes, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (request.ContentLength is 0 || (request.ContentLength is null && !request.Headers.ContainsKey("Transfer-Encoding")))
        {
            return (new ApiKeyRequest(null, null, null), null);
        }

        var (document, problem) = await JsonBody.ReadAsync(request, maxBytes, cancellationToken);
        using (document)
        {
            return problem is not null ? (null, problem) : Parse(document!.RootElement, now);
        }
    }

    public static (ApiKeyRequest? Request, Problem? Problem) Parse(JsonElement root, DateTimeOffset now)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return (null, Problem.Validation("body", "Send a JSON object, e.g. {\"name\": \"ci\", \"expires_at\": \"2027-01-01T00:00:00Z\", \"max_spend_usd\": \"25.00\"}."));
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        string? name = null;
        DateTimeOffset? expiresAt = null;
        long? limit = null;
        foreach (var property in root.EnumerateObject())
        {
            var field = property.Name.Length > 64 ? property.Name[..64] : property.Name;
            if (!seen.Add(property.Name))
            {
                return (null, Problem.Validation(field, $"'{field}' appears more than once."));
            }

            var value = property.Value;
            Problem? invalid = null;
            switch (property.Name)
            {
                case "name":
                    (name, invalid) = ReadName(value);
                    break;
                case "expires_at":
                    (expiresAt, invalid) = ReadExpiry(value, now);
                    break;
                case "max_spend_usd":
                    (limit, invalid) = ReadLimit(value);
                    break;
                default:
                    invalid = Problem.Validation(field, "Unknown field; send name, expires_at and max_spend_usd (all optional).");
                    break;
            }

            if (invalid is not null)
            {
                return (null, invalid);
            }
        }

        return (new ApiKeyRequest(name, expiresAt, limit), null);
    }

    private static (string?, Problem?) ReadName(JsonElement value) =>
        value.ValueKind == JsonValueKind.Null ? (null, null)
        : value.ValueKind == JsonValueKind.String && value.GetString() is { Length: >= 1 and <= 200 } n && !SubmissionParser.HasHostileCharacters(n) ? (n, null)
        : (null, Problem.Validation("name", "'name' must be 1 to 200 printable characters."));

    private static (DateTimeOffset?, Problem?) ReadExpiry(JsonElement value, DateTimeOffset now)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return (null, null);
        }

        if (value.ValueKind != JsonValueKind.String
            || value.GetString() is not { Length: >= 10 and <= 40 } text
            || !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            return (null, Problem.Validation("expires_at", "'expires_at' must be an RFC 3339 time, e.g. \"2027-01-01T00:00:00Z\"."));
        }

        return at <= now
            ? (null, Problem.Validation("expires_at", "'expires_at' must be in the future."))
            : (at, null);
    }

    private static (long?, Problem?) ReadLimit(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Null)
        {
            return (null, null);
        }

        var text = value.ValueKind switch { JsonValueKind.String => value.GetString(), JsonValueKind.Number => value.GetRawText(), _ => null };
        return text is not null && Money.TryParseUsd(text, out var micros) && micros > 0 && micros <= MaxLimitMicros
            ? (micros, null)
            : (null, Problem.Validation("max_spend_usd", "'max_spend_usd' must be a positive USD amount up to 1000000 with at most six decimals, e.g. \"25.00\"."));
    }
}
