using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Mcp;

/// <summary>
/// The tools' names, descriptions (written for a model) and input schemas (docs/mcp.md#tools). The submission tools'
/// arguments are the API's submission fields, passed to the gateway as they are, so both check them the same way.
/// </summary>
public static class GatewayToolCatalog
{
    public const string ListModels = "list_models";
    public const string SubmitExecution = "submit_execution";
    public const string SubmitBatch = "submit_batch";
    public const string GetExecution = "get_execution";
    public const string WaitForExecution = "wait_for_execution";
    public const string CancelExecution = "cancel_execution";
    public const string ListExecutions = "list_executions";
    public const string GetBalance = "get_balance";
    public const string GetArtifact = "get_artifact";

    private const string KeyAdvice =
        "idempotency_key is required: use a deterministic business key such as 'order-42-step-3' (never a random one), so that a retry " +
        "of the same step answers the execution already made instead of paying twice; the same key with a different body is refused.";

    private const string SubmissionProperties = """
        "model": { "type": "string", "description": "A model id from list_models, e.g. 'sim/text'." },
        "input": { "type": "object", "description": "The model's input: for a text model {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}]}, for an image or video model {\"prompt\": \"...\"}." },
        "idempotency_key": { "type": "string", "description": "A deterministic business key such as 'order-42-step-3' (1-255 characters)." },
        "webhook_url": { "type": "string", "description": "Optional HTTPS URL told when the execution ends." },
        "metadata": { "type": "object", "description": "Optional flat object of your own, returned with the execution." },
        "timeout_seconds": { "type": "integer", "description": "Optional: how long the execution may take before it expires." },
        "max_cost_usd": { "type": "string", "description": "Optional cost cap in dollars as a decimal string, e.g. '0.50'." }
        """;

    private const string IdProperty = """
        "id": { "type": "string", "description": "The execution id, e.g. 'exe_...'." }
        """;

    public static IList<Tool> All { get; } =
    [
        Define(ListModels, "List models",
            "Lists the models this gateway serves, with their modality (text, image, video...), pricing and timeouts. Call it before submitting to pick a model id.",
            "{}", []),
        Define(SubmitExecution, "Submit an execution",
            "Starts one model execution and returns at once with its id and status (usually PENDING); the work runs in the background and its cost is held " +
            "from the balance. Go on with other work, then call wait_for_execution or get_execution (or subscribe to modelroute://executions/{id}). " + KeyAdvice,
            SubmissionProperties, ["model", "input", "idempotency_key"]),
        Define(SubmitBatch, "Submit a batch",
            "Starts up to 1000 executions in one call; each is accepted or refused on its own (the result lists, in order, each item's status and execution or error). " +
            "Use it for fan-out work. Each item needs its own " + KeyAdvice,
            $$"""
            "executions": { "type": "array", "description": "The submissions, each with model, input and idempotency_key.",
              "items": { "type": "object", "properties": { {{SubmissionProperties}} }, "required": ["model", "input", "idempotency_key"] } }
            """, ["executions"]),
        Define(GetExecution, "Get an execution",
            "Returns an execution as it is now: status (PENDING, PROCESSING, AWAITING_WEBHOOK, COMPLETED, FAILED, CANCELLED, EXPIRED), output, artifacts, error and cost. Does not wait.",
            IdProperty, ["id"]),
        Define(WaitForExecution, "Wait for an execution",
            "Waits until the execution ends or timeout_seconds pass (at most 60, default 30), sending progress notifications while it waits, and returns the execution as it is then. " +
            "A result that is still PENDING or PROCESSING is not an error: do other work and call it again.",
            IdProperty + """
            , "timeout_seconds": { "type": "integer", "minimum": 0, "maximum": 60, "description": "How long to wait at most, in seconds (0-60, default 30)." }
            """, ["id"]),
        Define(CancelExecution, "Cancel an execution",
            "Cancels an execution that has not ended; its held cost is released. An execution that already ended answers INVALID_STATE.",
            IdProperty, ["id"]),
        Define(ListExecutions, "List executions",
            "Lists this account's executions, newest first; every filter given must match. Find the execution of a step by its idempotency_key, " +
            "or yours by the metadata you submitted (exact values), or narrow by status, model and creation time; pass next_cursor back as cursor for the next page.",
            """
            "status": { "type": "string", "enum": ["PENDING", "PROCESSING", "AWAITING_WEBHOOK", "COMPLETED", "FAILED", "CANCELLED", "EXPIRED"] },
            "model": { "type": "string", "description": "Only this model's executions." },
            "idempotency_key": { "type": "string", "description": "Only the execution submitted with this idempotency_key, e.g. 'order-42-step-3'." },
            "metadata": { "type": "object", "additionalProperties": { "type": "string" }, "maxProperties": 3,
              "description": "Up to 3 metadata keys with the exact string value each must have, e.g. {\"order\": \"42\"}." },
            "created_after": { "type": "string", "description": "Only executions created after this time: RFC 3339 (e.g. '2026-05-01T12:00:00Z') or unix seconds." },
            "created_before": { "type": "string", "description": "Only executions created before this time: RFC 3339 or unix seconds." },
            "limit": { "type": "integer", "minimum": 1, "maximum": 100, "description": "Page size (default 20)." },
            "cursor": { "type": "string", "description": "The next_cursor of the previous page." }
            """, []),
        Define(GetBalance, "Get the balance",
            "Returns the account's balance, the amount held by running executions and what is available, in US dollars as decimal strings.",
            "{}", []),
        Define(GetArtifact, "Get an artifact",
            "Returns a file an execution produced (listed in its artifacts): an image comes back as image content you can see; another file " +
            "(video, audio, a large image) as a link with its type and size.",
            IdProperty + """
            , "name": { "type": "string", "description": "The artifact's name from the execution's artifacts, e.g. 'image-0.png'." }
            """, ["id", "name"]),
    ];

    private static Tool Define(string name, string title, string description, string properties, string[] required)
    {
        var body = properties == "{}" ? "" : properties;
        var schema = $$"""{ "type": "object", "properties": { {{body}} }, "required": {{JsonSerializer.Serialize(required)}} }""";
        var readOnly = name is ListModels or GetExecution or WaitForExecution or ListExecutions or GetBalance or GetArtifact;
        return new Tool
        {
            Name = name,
            Title = title,
            Description = description,
            InputSchema = JsonDocument.Parse(schema).RootElement.Clone(),
            Annotations = new ToolAnnotations { Title = title, ReadOnlyHint = readOnly, IdempotentHint = name != CancelExecution, OpenWorldHint = false },
        };
    }
}
