using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage;

/// <summary>An <c>executions</c> row as both stores read it (times are unix milliseconds).</summary>
internal sealed class ExecutionRow
{
    public string Id { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string Model { get; set; } = "";
    public string Status { get; set; } = "";
    public string IdempotencyKey { get; set; } = "";
    public string RequestHash { get; set; } = "";
    public string Input { get; set; } = "";
    public string? Output { get; set; }
    public string? Artifacts { get; set; }
    public string? Error { get; set; }
    public string? Provider { get; set; }
    public string? ProviderModel { get; set; }
    public string? ProviderJobId { get; set; }
    public long Attempts { get; set; }
    public string? AttemptLog { get; set; }
    public long EstimatedMicros { get; set; }
    public long HeldMicros { get; set; }
    public long? ActualMicros { get; set; }
    public long OverageMicros { get; set; }
    public string? Usage { get; set; }
    public string Price { get; set; } = "{}";
    public string? WebhookUrl { get; set; }
    public string? WebhookEvents { get; set; }
    public string? Metadata { get; set; }
    public long TimeoutSeconds { get; set; }
    public long? MaxCostMicros { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public long? StartedAt { get; set; }
    public long? CompletedAt { get; set; }
    public long ExpiresAt { get; set; }
    public long NextAttemptAt { get; set; }
    public string? LeaseOwner { get; set; }
    public long? LeaseExpiresAt { get; set; }
    public string? CallbackTokenHash { get; set; }
    public long? NextPollAt { get; set; }
    public string? ApiKeyId { get; set; }
    public string? PendingResult { get; set; }
    public string? TraceParent { get; set; }

    public Execution ToExecution() => new()
    {
        Id = Id,
        AccountId = AccountId,
        Model = Model,
        Status = ExecutionStatuses.FromWire(Status) ?? throw new InvalidOperationException($"Unknown status '{Status}' on {Id}"),
        IdempotencyKey = IdempotencyKey,
        RequestHash = RequestHash,
        Input = Input,
        Output = Output,
        Artifacts = StoreJson.Artifacts(Artifacts),
        Error = StoreJson.Deserialize<ExecutionError>(Error),
        Provider = Provider,
        ProviderModel = ProviderModel,
        ProviderJobId = ProviderJobId,
        Attempts = (int)Attempts,
        AttemptLog = StoreJson.Attempts(AttemptLog),
        EstimatedMicros = EstimatedMicros,
        HeldMicros = HeldMicros,
        ActualMicros = ActualMicros,
        OverageMicros = OverageMicros,
        Usage = StoreJson.Deserialize<Billing.Usage>(Usage),
        Price = StoreJson.Price(Price),
        WebhookUrl = WebhookUrl,
        WebhookEvents = WebhookEvents,
        Metadata = Metadata,
        TimeoutSeconds = (int)TimeoutSeconds,
        MaxCostMicros = MaxCostMicros,
        CreatedAt = FromMs(CreatedAt),
        UpdatedAt = FromMs(UpdatedAt),
        StartedAt = FromMs(StartedAt),
        CompletedAt = FromMs(CompletedAt),
        ExpiresAt = FromMs(ExpiresAt),
        NextAttemptAt = FromMs(NextAttemptAt),
        PendingResult = PendingResult,
        LeaseOwner = LeaseOwner,
        LeaseExpiresAt = FromMs(LeaseExpiresAt),
        CallbackTokenHash = CallbackTokenHash,
        NextPollAt = FromMs(NextPollAt),
        ApiKeyId = ApiKeyId,
        TraceParent = TraceParent,
    };

    /// <summary>
    /// Read only by a state move (SQLite's RETURNING, PostgreSQL's <c>has_endpoints</c>): whether the account has an enabled
    /// webhook endpoint, so that a move on an account with none needs no read of its endpoints. False anywhere else.
    /// </summary>
    public bool HasEndpoints { get; set; }

    internal static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    internal static DateTimeOffset? FromMs(long? ms) => ms is { } v ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
}

internal sealed class EventRow
{
    public long Seq { get; set; }
    public string Id { get; set; } = "";
    public string ExecutionId { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string Type { get; set; } = "";
    public string Status { get; set; } = "";
    public long CreatedAt { get; set; }

    public ExecutionEvent ToEvent() =>
        new(Seq, Id, ExecutionId, AccountId, Type, ExecutionStatuses.FromWire(Status)!.Value, ExecutionRow.FromMs(CreatedAt));
}

internal sealed class LedgerRow
{
    public string Id { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string? ExecutionId { get; set; }
    public string Kind { get; set; } = "";
    public long AmountMicros { get; set; }
    public long BalanceMicros { get; set; }
    public long HeldMicros { get; set; }
    public string? Reference { get; set; }
    public long CreatedAt { get; set; }

    public LedgerEntry ToEntry() =>
        new(Id, AccountId, ExecutionId, Kind, AmountMicros, BalanceMicros, HeldMicros, Reference, ExecutionRow.FromMs(CreatedAt));
}

/// <summary>A <c>webhook_endpoints</c> row as both stores read it.</summary>
internal sealed class EndpointRow
{
    public string Id { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string Url { get; set; } = "";
    public string Events { get; set; } = "[]";
    public long Thin { get; set; }
    public string? Description { get; set; }
    public string Secret { get; set; } = "";
    public string? PreviousSecret { get; set; }
    public long? PreviousSecretExpiresAt { get; set; }
    public string Status { get; set; } = "";
    public string? DisabledReason { get; set; }
    public long? FailingSince { get; set; }
    public long CreatedAt { get; set; }

    public WebhookEndpoint ToEndpoint() => new(
        Id, AccountId, Url, JsonSerializer.Deserialize<string[]>(Events)!, Thin != 0, Description, Status, DisabledReason,
        ExecutionRow.FromMs(FailingSince), ExecutionRow.FromMs(PreviousSecretExpiresAt), ExecutionRow.FromMs(CreatedAt));
}

/// <summary>A <c>webhook_deliveries</c> row as both stores read it.</summary>
internal sealed class DeliveryRow
{
    public string Id { get; set; } = "";
    public string EventId { get; set; } = "";
    public string AccountId { get; set; } = "";
    public string? ExecutionId { get; set; }
    public string? EndpointId { get; set; }
    public string Url { get; set; } = "";
    public string EventType { get; set; } = "";
    public string Payload { get; set; } = "";
    public string Status { get; set; } = "";
    public long Attempts { get; set; }
    public long NextAttemptAt { get; set; }
    public long? LastStatusCode { get; set; }
    public string? LastError { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
    public long? CompletedAt { get; set; }
    public string? TraceParent { get; set; }

    public WebhookDelivery ToDelivery() => new(
        Id, EventId, AccountId, ExecutionId, EndpointId, Url, EventType, Payload, Status, (int)Attempts, ExecutionRow.FromMs(NextAttemptAt),
        (int?)LastStatusCode, LastError, ExecutionRow.FromMs(CreatedAt), ExecutionRow.FromMs(UpdatedAt), ExecutionRow.FromMs(CompletedAt), TraceParent);
}
