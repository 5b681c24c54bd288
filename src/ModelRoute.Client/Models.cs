using System.Text.Json;
using System.Text.Json.Serialization;

namespace ModelRoute.Client;

/// <summary>The states of an execution, as the API names them.</summary>
public static class ExecutionStatuses
{
    /// <summary>Accepted, waiting for a provider.</summary>
    public const string Pending = "PENDING";

    /// <summary>A provider is working on it.</summary>
    public const string Processing = "PROCESSING";

    /// <summary>An asynchronous provider accepted it and will call back.</summary>
    public const string AwaitingWebhook = "AWAITING_WEBHOOK";

    /// <summary>Finished with an output (terminal).</summary>
    public const string Completed = "COMPLETED";

    /// <summary>Finished with an error (terminal).</summary>
    public const string Failed = "FAILED";

    /// <summary>Cancelled by the caller (terminal).</summary>
    public const string Cancelled = "CANCELLED";

    /// <summary>Ran out of time (terminal).</summary>
    public const string Expired = "EXPIRED";

    /// <summary>Whether <paramref name="status"/> is one an execution never leaves.</summary>
    /// <param name="status">A status such as <c>COMPLETED</c>.</param>
    /// <returns>True for COMPLETED, FAILED, CANCELLED and EXPIRED.</returns>
    public static bool IsTerminal(string? status) => status is Completed or Failed or Cancelled or Expired;
}

/// <summary>An execution: one model call, tracked by the gateway until it ends.</summary>
public sealed class Execution
{
    /// <summary>The execution id (<c>exe_…</c>).</summary>
    public string Id { get; init; } = "";

    /// <summary>Always <c>execution</c>.</summary>
    public string Object { get; init; } = "execution";

    /// <summary>The status; see <see cref="ExecutionStatuses"/>.</summary>
    public string Status { get; init; } = "";

    /// <summary>The model, e.g. <c>sim/text</c>. Absent on the thin objects of the events stream.</summary>
    public string? Model { get; init; }

    /// <summary>The idempotency key it was submitted with.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>The input as submitted.</summary>
    public JsonElement? Input { get; init; }

    /// <summary>The output, once COMPLETED.</summary>
    public JsonElement? Output { get; init; }

    /// <summary>Binary outputs kept by the gateway.</summary>
    public IReadOnlyList<ExecutionArtifact> Artifacts { get; init; } = [];

    /// <summary>The normalized error, once FAILED or EXPIRED.</summary>
    public ExecutionError? Error { get; init; }

    /// <summary>The provider that served it.</summary>
    public string? Provider { get; init; }

    /// <summary>The provider's own job id, for asynchronous providers.</summary>
    public string? ProviderJobId { get; init; }

    /// <summary>How many provider attempts were made.</summary>
    public int Attempts { get; init; }

    /// <summary>Each provider attempt.</summary>
    public IReadOnlyList<ExecutionAttempt> AttemptLog { get; init; } = [];

    /// <summary>What it is estimated to cost, holds and cost.</summary>
    public ExecutionCost? Cost { get; init; }

    /// <summary>Normalized usage, once known.</summary>
    public ExecutionUsage? Usage { get; init; }

    /// <summary>The webhook URL given at submission.</summary>
    public string? WebhookUrl { get; init; }

    /// <summary>The event types the webhook URL receives.</summary>
    public IReadOnlyList<string>? WebhookEvents { get; init; }

    /// <summary>The caller's metadata.</summary>
    public JsonElement? Metadata { get; init; }

    /// <summary>The execution's deadline in seconds.</summary>
    public int TimeoutSeconds { get; init; }

    /// <summary>When it was submitted.</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>When it last changed.</summary>
    public DateTimeOffset? UpdatedAt { get; init; }

    /// <summary>When the first attempt started.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When it ended.</summary>
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>When it expires if not finished.</summary>
    public DateTimeOffset? ExpiresAt { get; init; }

    /// <summary>The id of the OpenTelemetry trace its work is recorded in (32 hex digits); null for executions stored before traces were kept.</summary>
    public string? TraceId { get; init; }

    /// <summary>Whether the status is terminal.</summary>
    [JsonIgnore]
    public bool IsTerminal => ExecutionStatuses.IsTerminal(Status);
}

/// <summary>A binary output of an execution.</summary>
/// <param name="Name">The file name, e.g. <c>image-0.png</c>.</param>
/// <param name="ContentType">Its media type.</param>
/// <param name="SizeBytes">Its size.</param>
/// <param name="Url">The gateway path that downloads it.</param>
/// <param name="Sha256">The SHA-256 of its bytes (lowercase hex), computed when it was kept; null for artifacts kept before it was recorded.</param>
public sealed record ExecutionArtifact(string Name, string ContentType, long SizeBytes, string Url, string? Sha256 = null);

