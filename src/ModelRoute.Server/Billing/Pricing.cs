using System.Text.Json.Serialization;

namespace ModelRoute.Server.Billing;

/// <summary>
/// A model's price in micro-dollars per unit. Token prices are per million tokens, so
/// tokens × price is in pico-dollars (1e-12 USD); every component is summed in pico-dollars
/// and rounded half-up to the micro-dollar once, so no rounding error accumulates.
/// </summary>
public sealed record Price(
    [property: JsonPropertyName("input_per_mtok")] long InputPerMTok = 0,
    [property: JsonPropertyName("output_per_mtok")] long OutputPerMTok = 0,
    [property: JsonPropertyName("cached_input_per_mtok")] long? CachedInputPerMTok = null,
    [property: JsonPropertyName("per_image")] long PerImage = 0,
    [property: JsonPropertyName("per_second")] long PerSecond = 0,
    [property: JsonPropertyName("per_request")] long PerRequest = 0)
{
    public static readonly IReadOnlyDictionary<string, string> KeyNames = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["InputPerMTok"] = nameof(InputPerMTok),
        ["OutputPerMTok"] = nameof(OutputPerMTok),
        ["CachedInputPerMTok"] = nameof(CachedInputPerMTok),
        ["PerImage"] = nameof(PerImage),
        ["PerSecond"] = nameof(PerSecond),
        ["PerRequest"] = nameof(PerRequest),
    };

    /// <summary>The prices that are set, as the API shows them (USD strings, six places).</summary>
    public IReadOnlyDictionary<string, string> ToView()
    {
        var view = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Add(string name, long? micros)
        {
            if (micros is > 0)
            {
                view[name] = Money.Format(micros.Value);
            }
        }

        Add("input_per_mtok", InputPerMTok);
        Add("output_per_mtok", OutputPerMTok);
        Add("cached_input_per_mtok", CachedInputPerMTok);
        Add("per_image", PerImage);
        Add("per_second", PerSecond);
        Add("per_request", PerRequest);
        return view;
    }

    /// <summary>The cost of <paramref name="usage"/> in micro-dollars.</summary>
    public long CostOf(Usage usage)
    {
        // 128-bit so that no usage a provider (or a hostile simulate.usage) reports can wrap around.
        const long PicoPerMicro = 1_000_000;
        var pico = ((Int128)Math.Max(0, usage.InputTokens) * InputPerMTok)
            + ((Int128)Math.Max(0, usage.CachedInputTokens) * (CachedInputPerMTok ?? InputPerMTok))
            + ((Int128)Math.Max(0, usage.OutputTokens) * OutputPerMTok)
            + ((Int128)Math.Max(0, usage.Images) * PerImage * PicoPerMicro)
            + ((Int128)Math.Max(0, usage.DurationMilliseconds) * PerSecond * 1_000)
            + ((Int128)Math.Max(0, usage.Requests) * PerRequest * PicoPerMicro);
        var micros = (pico + (PicoPerMicro / 2)) / PicoPerMicro;
        return micros > long.MaxValue ? long.MaxValue : (long)micros;
    }
}

/// <summary>
/// Normalized usage. <see cref="InputTokens"/> excludes cached input, which is counted in
/// <see cref="CachedInputTokens"/>; adapters translate each provider's convention.
/// </summary>
public sealed record Usage(
    [property: JsonPropertyName("input_tokens")] long InputTokens = 0,
    [property: JsonPropertyName("output_tokens")] long OutputTokens = 0,
    [property: JsonPropertyName("cached_input_tokens")] long CachedInputTokens = 0,
    [property: JsonPropertyName("images")] long Images = 0,
    [property: JsonPropertyName("duration_ms")] long DurationMilliseconds = 0,
    [property: JsonPropertyName("requests")] long Requests = 1);
