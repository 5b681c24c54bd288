using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Billing;

/// <summary>Estimates an execution's cost before dispatch from the model's price and the input (docs/api.md#money).</summary>
public static class CostEstimator
{
    public static Usage EstimateUsage(ModelDefinition model, JsonElement input) => model.Modality switch
    {
        Modality.Text => new Usage(
            InputTokens: TokensFor(CountMessageCharacters(input)),
            OutputTokens: GetInt(input, "max_tokens") ?? model.DefaultMaxOutputTokens),
        Modality.Embedding => new Usage(InputTokens: TokensFor(CountEmbeddingCharacters(input))),
        Modality.Image => new Usage(Images: GetInt(input, "n") ?? 1),
        Modality.Video or Modality.Audio => new Usage(
            DurationMilliseconds: (GetInt(input, "duration_seconds") ?? model.DefaultDurationSeconds) * 1000L),
        _ => new Usage(),
    };

    public static long Estimate(ModelDefinition model, JsonElement input) => model.Price.CostOf(EstimateUsage(model, input));

    /// <summary>Characters / 4, rounded up: the usual rule of thumb for English text.</summary>
    public static long TokensFor(long characters) => (characters + 3) / 4;

    public static long CountMessageCharacters(JsonElement input)
    {
        long chars = 0;
        if (input.ValueKind == JsonValueKind.Object && input.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                if (message.ValueKind == JsonValueKind.Object && message.TryGetProperty("content", out var content))
                {
                    chars += CountContent(content);
                }
            }
        }

        if (input.ValueKind == JsonValueKind.Object && input.TryGetProperty("system", out var system) && system.ValueKind == JsonValueKind.String)
        {
            chars += system.GetString()!.Length;
        }

        return chars;
    }

    private static long CountEmbeddingCharacters(JsonElement input)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty("input", out var value))
        {
            return 0;
        }

        return CountContent(value);
    }

    private static long CountContent(JsonElement content)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return content.GetString()!.Length;
            case JsonValueKind.Array:
                long sum = 0;
                foreach (var part in content.EnumerateArray())
                {
                    if (part.ValueKind == JsonValueKind.String)
                    {
                        sum += part.GetString()!.Length;
                    }
                    else if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String)
                    {
                        sum += text.GetString()!.Length;
                    }
                }

                return sum;
            default:
                return 0;
        }
    }

    private static int? GetInt(JsonElement input, string name) =>
        input.ValueKind == JsonValueKind.Object && input.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i)
            ? i
            : null;
}
