using System.Text.Json.Serialization;

namespace ModelRoute.Server.Executions;

public enum ExecutionStatus
{
    Pending,
    Processing,
    AwaitingWebhook,
    Completed,
    Failed,
    Cancelled,
    Expired,
}

public static class ExecutionStatuses
{
    public static readonly ExecutionStatus[] NonTerminal = [ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.AwaitingWebhook];

    public static bool IsTerminal(this ExecutionStatus status) => status >= ExecutionStatus.Completed;

    public static string ToWire(this ExecutionStatus status) => status switch
    {
        ExecutionStatus.Pending => "PENDING",
        ExecutionStatus.Processing => "PROCESSING",
        ExecutionStatus.AwaitingWebhook => "AWAITING_WEBHOOK",
        ExecutionStatus.Completed => "COMPLETED",
        ExecutionStatus.Failed => "FAILED",
        ExecutionStatus.Cancelled => "CANCELLED",
        _ => "EXPIRED",
    };

    public static ExecutionStatus? FromWire(string? value) => value?.ToUpperInvariant() switch
    {
        "PENDING" => ExecutionStatus.Pending,
        "PROCESSING" => ExecutionStatus.Processing,
        "AWAITING_WEBHOOK" => ExecutionStatus.AwaitingWebhook,
        "COMPLETED" => ExecutionStatus.Completed,
        "FAILED" => ExecutionStatus.Failed,
        "CANCELLED" => ExecutionStatus.Cancelled,
        "EXPIRED" => ExecutionStatus.Expired,
        _ => null,
    };

    /// <summary>The event type recorded when an execution enters <paramref name="status"/>.</summary>
    public static string EventType(this ExecutionStatus status) => status switch
    {
        ExecutionStatus.Pending => "execution.pending",
        ExecutionStatus.Processing => "execution.processing",
        ExecutionStatus.AwaitingWebhook => "execution.awaiting_webhook",
        ExecutionStatus.Completed => "execution.completed",
        ExecutionStatus.Failed => "execution.failed",
        ExecutionStatus.Cancelled => "execution.cancelled",
        _ => "execution.expired",
    };
}

/// <summary>The normalized error of docs/api.md#execution-errors.</summary>
public sealed record ExecutionError(
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("retryable")] bool Retryable,
    [property: JsonPropertyName("provider")] string? Provider = null,
    [property: JsonPropertyName("provider_status")] int? ProviderStatus = null);

public static class ExecutionErrorCodes
{
    public const string InvalidInput = "INVALID_INPUT";
    public const string ContentPolicyViolation = "CONTENT_POLICY_VIOLATION";
    public const string ContextLengthExceeded = "CONTEXT_LENGTH_EXCEEDED";
    public const string ProviderAuthFailed = "PROVIDER_AUTH_FAILED";
    public const string ProviderRateLimited = "PROVIDER_RATE_LIMITED";
    public const string ProviderTimeout = "PROVIDER_TIMEOUT";
    public const string ProviderUnavailable = "PROVIDER_UNAVAILABLE";
    public const string ProviderError = "PROVIDER_ERROR";
    public const string NoProviderAvailable = "NO_PROVIDER_AVAILABLE";
    public const string DeadlineExceeded = "DEADLINE_EXCEEDED";
    public const string InternalError = "INTERNAL_ERROR";
}

/// <summary>
/// A kept output. <see cref="Store"/> is where its bytes are (null: the file store, as for every artifact kept before
/// S3 was offered), so switching stores never strands one (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed record Artifact(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("content_type")] string ContentType,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("sha256"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Sha256 = null,
    [property: JsonPropertyName("store"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Store = null);

/// <summary>One provider attempt, kept on the execution for the record.</summary>
public sealed record AttemptRecord(
    [property: JsonPropertyName("number")] int Number,
    [property: JsonPropertyName("provider")] string Provider,
    [property: JsonPropertyName("provider_model")] string ProviderModel,
    [property: JsonPropertyName("outcome")] string Outcome,
    [property: JsonPropertyName("started_at")] DateTimeOffset StartedAt,
    [property: JsonPropertyName("latency_ms")] long LatencyMs,
    [property: JsonPropertyName("error")] ExecutionError? Error = null);

/// <summary>An execution as stored. JSON-valued fields stay as JSON text.</summary>
public sealed record Execution
{
    public required string Id { get; init; }
    public required string AccountId { get; init; }
    public required string Model { get; init; }
    public required ExecutionStatus Status { get; init; }
    public required string IdempotencyKey { get; init; }
    public required string RequestHash { get; init; }
    public required string Input { get; init; }
    public string? Output { get; init; }
    public IReadOnlyList<Artifact> Artifacts { get; init; } = [];
    public ExecutionError? Error { get; init; }
    public string? Provider { get; init; }
    public string? ProviderModel { get; init; }
    public string? ProviderJobId { get; init; }
    public int Attempts { get; init; }
    public IReadOnlyList<AttemptRecord> AttemptLog { get; init; } = [];
    public required long EstimatedMicros { get; init; }
    public required long HeldMicros { get; init; }
    public long? ActualMicros { get; init; }
    public long OverageMicros { get; init; }
    public Usage? Usage { get; init; }
    public required Price Price { get; init; }
    public string? WebhookUrl { get; init; }
    public string? WebhookEvents { get; init; }
    public string? Metadata { get; init; }
    public required int TimeoutSeconds { get; init; }
    public long? MaxCostMicros { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public required DateTimeOffset ExpiresAt { get; init; }
    public required DateTimeOffset NextAttemptAt { get; init; }
    public string? LeaseOwner { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    public string? CallbackTokenHash { get; init; }
    public DateTimeOffset? NextPollAt { get; init; }

    /// <summary>The API key it was submitted with (null for executions from before keys were recorded).</summary>
    public string? ApiKeyId { get; init; }

    /// <summary>
    /// The provider's result while its outputs are being copied (JSON, see Storage.Artifacts.KeptResult): such an
    /// execution waits in PENDING for a copy, never for another provider call (docs/artifacts.md).
    /// </summary>
    public string? PendingResult { get; init; }

    /// <summary>
    /// The W3C traceparent its spans are parented on (docs/observability.md#traces), stored at submission; null for
    /// executions from before trace context was stored.
    /// </summary>
    public string? TraceParent { get; init; }

    /// <summary>What was charged: the actual cost capped at the hold (docs/api.md#money).</summary>
    public long? ChargedMicros => Charged(ActualMicros, HeldMicros);

    /// <summary>What an execution with this actual cost and hold is charged (see <see cref="ChargedMicros"/>).</summary>
    public static long? Charged(long? actualMicros, long heldMicros) => actualMicros is { } actual ? Math.Clamp(actual, 0, heldMicros) : null;
}

/// <summary>A status change as recorded in the outbox, in order.</summary>
public sealed record ExecutionEvent(long Sequence, string Id, string ExecutionId, string AccountId, string Type, ExecutionStatus Status, DateTimeOffset CreatedAt);
