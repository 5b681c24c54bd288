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

    public static IReadOnlyList<Artifact> Artifacts(string? json) => json is null or "[]" ? [] : Deserialize<List<Artifact>>(json) ?? [];

    public static IReadOnlyList<AttemptRecord> Attempts(string? json) => json is null or "[]" ? [] : Deserialize<List<AttemptRecord>>(json) ?? [];

    /// <summary>
    /// A stored price, parsed once per distinct text: every execution of a model stores the same one, and each state move
    /// read it again (about 1.5 % of the request threads' time). A <see cref="Billing.Price"/> is immutable, so one
    /// instance serves them all. The cache starts over once it holds <see cref="MaxCachedPrices"/> texts.
    /// </summary>
    public static Price Price(string json)
    {
        if (Prices.TryGetValue(json, out var price))
        {
            return price;
        }

        price = Deserialize<Price>(json) ?? new Price();
        if (Prices.Count >= MaxCachedPrices)
        {
            Prices.Clear(); // Prices changed many times: the ones in use now come back at once.
        }

        Prices.TryAdd(json, price);
        return price;
    }

    private const int MaxCachedPrices = 1024;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Price> Prices = new(StringComparer.Ordinal);
}
