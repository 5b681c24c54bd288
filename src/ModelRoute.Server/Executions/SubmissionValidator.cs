using ModelRoute.Server.Http;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Webhooks;

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
/// Validates one submission (docs/api.md): every field's type and range, unknown fields, hostile strings, the model's
/// <c>input</c> rules and the providers' own (<see cref="IProviderInputValidator"/>). Anything wrong names its field;
/// nothing is stored before this passes. Checks run in a fixed order, so the first problem is always the same one.
/// </summary>
public sealed class SubmissionValidator(ModelCatalog catalog, IOptions<ModelRouteOptions> options, IEnumerable<IProviderInputValidator> providerValidators)
{
    private readonly LimitsOptions _limits = options.Value.Limits;
    private readonly IProviderInputValidator[] _providerValidators = [.. providerValidators];

    /// <summary>Reads and validates one submission; field names in problems carry <paramref name="fieldPrefix"/>.</summary>
    public (ParsedSubmission? Submission, Problem? Problem) Parse(JsonElement root, string fieldPrefix = "") =>
        SubmissionRequest.Read(root, fieldPrefix, out var request) is { } problem ? (null, problem) : Validate(request, fieldPrefix);

    public (ParsedSubmission? Submission, Problem? Problem) Validate(in SubmissionRequest request, string fieldPrefix = "")
    {
        if (Identity(request, fieldPrefix, out var modelName, out var key) is { } identityProblem)
        {
            return (null, identityProblem);
        }

        var input = request.Input;
        if (Input(input, fieldPrefix, out var inputJson) is { } inputShapeProblem)
        {
            return (null, inputShapeProblem);
        }

        if (Webhook(request, fieldPrefix, out var webhookUrl, out var webhookEvents) is { } webhookProblem)
        {
            return (null, webhookProblem);
        }

        string? metadata = null;
        if (SubmissionRequest.Given(request.Metadata) is { } metadataElement)
        {
            if (ValidateMetadata(metadataElement) is { } detail)
            {
                return Fail(fieldPrefix + "metadata", detail);
            }

            metadata = RawJson.Compact(metadataElement);
        }

        // The catalog is asked only once the envelope's own shape is known to be right.
        if (catalog.Find(modelName) is not { } model)
        {
            return (null, new Problem(422, ErrorCodes.ModelNotFound, $"There is no model named '{SubmissionParser.Truncate(modelName)}'. GET /v1/models lists them.", fieldPrefix + "model"));
        }

        if (ModalityInput.Validate(model, input, _providerValidators) is { } inputProblem)
        {
            return Fail(fieldPrefix + "input." + inputProblem.Field, inputProblem.Detail);
        }

        if (Limits(request, model, fieldPrefix, out var timeoutSeconds, out var maxCost) is { } limitProblem)
        {
            return (null, limitProblem);
        }

        var hash = RawJson.CanonicalHash(
        [
            ("model", request.Model),
            ("input", input),
            ("webhook_url", SubmissionRequest.Given(request.WebhookUrl)),
            ("webhook_events", SubmissionRequest.Given(request.WebhookEvents)),
            ("metadata", SubmissionRequest.Given(request.Metadata)),
            ("timeout_seconds", SubmissionRequest.Given(request.TimeoutSeconds)),
        ]);

        return (new ParsedSubmission(model, key, inputJson, CostEstimator.Estimate(model, input), hash, webhookUrl, webhookEvents, metadata, timeoutSeconds, maxCost), null);
    }

    private static Problem? Identity(in SubmissionRequest request, string fieldPrefix, out string modelName, out string key)
    {
        modelName = key = "";
        if (request.Model.ValueKind != JsonValueKind.String || request.Model.GetString() is not { Length: > 0 and <= 200 } model)
        {
            return Problem.Validation(fieldPrefix + "model", "'model' is required: a model name such as 'sim/text' (see GET /v1/models).");
        }

        if (SubmissionParser.HasHostileCharacters(model))
        {
            return Problem.Validation(fieldPrefix + "model", "'model' contains control or invisible characters.");
        }

        modelName = model;
        var keyElement = request.IdempotencyKey;
        if (keyElement.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return Problem.Validation(fieldPrefix + "idempotency_key", "'idempotency_key' is required on every submission.");
        }

        if (keyElement.ValueKind != JsonValueKind.String || keyElement.GetString() is not { Length: >= 1 and <= 255 } given)
        {
            return Problem.Validation(fieldPrefix + "idempotency_key", "'idempotency_key' must be a string of 1 to 255 printable characters.");
        }

        if (SubmissionParser.HasHostileCharacters(given))
        {
            return Problem.Validation(fieldPrefix + "idempotency_key", "'idempotency_key' must contain printable characters only.");
        }

        key = given;
        return null;
    }

