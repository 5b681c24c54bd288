namespace ModelRoute.Server.Storage;

/// <summary>
/// What one ending adds to its usage row (docs/api.md#usage): the row of its account, UTC day, model and key, upserted
/// in the transaction that settles it, so that usage is read from these rows and never from the executions.
/// </summary>
internal sealed record UsageEnding(
    string AccountId, long Day, string Model, string KeyId, long Completed, long Failed, long Cancelled, long Expired, long Charge, long Overage)
{
    public const long MillisecondsPerDay = 86_400_000;

    /// <summary>The key of executions from before keys were recorded: a key column of the primary key cannot be null.</summary>
    public const string NoKey = "";

    /// <summary>One ending's counts added to its row; the same text on SQLite and PostgreSQL.</summary>
    public const string UpsertSql = """
        INSERT INTO usage_daily (account_id, day, model, api_key_id, executions, completed, failed, cancelled, expired, charged_micros, overage_micros)
        VALUES (@AccountId, @Day, @Model, @KeyId, 1, @Completed, @Failed, @Cancelled, @Expired, @Charge, @Overage)
        ON CONFLICT (account_id, day, model, api_key_id) DO UPDATE SET
            executions = usage_daily.executions + 1,
            completed = usage_daily.completed + excluded.completed,
            failed = usage_daily.failed + excluded.failed,
            cancelled = usage_daily.cancelled + excluded.cancelled,
            expired = usage_daily.expired + excluded.expired,
            charged_micros = usage_daily.charged_micros + excluded.charged_micros,
            overage_micros = usage_daily.overage_micros + excluded.overage_micros
        """;

    /// <summary>The UTC day (days since 1970-01-01) of a time in unix milliseconds.</summary>
    public static long DayOf(long unixMilliseconds) => unixMilliseconds / MillisecondsPerDay;

    /// <summary>
    /// An ending as its settlement counts it: the charge is the actual cost capped at the hold and the overage what it
    /// came to above the hold, both for <see cref="ExecutionStatus.Completed"/> only (docs/api.md#money).
    /// </summary>
    public static UsageEnding Of(string accountId, string model, string? apiKeyId, ExecutionStatus status, long heldMicros, long? actualMicros, long now)
    {
        var completed = status == ExecutionStatus.Completed;
        var charge = completed ? Execution.Charged(actualMicros, heldMicros) ?? 0 : 0;
        var overage = completed && actualMicros is { } actual ? Math.Max(0, actual - heldMicros) : 0;
        return new UsageEnding(
            accountId, DayOf(now), model, apiKeyId ?? NoKey, completed ? 1 : 0, status == ExecutionStatus.Failed ? 1 : 0,
            status == ExecutionStatus.Cancelled ? 1 : 0, status == ExecutionStatus.Expired ? 1 : 0, charge, overage);
    }
}