/// <summary>The normalized error of an execution.</summary>
/// <param name="Code">The error code, e.g. <c>PROVIDER_TIMEOUT</c>.</param>
/// <param name="Message">What happened.</param>
/// <param name="Retryable">Whether trying again may succeed.</param>
/// <param name="Provider">The provider that failed, if any.</param>
/// <param name="ProviderStatus">The provider's HTTP status, if any.</param>
public sealed record ExecutionError(string Code, string Message, bool Retryable, string? Provider = null, int? ProviderStatus = null);

/// <summary>One provider attempt.</summary>
/// <param name="Number">1 for the first attempt.</param>
/// <param name="Provider">The provider.</param>
/// <param name="ProviderModel">The provider's model name.</param>
/// <param name="Outcome">What came of it, e.g. <c>completed</c>.</param>
/// <param name="StartedAt">When it started.</param>
/// <param name="LatencyMs">How long it took.</param>
/// <param name="Error">Its error, if it failed.</param>
public sealed record ExecutionAttempt(int Number, string Provider, string ProviderModel, string Outcome, DateTimeOffset StartedAt, long LatencyMs, ExecutionError? Error = null);

/// <summary>Money of one execution, in USD.</summary>
/// <param name="Estimated">The estimate at submission.</param>
/// <param name="Held">The hold placed at submission.</param>
/// <param name="Actual">What was charged, once ended.</param>
/// <param name="Overage">Cost above the hold, not charged.</param>
/// <param name="Currency">Always <c>usd</c>.</param>
/// <param name="Pricing">The model's price when it was submitted.</param>
public sealed record ExecutionCost(
    decimal Estimated, decimal Held, decimal? Actual, decimal? Overage, string Currency, IReadOnlyDictionary<string, string>? Pricing = null);

/// <summary>Normalized usage of an execution.</summary>
/// <param name="InputTokens">Input tokens, excluding cached ones.</param>
/// <param name="OutputTokens">Output tokens.</param>
/// <param name="CachedInputTokens">Cached input tokens.</param>
/// <param name="Images">Images produced.</param>
/// <param name="DurationMs">Media duration produced.</param>
/// <param name="Requests">Provider requests.</param>
public sealed record ExecutionUsage(long InputTokens, long OutputTokens, long CachedInputTokens, long Images, long DurationMs, long Requests);

/// <summary>A submission: what to run and how the gateway should treat it.</summary>
public sealed record SubmitExecutionRequest
{
    /// <summary>The model, e.g. <c>sim/text</c>.</summary>
    public required string Model { get; init; }

    /// <summary>The model's input (a JSON object).</summary>
    public required JsonElement Input { get; init; }

    /// <summary>
    /// The idempotency key: the same key and body always answer the same execution. When null, the client makes one
    /// up (once per call, so its own retries never duplicate).
    /// </summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>A URL to receive this execution's webhooks.</summary>
    public string? WebhookUrl { get; init; }

    /// <summary>The event types the <see cref="WebhookUrl"/> receives.</summary>
    public IReadOnlyList<string>? WebhookEvents { get; init; }

    /// <summary>Metadata kept on the execution.</summary>
    public IReadOnlyDictionary<string, JsonElement>? Metadata { get; init; }

    /// <summary>The deadline in seconds.</summary>
    public int? TimeoutSeconds { get; init; }

    /// <summary>A cap on the hold, as a USD amount such as <c>"0.50"</c>.</summary>
    public string? MaxCostUsd { get; init; }
}

/// <summary>The result of one submission in a batch: an execution or an error.</summary>
public sealed record BatchItemResult
{
    /// <summary>The position in the batch, from 0.</summary>
    public int Index { get; init; }

    /// <summary>The HTTP status this submission would have had alone (202 new, 200 replayed, 4xx error).</summary>
    public int Status { get; init; }

    /// <summary>The execution, when accepted.</summary>
    public Execution? Execution { get; init; }

    /// <summary>The problem, when refused.</summary>
    public ApiProblem? Error { get; init; }

    /// <summary>Whether it was accepted (new or replayed).</summary>
    [JsonIgnore]
    public bool Succeeded => Execution is not null;
}

/// <summary>An RFC 9457 problem as the gateway sends it, with its <c>code</c> and <c>field</c>.</summary>
public sealed record ApiProblem
{
    /// <summary>The problem type URI.</summary>
    public string? Type { get; init; }

    /// <summary>A short title.</summary>
    public string? Title { get; init; }

    /// <summary>The HTTP status.</summary>
    public int Status { get; init; }

    /// <summary>What went wrong.</summary>
    public string? Detail { get; init; }

    /// <summary>The gateway's error code, e.g. <c>VALIDATION_ERROR</c>.</summary>
    public string? Code { get; init; }

    /// <summary>The field to blame, when there is one.</summary>
    public string? Field { get; init; }
}

/// <summary>One page of a list.</summary>
/// <typeparam name="T">The item type.</typeparam>
/// <param name="Data">The items, newest first.</param>
/// <param name="HasMore">Whether there are more pages.</param>
/// <param name="NextCursor">The cursor of the next page, or null.</param>
public sealed record Page<T>(IReadOnlyList<T> Data, bool HasMore, string? NextCursor);

