using ModelRoute.Server.Http;

namespace ModelRoute.Server.Executions;

/// <summary>
/// One submission as it arrived (docs/api.md): each envelope field as the body's own JSON value, read in one pass
/// over the object without copying or re-serializing anything. A field that is absent is <c>default</c>
/// (<see cref="JsonValueKind.Undefined"/>). <see cref="SubmissionValidator"/> turns it into a <see cref="ParsedSubmission"/>.
/// </summary>
public readonly struct SubmissionRequest
{
    public JsonElement Model { get; private init; }

    public JsonElement Input { get; private init; }

    public JsonElement IdempotencyKey { get; private init; }

    public JsonElement WebhookUrl { get; private init; }

    public JsonElement WebhookEvents { get; private init; }

    public JsonElement Metadata { get; private init; }

    public JsonElement TimeoutSeconds { get; private init; }

    public JsonElement MaxCostUsd { get; private init; }

    /// <summary>
    /// Reads the envelope: a JSON object of known fields, each at most once. Field names in problems carry
    /// <paramref name="fieldPrefix"/> (<c>executions[3].</c> in a batch).
    /// </summary>
    public static Problem? Read(JsonElement root, string fieldPrefix, out SubmissionRequest request)
    {
        request = default;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Problem.Validation(fieldPrefix.Length == 0 ? "body" : fieldPrefix.TrimEnd('.'), "A submission must be a JSON object.");
        }

        JsonElement model = default, input = default, key = default, url = default, events = default, metadata = default, timeout = default, cost = default;
        foreach (var property in root.EnumerateObject())
        {
            var value = property.Value;
            bool? first = property.Name switch
            {
                "model" => Take(ref model, value),
                "input" => Take(ref input, value),
                "idempotency_key" => Take(ref key, value),
                "webhook_url" => Take(ref url, value),
                "webhook_events" => Take(ref events, value),
                "metadata" => Take(ref metadata, value),
                "timeout_seconds" => Take(ref timeout, value),
                "max_cost_usd" => Take(ref cost, value),
                _ => null,
            };
            if (first is null)
            {
                var name = SubmissionParser.Printable(property.Name);
                return Problem.Validation(fieldPrefix + name, $"Unknown field '{name}'. Model parameters belong inside 'input'.");
            }

            if (first == false)
            {
                return Problem.Validation(fieldPrefix + property.Name, $"The field '{property.Name}' appears more than once.");
            }
        }

        request = new SubmissionRequest
        {
            Model = model, Input = input, IdempotencyKey = key, WebhookUrl = url, WebhookEvents = events,
            Metadata = metadata, TimeoutSeconds = timeout, MaxCostUsd = cost,
        };
        return null;
    }

    /// <summary>The field's value, or null when it is absent or JSON null (as the request hash counts it).</summary>
    public static JsonElement? Given(JsonElement field) =>
        field.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null ? null : field;

    private static bool Take(ref JsonElement slot, JsonElement value)
    {
        if (slot.ValueKind != JsonValueKind.Undefined)
        {
            return false;
        }

        slot = value;
        return true;
    }
}
