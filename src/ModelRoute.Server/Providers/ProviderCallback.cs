namespace ModelRoute.Server.Providers;

/// <summary>A provider's callback as it arrived: parsed body, raw body (for signatures) and headers.</summary>
public sealed record ProviderCallback(JsonElement Body, string RawBody, IReadOnlyDictionary<string, string> Headers);
