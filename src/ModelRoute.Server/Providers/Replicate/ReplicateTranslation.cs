using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Replicate;

/// <summary>
/// Canonical inputs to a Replicate prediction's <c>input</c>, and a prediction's <c>output</c>
/// back to the canonical output (docs/providers/replicate.md).
/// </summary>
public static class ReplicateTranslation
{
    /// <summary>The prediction's <c>input</c>: the canonical fields translated, then <c>provider_options</c> over them.</summary>
    public static JsonObject Input(ProviderCall call)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var input = doc.RootElement;
        var result = new JsonObject();
        switch (call.Model.Modality)
        {
            case Modality.Text:
                var (system, prompt) = Prompt(input);
                result["prompt"] = prompt;
                if (system.Length > 0)
                {
                    result["system_prompt"] = system;
                }

                Copy(input, result, "max_tokens", "max_tokens");
                Copy(input, result, "temperature", "temperature");
                Copy(input, result, "top_p", "top_p");
                break;
            case Modality.Image:
                Copy(input, result, "prompt", "prompt");
                Copy(input, result, "n", "num_outputs");
                if (input.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.String && AspectRatio(size.GetString()!) is { } ratio)
                {
                    result["aspect_ratio"] = ratio;
                }

                break;
            case Modality.Video:
            case Modality.Audio:
                Copy(input, result, "prompt", "prompt");
                Copy(input, result, "text", "text");
                Copy(input, result, "duration_seconds", "duration");
                break;
            case Modality.Embedding:
                Copy(input, result, "input", input.TryGetProperty("input", out var e) && e.ValueKind == JsonValueKind.Array ? "texts" : "text");
                break;
        }

        if (input.TryGetProperty("provider_options", out var options) && options.ValueKind == JsonValueKind.Object)
        {
            foreach (var option in options.EnumerateObject())
            {
                result[option.Name] = JsonNode.Parse(option.Value.GetRawText());
            }
        }