    /// <summary>An object, at most <c>MaxInputBytes</c> once compacted (the compacted text is what is stored).</summary>
    private Problem? Input(JsonElement input, string fieldPrefix, out string inputJson)
    {
        inputJson = "";
        if (input.ValueKind != JsonValueKind.Object)
        {
            return Problem.Validation(fieldPrefix + "input", "'input' is required and must be a JSON object.");
        }

        inputJson = RawJson.Compact(input);
        return System.Text.Encoding.UTF8.GetByteCount(inputJson) > _limits.MaxInputBytes
            ? Problem.TooLarge($"'input' exceeds {_limits.MaxInputBytes} bytes.") with { Field = fieldPrefix + "input" }
            : null;
    }

    private static Problem? Webhook(in SubmissionRequest request, string fieldPrefix, out string? webhookUrl, out string? webhookEvents)
    {
        webhookUrl = webhookEvents = null;
        if (SubmissionRequest.Given(request.WebhookUrl) is { } urlElement)
        {
            if (urlElement.ValueKind != JsonValueKind.String || SubmissionParser.ParseWebhookUrl(urlElement.GetString()!) is not { } uri)
            {
                return Problem.Validation(fieldPrefix + "webhook_url", "'webhook_url' must be an absolute http or https URL of at most 2048 characters.");
            }

            webhookUrl = uri.AbsoluteUri;
        }

        if (SubmissionRequest.Given(request.WebhookEvents) is { } eventsElement)
        {
            if (eventsElement.ValueKind != JsonValueKind.Array || eventsElement.GetArrayLength() > 10)
            {
                return Problem.Validation(fieldPrefix + "webhook_events", "'webhook_events' must be an array of event types.");
            }

            foreach (var item in eventsElement.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String || !WebhookEventTypes.All.Contains(item.GetString()!))
                {
                    return Problem.Validation(
                        fieldPrefix + "webhook_events", $"'webhook_events' items must be among: {string.Join(", ", WebhookEventTypes.All.Order(StringComparer.Ordinal))}.");
                }
            }

            webhookEvents = RawJson.Compact(eventsElement);
        }

        return null;
    }

    private static Problem? Limits(in SubmissionRequest request, ModelDefinition model, string fieldPrefix, out int timeoutSeconds, out long? maxCost)
    {
        var maxTimeout = (int)Math.Min(int.MaxValue, model.MaxTimeout.TotalSeconds);
        timeoutSeconds = (int)Math.Ceiling(model.DefaultTimeout.TotalSeconds);
        maxCost = null;
        if (SubmissionRequest.Given(request.TimeoutSeconds) is { } timeoutElement
            && (timeoutElement.ValueKind != JsonValueKind.Number || !timeoutElement.TryGetInt32(out timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > maxTimeout))
        {
            return Problem.Validation(fieldPrefix + "timeout_seconds", $"'timeout_seconds' must be a whole number from 1 to {maxTimeout} for {model.Name}.");
        }

        if (SubmissionRequest.Given(request.MaxCostUsd) is { } costElement)
        {
            var text = costElement.ValueKind switch
            {
                JsonValueKind.String => costElement.GetString(),
                JsonValueKind.Number => costElement.GetRawText(),
                _ => null,
            };
            if (text is null || !Money.TryParseUsd(text, out var capMicros))
            {
                return Problem.Validation(fieldPrefix + "max_cost_usd", "'max_cost_usd' must be a non-negative decimal amount in USD with at most six decimals, e.g. \"0.50\".");
            }

            maxCost = capMicros;
        }

        return null;
    }

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

            if (property.Name.Length is 0 or > 40 || SubmissionParser.HasHostileCharacters(property.Name))
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

    private static (ParsedSubmission?, Problem?) Fail(string field, string detail) => (null, Problem.Validation(field, detail));
}
