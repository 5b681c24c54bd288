using System.Globalization;
using System.Text.Json;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Http;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Executions;

/// <summary>A submission that passed validation, with its canonical parts.</summary>
public sealed record ParsedSubmission(
    ModelDefinition Model,
    string IdempotencyKey,
    string Input,
    long EstimatedMicros,
    string RequestHash,
    string? WebhookUrl,
    string? WebhookEvents,
    string? Metadata,
    int TimeoutSeconds,
    long? MaxCostMicros);

/// <summary>
/// Validates one submission envelope (SPEC §4–5): every field's type and range, unknown fields,
/// hostile strings. Anything wrong names its field; nothing is stored before this passes.
/// </summary>
public static class SubmissionParser
{
    private static readonly HashSet<string> EnvelopeFields = new(StringComparer.Ordinal)
    {
        "model", "input", "idempotency_key", "webhook_url", "webhook_events", "metadata", "timeout_seconds", "max_cost_usd",
    };

    private static readonly HashSet<string> SimulatedFailures = new(StringComparer.Ordinal)
    {
        "timeout", "rate_limit", "server_error", "content_policy", "bad_response",
    };

    private static readonly HashSet<string> UsageFields = new(StringComparer.Ordinal)
    {
        "input_tokens", "output_tokens", "cached_input_tokens", "images", "duration_seconds", "duration_ms",
    };

    public static (ParsedSubmission? Submission, Problem? Problem) Parse(JsonElement root, ModelCatalog catalog, LimitsOptions limits, string fieldPrefix = "")
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Fail(fieldPrefix.Length == 0 ? "body" : fieldPrefix.TrimEnd('.'), "A submission must be a JSON object.");
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (!EnvelopeFields.Contains(property.Name))
            {
                return Fail(fieldPrefix + Printable(property.Name), $"Unknown field '{Printable(property.Name)}'. Model parameters belong inside 'input'.");
            }

