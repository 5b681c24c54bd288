using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Executions;

/// <summary>What is wrong with a submission's <c>input</c>: the field's path inside <c>input</c>, and why.</summary>
public sealed record InputProblem(string Field, string Detail);

/// <summary>
/// A provider's own rules for its part of <c>input</c> (the simulator's <c>simulate</c> block, say). Each registered
/// validator sees every submission's input once the envelope is right and the model is known, before the model's
/// modality rules; the first problem found is the answer (docs/architecture.md, "Submissions").
/// </summary>
public interface IProviderInputValidator
{
    InputProblem? Validate(ModelDefinition model, JsonElement input);
}

/// <summary>Reusable checks of one <c>input</c> field, for the modality rules and for providers' own validators.</summary>
public static class InputRules
{
    public static InputProblem? Integer(JsonElement e, string name, long min, long max) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null
            ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n >= min && n <= max
                ? null
                : new(name, $"'{name}' must be a whole number from {min} to {max}.");

    public static InputProblem? Number(JsonElement e, string name, decimal min, decimal max) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null
            ? null
            : v.ValueKind == JsonValueKind.Number && v.TryGetDecimal(out var n) && n >= min && n <= max
                ? null
                : new(name, $"'{name}' must be a number from {min} to {max}.");

    public static InputProblem? RequiredString(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0
            ? null
            : new(name, $"'{name}' is required and must be a non-empty string.");

    public static InputProblem? OptionalString(JsonElement e, string name) =>
        !e.TryGetProperty(name, out var v) || v.ValueKind is JsonValueKind.String or JsonValueKind.Null
            ? null
            : new(name, $"'{name}' must be a string.");
}

/// <summary>What every model's <c>input</c> must hold for its modality (docs/api.md).</summary>
internal static class ModalityInput
{
    public static InputProblem? Validate(ModelDefinition model, JsonElement input, IProviderInputValidator[] providerValidators)
    {
        if (input.TryGetProperty("provider_options", out var options) && options.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
        {
            return new("provider_options", "'provider_options' must be an object; it is passed to the provider untouched.");
        }

        foreach (var validator in providerValidators)
        {
            if (validator.Validate(model, input) is { } providerProblem)
            {
                return providerProblem;
            }
        }

        return model.Modality switch
        {
            Modality.Text => Text(input),
            Modality.Image => InputRules.RequiredString(input, "prompt") ?? InputRules.Integer(input, "n", 1, 10) ?? InputRules.OptionalString(input, "size"),
            Modality.Video => InputRules.RequiredString(input, "prompt") ?? InputRules.Integer(input, "duration_seconds", 1, 600),
            Modality.Audio => Audio(input),
            Modality.Embedding => Embedding(input),
            _ => null,
        };
    }

    private static InputProblem? Text(JsonElement input)
    {
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

        return InputRules.Integer(input, "max_tokens", 1, 1_000_000) ?? InputRules.Number(input, "temperature", 0, 2) ?? InputRules.Number(input, "top_p", 0, 1);
    }

    private static InputProblem? Audio(JsonElement input)
    {
        if (!input.TryGetProperty("prompt", out _) && !input.TryGetProperty("text", out _))
        {
            return new("prompt", "An audio model needs 'prompt' (or 'text' for speech).");
        }

        return InputRules.OptionalString(input, "prompt") ?? InputRules.OptionalString(input, "text") ?? InputRules.Integer(input, "duration_seconds", 1, 3600);
    }

    private static InputProblem? Embedding(JsonElement input) =>
        input.TryGetProperty("input", out var embedInput)
        && (embedInput.ValueKind == JsonValueKind.String
            || (embedInput.ValueKind == JsonValueKind.Array && embedInput.GetArrayLength() > 0 && embedInput.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String)))
            ? null
            : new("input", "An embedding model needs 'input': a string or a non-empty array of strings.");
}
