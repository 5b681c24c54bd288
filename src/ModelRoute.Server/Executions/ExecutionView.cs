using ModelRoute.Server.Http;

namespace ModelRoute.Server.Executions;

/// <summary>The execution object of the API (docs/api.md#endpoints).</summary>
public sealed record ExecutionView(
    string Id,
    string Object,
    string Status,
    string Model,
    string IdempotencyKey,
    RawJson Input,
    RawJson? Output,
    IReadOnlyList<ArtifactView> Artifacts,
    ExecutionError? Error,
    string? Provider,
    string? ProviderJobId,
    int Attempts,
    IReadOnlyList<AttemptRecord> AttemptLog,
    CostView Cost,
    Usage? Usage,
    string? WebhookUrl,
    RawJson? WebhookEvents,
    RawJson? Metadata,
    int TimeoutSeconds,
    string CreatedAt,
    string UpdatedAt,
    string? StartedAt,
    string? CompletedAt,
    string ExpiresAt,
    string? TraceId)
{
    public static ExecutionView From(Execution e) => new(
        e.Id,
        "execution",
        e.Status.ToWire(),
        e.Model,
        e.IdempotencyKey,
        new RawJson(e.Input),
        RawJson.From(e.Output),
        [.. e.Artifacts.Select(a => new ArtifactView(a.Name, a.ContentType, a.SizeBytes, $"/v1/executions/{e.Id}/artifacts/{a.Name}", a.Sha256))],
        e.Error,
        e.Provider,
        e.ProviderJobId,
        e.Attempts,
        e.AttemptLog,
        new CostView(
            Money.Format(e.EstimatedMicros),
            Money.Format(e.HeldMicros),
            e.ChargedMicros is { } charged ? Money.Format(charged) : null,
            e.OverageMicros > 0 ? Money.Format(e.OverageMicros) : null,
            "usd",
            e.Price.ToView()),
        e.Usage,
        e.WebhookUrl,
        RawJson.From(e.WebhookEvents),
        RawJson.From(e.Metadata),
        e.TimeoutSeconds,
        Timestamp(e.CreatedAt),
        Timestamp(e.UpdatedAt),
        Timestamp(e.StartedAt),
        Timestamp(e.CompletedAt),
        Timestamp(e.ExpiresAt),
        Operations.TraceContext.TraceIdOf(e.TraceParent));

    public static string Timestamp(DateTimeOffset value) => value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    public static string? Timestamp(DateTimeOffset? value) => value is { } v ? Timestamp(v) : null;
}

public sealed record ArtifactView(string Name, string ContentType, long SizeBytes, string Url, string? Sha256);

/// <summary>
/// Money of one execution: <c>held</c> is the hold placed at submission (released when it ends);
/// <c>actual</c> is what was charged; <c>overage</c> is cost above the hold, not charged;
/// <c>pricing</c> is the model's price when it was submitted, which later price changes never rewrite.
/// </summary>
public sealed record CostView(string Estimated, string Held, string? Actual, string? Overage, string Currency, IReadOnlyDictionary<string, string> Pricing);

public sealed record ListView<T>(string Object, IReadOnlyList<T> Data, bool HasMore, string? NextCursor)
{
    public static ListView<T> Of(IReadOnlyList<T> data, bool hasMore, string? nextCursor) => new("list", data, hasMore, nextCursor);
}