            if (!seen.Add(property.Name))
            {
                return Fail(fieldPrefix + property.Name, $"The field '{property.Name}' appears more than once.");
            }
        }

        // model
        if (!root.TryGetProperty("model", out var modelElement) || modelElement.ValueKind != JsonValueKind.String || modelElement.GetString() is not { Length: > 0 and <= 200 } modelName)
        {
            return Fail(fieldPrefix + "model", "'model' is required: a model name such as 'sim/text' (see GET /v1/models).");
        }

        if (HasHostileCharacters(modelName))
        {
            return Fail(fieldPrefix + "model", "'model' contains control or invisible characters.");
        }

        // idempotency_key
        if (!root.TryGetProperty("idempotency_key", out var keyElement) || keyElement.ValueKind == JsonValueKind.Null)
        {
            return Fail(fieldPrefix + "idempotency_key", "'idempotency_key' is required on every submission.");
        }

        if (keyElement.ValueKind != JsonValueKind.String || keyElement.GetString() is not { Length: >= 1 and <= 255 } key)
        {
            return Fail(fieldPrefix + "idempotency_key", "'idempotency_key' must be a string of 1 to 255 printable characters.");
        }

        if (HasHostileCharacters(key))
        {
            return Fail(fieldPrefix + "idempotency_key", "'idempotency_key' must contain printable characters only.");
        }

        // input
        if (!root.TryGetProperty("input", out var input) || input.ValueKind != JsonValueKind.Object)
        {
            return Fail(fieldPrefix + "input", "'input' is required and must be a JSON object.");
        }

        var inputJson = RawJson.Compact(input);
        if (System.Text.Encoding.UTF8.GetByteCount(inputJson) > limits.MaxInputBytes)
        {
            return (null, Problem.TooLarge($"'input' exceeds {limits.MaxInputBytes} bytes.") with { Field = fieldPrefix + "input" });
        }

        // webhook_url
        string? webhookUrl = null;
        if (root.TryGetProperty("webhook_url", out var urlElement) && urlElement.ValueKind != JsonValueKind.Null)
        {
            if (urlElement.ValueKind != JsonValueKind.String || ParseWebhookUrl(urlElement.GetString()!) is not { } uri)
            {
                return Fail(fieldPrefix + "webhook_url", "'webhook_url' must be an absolute http or https URL of at most 2048 characters.");
            }

            webhookUrl = uri.AbsoluteUri;
        }

        // webhook_events
        string? webhookEvents = null;
        if (root.TryGetProperty("webhook_events", out var eventsElement) && eventsElement.ValueKind != JsonValueKind.Null)
        {
            if (eventsElement.ValueKind != JsonValueKind.Array || eventsElement.GetArrayLength() > 10)
            {
                return Fail(fieldPrefix + "webhook_events", "'webhook_events' must be an array of event types.");
            }

            foreach (var item in eventsElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String || !Webhooks.WebhookEventTypes.All.Contains(item.GetString()!))
                {
                    return Fail(fieldPrefix + "webhook_events", $"'webhook_events' items must be among: {string.Join(", ", Webhooks.WebhookEventTypes.All.Order(StringComparer.Ordinal))}.");
                }
            }

            webhookEvents = RawJson.Compact(eventsElement);
        }

        // metadata
        string? metadata = null;
        if (root.TryGetProperty("metadata", out var metadataElement) && metadataElement.ValueKind != JsonValueKind.Null)
        {
            if (ValidateMetadata(metadataElement) is { } detail)
            {
                return Fail(fieldPrefix + "metadata", detail);
            }

            metadata = RawJson.Compact(metadataElement);
        }

        // catalog lookup after the envelope's own shape is known to be right
        if (catalog.Find(modelName) is not { } model)
        {
            return (null, new Problem(422, Http.ErrorCodes.ModelNotFound, $"There is no model named '{Truncate(modelName)}'. GET /v1/models lists them.", fieldPrefix + "model"));
        }

        if (ValidateInput(model, input) is { } inputProblem)
        {
            return Fail(fieldPrefix + "input." + inputProblem.Field, inputProblem.Detail);
        }

        // timeout_seconds
        var maxTimeout = (int)Math.Min(int.MaxValue, model.MaxTimeout.TotalSeconds);
        var timeoutSeconds = (int)Math.Ceiling(model.DefaultTimeout.TotalSeconds);
        if (root.TryGetProperty("timeout_seconds", out var timeoutElement) && timeoutElement.ValueKind != JsonValueKind.Null)
        {
            if (timeoutElement.ValueKind != JsonValueKind.Number || !timeoutElement.TryGetInt32(out timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > maxTimeout)
            {
                return Fail(fieldPrefix + "timeout_seconds", $"'timeout_seconds' must be a whole number from 1 to {maxTimeout} for {model.Name}.");
            }
        }

        // max_cost_usd
        long? maxCost = null;
        if (root.TryGetProperty("max_cost_usd", out var costElement) && costElement.ValueKind != JsonValueKind.Null)
        {
            var text = costElement.ValueKind switch
            {
                JsonValueKind.String => costElement.GetString(),
                JsonValueKind.Number => costElement.GetRawText(),
                _ => null,
            };
            if (text is null || !Money.TryParseUsd(text, out var capMicros))
            {
                return Fail(fieldPrefix + "max_cost_usd", "'max_cost_usd' must be a non-negative decimal amount in USD with at most six decimals, e.g. \"0.50\".");
            }

            maxCost = capMicros;
        }

        var hash = RawJson.CanonicalHash(
        [
            ("model", modelElement),
            ("input", input),
            ("webhook_url", Optional(root, "webhook_url")),
            ("webhook_events", Optional(root, "webhook_events")),
            ("metadata", Optional(root, "metadata")),
            ("timeout_seconds", Optional(root, "timeout_seconds")),
        ]);

        return (new ParsedSubmission(model, key, inputJson, CostEstimator.Estimate(model, input), hash, webhookUrl, webhookEvents, metadata, timeoutSeconds, maxCost), null);
    }

    /// <summary>An absolute http(s) URL with a host, or null. Where it may point is the URL policy's business.</summary>
    public static Uri? ParseWebhookUrl(string url) =>
        url.Length is > 0 and <= 2048 && !HasHostileCharacters(url)
        && Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && !string.IsNullOrEmpty(uri.Host)
            ? uri
            : null;

    /// <summary>Control, format (e.g. bidirectional overrides), surrogate, private-use and unassigned characters.</summary>
    public static bool HasHostileCharacters(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(value, i);
                if (category is UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
                {
                    return true;
                }

                i++;
                continue;
            }

            if (CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                return true;
            }
        }

        return false;
    }

    private static JsonElement? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static string? ValidateMetadata(JsonElement metadata)
    {
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            return "'metadata' must be an object of string keys to string, number or boolean values.";
        }

        var count = 0;
        foreach (var property in metadata.EnumerateObject())
        {
            if (++count > 50)
            {
                return "'metadata' may have at most 50 keys.";
            }

            if (property.Name.Length is 0 or > 40 || HasHostileCharacters(property.Name))
            {
                return "'metadata' keys must be 1 to 40 printable characters.";
            }

            switch (property.Value.ValueKind)
            {
                case JsonValueKind.String when property.Value.GetString()!.Length > 500:
                    return $"'metadata.{property.Name}' is longer than 500 characters.";
                case JsonValueKind.String or JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False:
                    break;
                default:
                    return $"'metadata.{property.Name}' must be a string, number or boolean.";
            }
        }

        return null;
    }

    private sealed record InputProblem(string Field, string Detail);

    private static InputProblem? ValidateInput(ModelDefinition model, JsonElement input)
    {
        if (input.TryGetProperty("provider_options", out var options) && options.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
        {
            return new("provider_options", "'provider_options' must be an object; it is passed to the provider untouched.");
        }

        if (input.TryGetProperty("simulate", out var simulate) && ValidateSimulate(simulate) is { } simulateProblem)
        {
            return simulateProblem;
        }

        switch (model.Modality)
        {
            case Modality.Text:
                if (!input.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() is 0 or > 10_000)
                {
                    return new("messages", "A text model needs 'messages': a non-empty array of {role, content}.");
                }

                var index = 0;
                foreach (var message in messages.EnumerateArray())
                {
                    if (message.ValueKind != JsonValueKind.Object
                        || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                        || role.GetString() is not ("system" or "developer" or "user" or "assistant" or "tool"))
                    {
                        return new($"messages[{index}].role", "Each message needs a 'role' of system, developer, user, assistant or tool.");
                    }

                    if (!message.TryGetProperty("content", out var content) || content.ValueKind is not (JsonValueKind.String or JsonValueKind.Array))
                    {
                        return new($"messages[{index}].content", "Each message needs 'content': a string or an array of parts.");
                    }

                    index++;
                }

                return Integer(input, "max_tokens", 1, 1_000_000) ?? Number(input, "temperature", 0, 2) ?? Number(input, "top_p", 0, 1);

            case Modality.Image:
                return RequiredString(input, "prompt") ?? Integer(input, "n", 1, 10) ?? OptionalString(input, "size");

            case Modality.Video:
                return RequiredString(input, "prompt") ?? Integer(input, "duration_seconds", 1, 600);

            case Modality.Audio:
                if (!input.TryGetProperty("prompt", out _) && !input.TryGetProperty("text", out _))
                {
                    return new("prompt", "An audio model needs 'prompt' (or 'text' for speech).");
                }

                return OptionalString(input, "prompt") ?? OptionalString(input, "text") ?? Integer(input, "duration_seconds", 1, 3600);

            case Modality.Embedding:
                if (!input.TryGetProperty("input", out var embedInput)
                    || !(embedInput.ValueKind == JsonValueKind.String
                         || (embedInput.ValueKind == JsonValueKind.Array && embedInput.GetArrayLength() > 0 && embedInput.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))))
                {
                    return new("input", "An embedding model needs 'input': a string or a non-empty array of strings.");
                }

                return null;

            default:
                return null;
        }
    }

    private static InputProblem? ValidateSimulate(JsonElement simulate)
    {
        if (simulate.ValueKind != JsonValueKind.Object)
        {
            return new("simulate", "'simulate' must be an object.");
        }

        foreach (var property in simulate.EnumerateObject())
        {
            switch (property.Name)
            {
                case "latency_ms" or "retry_after_ms":
                    if (Integer(simulate, property.Name, 0, 600_000) is { } p)
                    {
                        return p with { Field = "simulate." + p.Field };
                    }

                    break;
                case "fail_times":
                    if (Integer(simulate, property.Name, 0, 100) is { } f)
                    {
                        return f with { Field = "simulate." + f.Field };
                    }

                    break;
                case "fail":
                    if (property.Value.ValueKind != JsonValueKind.String || !SimulatedFailures.Contains(property.Value.GetString()!))
                    {
                        return new("simulate.fail", $"'simulate.fail' must be one of {string.Join(", ", SimulatedFailures)}.");
                    }

                    break;
                case "usage":
                    if (property.Value.ValueKind != JsonValueKind.Object)
                    {
                        return new("simulate.usage", "'simulate.usage' must be an object.");
                    }

                    foreach (var u in property.Value.EnumerateObject())
                    {
                        if (!UsageFields.Contains(u.Name) || u.Value.ValueKind != JsonValueKind.Number || !u.Value.TryGetInt64(out var n) || n < 0 || n > 1_000_000_000)
                        {
                            return new("simulate.usage." + Printable(u.Name), $"'simulate.usage' takes non-negative whole numbers for {string.Join(", ", UsageFields)}.");
                        }
                    }

                    break;
                default:
                    return new("simulate." + Printable(property.Name), "Unknown 'simulate' field; use latency_ms, fail, fail_times, retry_after_ms or usage.");
            }
        }

        return null;
    }

    private static InputProblem? Integer(JsonElement e, string name, long min, long max) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null
            ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= min && n <= max
                ? null
                : new(name, $"'{name}' must be a whole number from {min} to {max}.");

    private static InputProblem? Number(JsonElement e, string name, decimal min, decimal max) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null
            ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var n) && n >= min && n <= max
                ? null
                : new(name, $"'{name}' must be a number from {min} to {max}.");

    private static InputProblem? RequiredString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0
            ? null
            : new(name, $"'{name}' is required and must be a non-empty string.");

    private static InputProblem? OptionalString(JsonElement e, string name) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind is JsonValueKind.String or JsonValueKind.Null
            ? null
            : new(name, $"'{name}' must be a string.");

    private static (ParsedSubmission?, Problem?) Fail(string field, string detail) => (null, Problem.Validation(field, detail));

    /// <summary>A field name safe to echo back: no control characters, bounded length.</summary>
    private static string Printable(string name)
    {
        var cleaned = new string([.. name.Take(64).Select(c => char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format ? '?' : c)]);
        return cleaned;
    }

    private static string Truncate(string value) => Printable(value.Length > 100 ? value[..100] + "…" : value);
}