        return result;
    }

    /// <summary>A <c>succeeded</c> prediction as the canonical result.</summary>
    public static ProviderOutcome Completed(string provider, ProviderCall call, JsonElement prediction)
    {
        var output = prediction.TryGetProperty("output", out var o) ? o : default;
        var predictSeconds = prediction.TryGetProperty("metrics", out var metrics) && metrics.ValueKind == JsonValueKind.Object
            && metrics.TryGetProperty("predict_time", out var pt) && pt.ValueKind == JsonValueKind.Number ? pt.GetDouble() : 0;
        var id = call.Execution.Id;
        switch (call.Model.Modality)
        {
            case Modality.Text:
            {
                var text = output.ValueKind switch
                {
                    JsonValueKind.String => output.GetString()!,
                    JsonValueKind.Array => string.Concat(output.EnumerateArray().Where(t => t.ValueKind == JsonValueKind.String).Select(t => t.GetString())),
                    _ => null,
                };
                if (text is null)
                {
                    return Malformed(provider, "a text model's output is neither a string nor an array of strings");
                }

                var usage = new Usage(
                    InputTokens: Metric(metrics, "input_token_count") ?? CostEstimator.TokensFor(Prompt(Parse(call)).Prompt.Length),
                    OutputTokens: Metric(metrics, "output_token_count") ?? CostEstimator.TokensFor(text.Length),
                    DurationMilliseconds: (long)Math.Round(predictSeconds * 1000));
                return new ProviderOutcome.Completed(Json(new Dictionary<string, object> { ["text"] = text, ["finish_reason"] = "stop" }), usage, []);
            }

            case Modality.Image:
            {
                var urls = Urls(output);
                if (urls.Count == 0)
                {
                    return Malformed(provider, "an image model's output holds no file URL");
                }

                var artifacts = urls.Select((u, i) => Artifact($"image-{i}", u, ".png")).ToList();
                var images = artifacts.Select(a => new Dictionary<string, string> { ["artifact"] = a.Name, ["url"] = $"/v1/executions/{id}/artifacts/{a.Name}" }).ToList();
                var usage = new Usage(Images: artifacts.Count, DurationMilliseconds: (long)Math.Round(predictSeconds * 1000));
                return new ProviderOutcome.Completed(Json(new Dictionary<string, object> { ["images"] = images }), usage, artifacts);
            }

            case Modality.Video:
            case Modality.Audio:
            {
                var urls = Urls(output);
                if (urls.Count == 0)
                {
                    return Malformed(provider, "the model's output holds no file URL");
                }

                var video = call.Model.Modality == Modality.Video;
                var artifact = Artifact(video ? "video" : "audio", urls[0], video ? ".mp4" : ".wav");
                var seconds = Int(Parse(call), "duration_seconds") ?? call.Model.DefaultDurationSeconds;
                var output2 = new Dictionary<string, object>
                {
                    [video ? "video" : "audio"] = new Dictionary<string, string> { ["artifact"] = artifact.Name, ["url"] = $"/v1/executions/{id}/artifacts/{artifact.Name}" },
                    ["duration_seconds"] = seconds,
                };
                return new ProviderOutcome.Completed(Json(output2), new Usage(DurationMilliseconds: seconds * 1000L), [artifact]);
            }

            default:
            {
                if (output.ValueKind != JsonValueKind.Array)
                {
                    return Malformed(provider, "an embedding model's output is not an array");
                }

                var vectors = output.EnumerateArray().All(v => v.ValueKind == JsonValueKind.Number)
                    ? new JsonArray(JsonNode.Parse(output.GetRawText()))
                    : JsonNode.Parse(output.GetRawText())!.AsArray();
                var text = Parse(call).TryGetProperty("input", out var t) ? t.GetRawText() : "";
                var result = new JsonObject { ["embeddings"] = vectors };
                return new ProviderOutcome.Completed(result.ToJsonString(), new Usage(InputTokens: CostEstimator.TokensFor(text.Length), DurationMilliseconds: (long)Math.Round(predictSeconds * 1000)), []);
            }
        }
    }

    /// <summary>An output file: by its URL (copied by the gateway), or decoded at once from a <c>data:</c> URI.</summary>
    public static ArtifactContent Artifact(string stem, string url, string defaultExtension)
    {
        if (url.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = url.IndexOf(',', StringComparison.Ordinal);
            var meta = url[5..comma];
            var type = meta.Split(';')[0];
            var data = meta.EndsWith(";base64", StringComparison.OrdinalIgnoreCase)
                ? Convert.FromBase64String(url[(comma + 1)..])
                : Encoding.UTF8.GetBytes(Uri.UnescapeDataString(url[(comma + 1)..]));
            var typeExtension = ExtensionOf(type);
            return new ArtifactContent(stem + (typeExtension ?? defaultExtension), type.Length > 0 ? type : null, data);
        }

        var uri = new Uri(url);
        var extension = Path.GetExtension(uri.AbsolutePath).ToLowerInvariant();
        if (extension.Length is < 2 or > 6 || !extension[1..].All(char.IsAsciiLetterOrDigit))
        {
            extension = defaultExtension;
        }

        return new ArtifactContent(stem + extension, TypeOf(extension), null, uri);
    }

    /// <summary>Every file URL in an output: a string, an array of them, or an object's string members.</summary>
    public static List<string> Urls(JsonElement output)
    {
        var urls = new List<string>();
        void Visit(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.String when IsFileUrl(e.GetString()!):
                    urls.Add(e.GetString()!);
                    break;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                    {
                        Visit(item);
                    }

                    break;
                case JsonValueKind.Object:
                    foreach (var member in e.EnumerateObject())
                    {
                        Visit(member.Value);
                    }

                    break;
            }
        }

        Visit(output);
        return urls;
    }

    private static bool IsFileUrl(string s) =>
        (Uri.TryCreate(s, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttps || u.Scheme == Uri.UriSchemeHttp))
        || (s.StartsWith("data:", StringComparison.OrdinalIgnoreCase) && s.Contains(',', StringComparison.Ordinal));

    private static string? TypeOf(string extension) => extension switch
    {
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".webp" => "image/webp",
        ".gif" => "image/gif",
        ".mp4" => "video/mp4",
        ".webm" => "video/webm",
        ".mov" => "video/quicktime",
        ".wav" => "audio/wav",
        ".mp3" => "audio/mpeg",
        ".ogg" => "audio/ogg",
        _ => null,
    };

    private static string? ExtensionOf(string type) => type.ToLowerInvariant() switch
    {
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        "image/webp" => ".webp",
        "image/gif" => ".gif",
        "video/mp4" => ".mp4",
        "video/webm" => ".webm",
        "audio/wav" or "audio/x-wav" => ".wav",
        "audio/mpeg" => ".mp3",
        _ => null,
    };

    private static ProviderOutcome Malformed(string provider, string what) =>
        new ProviderOutcome.Failed(new Executions.ExecutionError(Executions.ExecutionErrorCodes.ProviderError, $"Replicate's prediction succeeded but {what}.", false, provider));

    private static JsonElement Parse(ProviderCall call)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        return doc.RootElement.Clone();
    }

    private static (string System, string Prompt) Prompt(JsonElement input)
    {
        if (input.TryGetProperty("prompt", out var p) && p.ValueKind == JsonValueKind.String)
        {
            return ("", p.GetString()!);
        }

        var system = new StringBuilder();
        var prompt = new StringBuilder();
        if (input.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray())
            {
                var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : "user";
                var content = message.TryGetProperty("content", out var c) ? Content(c) : "";
                if (role == "system")
                {
                    system.Append(system.Length > 0 ? "\n" : "").Append(content);
                }
                else
                {
                    // A single turn is sent as is; a conversation is laid out with its roles.
                    prompt.Append(prompt.Length > 0 ? "\n" : "").Append(CultureInfo.InvariantCulture, $"{role}: {content}");
                }
            }
        }

        var text = prompt.ToString();
        var turns = messages.ValueKind == JsonValueKind.Array ? messages.EnumerateArray().Count(m => !(m.TryGetProperty("role", out var r) && r.GetString() == "system")) : 0;
        if (turns == 1)
        {
            text = text[(text.IndexOf(": ", StringComparison.Ordinal) + 2)..];
        }

        return (system.ToString(), text);
    }

    private static string Content(JsonElement content) => content.ValueKind switch
    {
        JsonValueKind.String => content.GetString()!,
        JsonValueKind.Array => string.Concat(content.EnumerateArray()
            .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
            .Select(p => p.GetProperty("text").GetString())),
        _ => "",
    };

    /// <summary>"1024x768" → "4:3".</summary>
    private static string? AspectRatio(string size)
    {
        var parts = size.Split('x', 'X', '×');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var w) || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var h) || w <= 0 || h <= 0)
        {
            return null;
        }

        var g = Gcd(w, h);
        return string.Create(CultureInfo.InvariantCulture, $"{w / g}:{h / g}");
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    private static void Copy(JsonElement from, JsonObject to, string name, string target)
    {
        if (from.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null)
        {
            to[target] = JsonNode.Parse(v.GetRawText());
        }
    }

    private static long? Metric(JsonElement metrics, string name) =>
        metrics.ValueKind == JsonValueKind.Object && metrics.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : null;

    private static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    private static string Json(object value) => JsonSerializer.Serialize(value);
}
