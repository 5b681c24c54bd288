using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// Examples and field descriptions for the main request and response: a submission and the execution it answers
/// with, taken from a run against the simulator (docs/api.md#the-execution-object).
/// </summary>
internal static class ApiExamples
{
    private static readonly Dictionary<string, string> SubmissionFields = new(StringComparer.Ordinal)
    {
        ["model"] = "The model's id, as listed by GET /v1/models (e.g. `sim/text`).",
        ["input"] = "The model's input, an object passed to the provider (e.g. `{\"prompt\": \"Say hello\"}`).",
        ["idempotency_key"] = "1 to 255 printable characters, unique per account: the same key and body answer with the first execution (200); another body is 422 IDEMPOTENCY_KEY_REUSED.",
        ["webhook_url"] = "An absolute http or https URL (at most 2048 characters) that receives the execution's events, signed (docs/webhooks.md).",
        ["webhook_events"] = "The event types to send to webhook_url; all of them when left out.",
        ["metadata"] = "Up to 50 keys of your own (1 to 40 characters) with string, number or boolean values of up to 500 characters; returned as given.",
        ["timeout_seconds"] = "Seconds the execution may run before it ends as TIMEOUT: a whole number from 1 to the model's maximum; the model's default when left out.",
        ["max_cost_usd"] = "A cap on the cost in USD, as a decimal string with at most six decimals (a JSON number is accepted too); the submission is refused (422 COST_CAP_EXCEEDED) when the hold would be above it.",
    };

    public static void Apply(IDictionary<string, IOpenApiSchema> schemas)
    {
        if (schemas.TryGetValue("SubmitExecutionRequest", out var submitted) && submitted is OpenApiSchema submission)
        {
            Describe(submission, SubmissionFields);
            if (submission.Properties is { } fields && fields.TryGetValue("metadata", out var given) && given is OpenApiSchema metadata)
            {
                // A string, number or boolean per key; the generator sees only a dictionary of any JSON.
                metadata.AdditionalProperties = new OpenApiSchema
                {
                    AnyOf = [new OpenApiSchema { Type = JsonSchemaType.String }, new OpenApiSchema { Type = JsonSchemaType.Number }, new OpenApiSchema { Type = JsonSchemaType.Boolean }],
                };
            }

            submission.Examples = [Submission()];
        }

        if (schemas.TryGetValue("ExecutionView", out var viewed) && viewed is OpenApiSchema execution)
        {
            execution.Description = "An execution: what was asked, where it is, what it produced and what it cost.";
            execution.Examples = [Execution()];
        }
    }

    private static void Describe(OpenApiSchema schema, Dictionary<string, string> descriptions)
    {
        foreach (var (name, property) in schema.Properties ?? new Dictionary<string, IOpenApiSchema>())
        {
            if (property is OpenApiSchema concrete && descriptions.TryGetValue(name, out var description))
            {
                concrete.Description = description;
            }
        }
    }

    private static JsonObject Submission() => new()
    {
        ["model"] = "sim/text",
        ["input"] = new JsonObject { ["prompt"] = "Say hello" },
        ["idempotency_key"] = "hello-1",
        ["metadata"] = new JsonObject { ["user"] = "u_42" },
        ["max_cost_usd"] = "0.50",
    };

    private static JsonObject Execution() => new()
    {
        ["id"] = "exe_01m7y9jszfafe8hx2r11r1jrrw",
        ["object"] = "execution",
        ["status"] = "COMPLETED",
        ["model"] = "sim/text",
        ["idempotency_key"] = "hello-1",
        ["input"] = new JsonObject { ["prompt"] = "Say hello" },
        ["output"] = new JsonObject { ["text"] = "Simulated reply from text: Say hello", ["finish_reason"] = "stop" },
        ["artifacts"] = new JsonArray(),
        ["error"] = null,
        ["provider"] = "sim",
        ["provider_job_id"] = null,
        ["attempts"] = 1,
        ["attempt_log"] = new JsonArray(new JsonObject
        {
            ["number"] = 1, ["provider"] = "sim", ["provider_model"] = "text", ["outcome"] = "completed",
            ["started_at"] = "2026-11-21T05:34:34.531Z", ["latency_ms"] = 63, ["error"] = null,
        }),
        ["cost"] = new JsonObject
        {
            ["estimated"] = "0.000103", ["held"] = "0.010000", ["actual"] = "0.000021", ["overage"] = null, ["currency"] = "usd",
            ["pricing"] = new JsonObject { ["input_per_mtok"] = "1.000000", ["output_per_mtok"] = "2.000000" },
        },
        ["usage"] = new JsonObject
        {
            ["input_tokens"] = 3, ["output_tokens"] = 9, ["cached_input_tokens"] = 0, ["images"] = 0, ["duration_ms"] = 0, ["requests"] = 1,
        },
        ["webhook_url"] = null,
        ["webhook_events"] = null,
        ["metadata"] = new JsonObject { ["user"] = "u_42" },
        ["timeout_seconds"] = 300,
        ["created_at"] = "2026-11-21T05:34:34.512Z",
        ["updated_at"] = "2026-11-21T05:34:34.624Z",
        ["started_at"] = "2026-11-21T05:34:34.530Z",
        ["completed_at"] = "2026-11-21T05:34:34.624Z",
        ["expires_at"] = "2026-12-21T05:34:34.624Z",
        ["trace_id"] = "4bf92f3577b34da6a3ce929d0e0e4736",
    };
}
