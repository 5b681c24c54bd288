namespace ModelRoute.Server.Storage;

/// <summary>
/// The values a transition's conditional UPDATE binds, named as both stores' SQL names them (JSON
/// columns already serialized). Made before the write is queued, so none of it runs inside a
/// transaction. A statement binds only the names it uses: SQLite passes <c>from</c> as three fixed
/// slots (so its statement stays prepared), PostgreSQL as one array, and PostgreSQL's single-statement
/// moves also take the ids of the rows they insert.
/// </summary>
internal sealed record TransitionValues
{
    public required string Id { get; init; }
    public required string To { get; init; }
    public required string[] From { get; init; }
    public string? From0 => From.ElementAtOrDefault(0);
    public string? From1 => From.ElementAtOrDefault(1);
    public string? From2 => From.ElementAtOrDefault(2);
    public required long Now { get; init; }
    public required bool Terminal { get; init; }
    public string? Output { get; init; }
    public string? Artifacts { get; init; }
    public required bool ClearError { get; init; }
    public string? Error { get; init; }
    public string? Provider { get; init; }
    public string? ProviderModel { get; init; }
    public string? ProviderJobId { get; init; }
    public string? CallbackTokenHash { get; init; }
    public required int AttemptIncrement { get; init; }
    public string? Attempt { get; init; }
    public string? Usage { get; init; }
    public long? ActualMicros { get; init; }
    public long? NextAttemptAt { get; init; }
    public long? NextPollAt { get; init; }
    public long? LeaseExpiresAt { get; init; }
    public string? LeaseOwner { get; init; }
    public string? AccountId { get; init; }
    public long? LeaseExpiredBy { get; init; }
    public string? PendingResult { get; init; }

    // The event row PostgreSQL's one-statement moves insert.
    public string? EventId { get; init; }
    public string? EventType { get; init; }

    // PostgreSQL's write of an attempt's start with its outcome: the start's time and event.
    public long? StartedNow { get; init; }
    public string? StartEventId { get; init; }
    public string? StartEventType { get; init; }

    public static TransitionValues For(ExecutionTransition t, long now) => new()
    {
        Id = t.ExecutionId,
        To = t.To.ToWire(),
        From = [.. t.From.Select(s => s.ToWire())],
        Now = now,
        Terminal = t.To.IsTerminal(),
        Output = t.Output,
        Artifacts = t.Artifacts is null ? null : StoreJson.Serialize(t.Artifacts),
        ClearError = t.To == ExecutionStatus.Completed,
        Error = t.Error is null ? null : StoreJson.Serialize(t.Error),
        Provider = t.Provider,
        ProviderModel = t.ProviderModel,
        ProviderJobId = t.ProviderJobId,
        CallbackTokenHash = t.CallbackTokenHash,
        AttemptIncrement = t.IncrementAttempts ? 1 : t.UndoAttempt ? -1 : 0,
        Attempt = t.Attempt is null ? null : StoreJson.Serialize(t.Attempt),
        Usage = t.Usage is null ? null : StoreJson.Serialize(t.Usage),
        ActualMicros = t.ActualMicros,
        NextAttemptAt = t.NextAttemptAt?.ToUnixTimeMilliseconds(),
        NextPollAt = t.NextPollAt?.ToUnixTimeMilliseconds(),
        LeaseExpiresAt = t.LeaseExpiresAt?.ToUnixTimeMilliseconds(),
        LeaseOwner = t.LeaseOwner,
        AccountId = t.AccountId,
        LeaseExpiredBy = t.LeaseExpiredBy?.ToUnixTimeMilliseconds(),
        PendingResult = t.PendingResult,
    };
}
