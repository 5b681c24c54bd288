using System.Text.Json.Nodes;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Replicate;

/// <summary>
/// Canonical inputs to a Replicate prediction's <c>input</c>, and a prediction's <c>output</c>
/// back to the canonical output (docs/providers/replicate.md).
/// </summary>
public static class ReplicateTranslation
{
    /// <summary>The prediction's <c>input</c>: the canonical fields translated, then <c>provider_options</c> over them.</summary>
    public static JsonObject Input(ProviderCall call) => CanonicalJson.TranslateInput(call, Translate);

    private static void Translate(Modality modality, JsonElement input, JsonObject result)
    {
        switch (modality)
        {
            case Modality.Text:
                var (system, prompt) = Prompt(input);
                result["prompt"] = prompt;
                if (system.Length > 0)
                {
                    result["system_prompt"] = system;
                }

                CanonicalJson.Copy(input, result, "max_tokens", "max_tokens");
                CanonicalJson.Copy(input, result, "temperature", "temperature");
                CanonicalJson.Copy(input, result, "top_p", "top_p");
                break;
            case Modality.Image:
                CanonicalJson.Copy(input, result, "prompt", "prompt");
                CanonicalJson.Copy(input, result, "n", "num_outputs");
                if (input.TryGetProperty("size", out var size) && size.ValueKind == JsonValueKind.String && AspectRatio(size.GetString()!) is { } ratio)
                {
                    result["aspect_ratio"] = ratio;
                }

                break;
            case Modality.Video:
            case Modality.Audio:
                CanonicalJson.Copy(input, result, "prompt", "prompt");
                CanonicalJson.Copy(input, result, "text", "text");
                CanonicalJson.Copy(input, result, "duration_seconds", "duration");
                break;
            case Modality.Embedding:
                CanonicalJson.Copy(input, result, "input", input.TryGetProperty("input", out var e) && e.ValueKind == JsonValueKind.Array ? "texts" : "text");
                break;
        }
    }

    /// <summary>A <c>succeeded</c> prediction as the canonical result.</summary>
    public static ProviderOutcome Completed(string provider, ProviderCall call, JsonElement prediction)
    {
        var output = prediction.TryGetProperty("output", out var o) ? o : default;
        var metrics = prediction.TryGetProperty("metrics", out var m) ? m : default;
        var predictSeconds = metrics.ValueKind == JsonValueKind.Object
            && metrics.TryGetProperty("predict_time", out var pt) && pt.ValueKind == JsonValueKind.Number ? pt.GetDouble() : 0;
        var predictMilliseconds = (long)Math.Round(predictSeconds * 1000);
        return call.Model.Modality switch
        {
            Modality.Text => TextCompleted(provider, call, output, metrics, predictMilliseconds),
            Modality.Image => ImagesCompleted(provider, call, output, predictMilliseconds),
            Modality.Video or Modality.Audio => MediaCompleted(provider, call, output),
            _ => EmbeddingsCompleted(provider, call, output, predictMilliseconds),
        };
    }

    private static ProviderOutcome TextCompleted(string provider, ProviderCall call, JsonElement output, JsonElement metrics, long predictMilliseconds)
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
            DurationMilliseconds: predictMilliseconds);
        return new ProviderOutcome.Completed(Json(new Dictionary<string, object> { ["text"] = text, ["finish_reason"] = "stop" }), usage, []);
    }

    private static ProviderOutcome ImagesCompleted(string provider, ProviderCall call, JsonElement output, long predictMilliseconds)
    {
        var urls = Urls(output);
        if (urls.Count == 0)
        {
            return Malformed(provider, "an image model's output holds no file URL");
        }

        var artifacts = urls.Select((u, i) => FileOutputs.Artifact($"image-{i}", u, ".png")).ToList();
        var usage = new Usage(Images: artifacts.Count, DurationMilliseconds: predictMilliseconds);
        return new ProviderOutcome.Completed(FileOutputs.Images(artifacts, call.Execution.Id), usage, artifacts);
    }

    private static ProviderOutcome MediaCompleted(string provider, ProviderCall call, JsonElement output)
    {
        var urls = Urls(output);
        if (urls.Count == 0)
        {
            return Malformed(provider, "the model's output holds no file URL");
        }

        var video = call.Model.Modality == Modality.Video;
        var artifact = FileOutputs.Artifact(video ? "video" : "audio", urls[0], video ? ".mp4" : ".wav");
        var seconds = Int(Parse(call), "duration_seconds") ?? call.Model.DefaultDurationSeconds;
        return new ProviderOutcome.Completed(FileOutputs.Media(video, artifact, call.Execution.Id, seconds), new Usage(DurationMilliseconds: seconds * 1000L), [artifact]);
    }

    private static ProviderOutcome EmbeddingsCompleted(string provider, ProviderCall call, JsonElement output, long predictMilliseconds)
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
        return new ProviderOutcome.Completed(result.ToJsonString(), new Usage(InputTokens: CostEstimator.TokensFor(text.Length), DurationMilliseconds: predictMilliseconds), []);
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

    private static long? Metric(JsonElement metrics, string name) =>
        metrics.ValueKind == JsonValueKind.Object && metrics.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l) ? l : null;

    private static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    private static string Json(object value) => JsonSerializer.Serialize(value);
}