/// <summary>Filters and page size for listing executions.</summary>
public sealed record ListExecutionsOptions
{
    /// <summary>Only this status.</summary>
    public string? Status { get; init; }

    /// <summary>Only this model.</summary>
    public string? Model { get; init; }

    /// <summary>Only executions created after this time.</summary>
    public DateTimeOffset? CreatedAfter { get; init; }

    /// <summary>Only executions created before this time.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }

    /// <summary>Only the execution submitted with this idempotency key.</summary>
    public string? IdempotencyKey { get; init; }

    /// <summary>Up to 3 metadata keys, each with the exact value an execution's metadata must have.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>Items per page (1–100; the server's default when null).</summary>
    public int? PageSize { get; init; }

    /// <summary>Start from this cursor instead of the newest.</summary>
    public string? Cursor { get; init; }
}

/// <summary>An event about an execution: on the events stream and as a webhook body.</summary>
public sealed record ExecutionEvent
{
    /// <summary>The event id (<c>evt_…</c>); the same on every webhook retry.</summary>
    public string Id { get; init; } = "";

    /// <summary>The event type, e.g. <c>execution.completed</c>.</summary>
    public string Type { get; init; } = "";

    /// <summary>When it happened.</summary>
    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>
    /// The execution: whole for terminal events (and fat webhooks), only <c>id</c>, <c>object</c> and <c>status</c> otherwise.
    /// </summary>
    public Execution Data { get; init; } = new();

    /// <summary>The stream's event sequence (its <c>id:</c> line); null for webhooks.</summary>
    [JsonIgnore]
    public string? Sequence { get; init; }
}

/// <summary>An account's money, in USD.</summary>
/// <param name="Balance">Credits minus charges.</param>
/// <param name="Held">Held for running executions.</param>
/// <param name="Available">What new holds may use.</param>
/// <param name="Currency">Always <c>usd</c>.</param>
public sealed record AccountBalance(decimal Balance, decimal Held, decimal Available, string Currency);

/// <summary>An account (operator view).</summary>
/// <param name="Id">The account id (<c>acct_…</c>).</param>
/// <param name="Name">Its name.</param>
/// <param name="Balance">Credits minus charges.</param>
/// <param name="Held">Held for running executions.</param>
/// <param name="Available">What new holds may use.</param>
/// <param name="Currency">Always <c>usd</c>.</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record Account(string Id, string? Name, decimal Balance, decimal Held, decimal Available, string Currency, DateTimeOffset CreatedAt);

/// <summary>A new API key. <see cref="Key"/> is shown only once.</summary>
/// <param name="Id">The key id (<c>key_…</c>).</param>
/// <param name="AccountId">Its account.</param>
/// <param name="Name">Its name.</param>
/// <param name="Key">The secret key (<c>mr_…</c>).</param>
/// <param name="Prefix">The displayable prefix.</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record ApiKey(string Id, string AccountId, string? Name, string Key, string Prefix, DateTimeOffset CreatedAt);

/// <summary>One ledger entry.</summary>
/// <param name="Id">The entry id (<c>txn_…</c>).</param>
/// <param name="Kind">credit, hold, release or charge.</param>
/// <param name="Amount">The amount.</param>
/// <param name="Balance">The balance after it.</param>
/// <param name="Held">The held amount after it.</param>
/// <param name="ExecutionId">The execution it concerns.</param>
/// <param name="Reference">The credit's reference.</param>
/// <param name="CreatedAt">When it was written.</param>
public sealed record LedgerEntry(string Id, string Kind, decimal Amount, decimal Balance, decimal Held, string? ExecutionId, string? Reference, DateTimeOffset CreatedAt);

/// <summary>A registered webhook endpoint.</summary>
/// <param name="Id">The endpoint id (<c>we_…</c>).</param>
/// <param name="Url">Where events go.</param>
/// <param name="Events">The event types it receives.</param>
/// <param name="Thin">Whether it receives thin events.</param>
/// <param name="Description">Its description.</param>
/// <param name="Status"><c>enabled</c> or <c>disabled</c>.</param>
/// <param name="Secret">The signing secret: only when created or rotated.</param>
/// <param name="CreatedAt">When it was created.</param>
public sealed record WebhookEndpoint(string Id, string Url, IReadOnlyList<string> Events, bool Thin, string? Description, string Status, string? Secret, DateTimeOffset CreatedAt);

/// <summary>A webhook endpoint to register.</summary>
/// <param name="Url">Where events go.</param>
/// <param name="Events">The event types (null: the terminal ones).</param>
/// <param name="Thin">Send only id, object and status.</param>
/// <param name="Description">A description.</param>
public sealed record CreateWebhookEndpointRequest(string Url, IReadOnlyList<string>? Events = null, bool? Thin = null, string? Description = null);
