using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Billing;

/// <summary>
/// The UTC days a usage request covers (docs/api.md#usage): <see cref="FromDay"/> inclusive to <see cref="ToDay"/>
/// exclusive, each a number of days since 1970-01-01. Usage is kept per UTC day, so a time inside a day widens the
/// range to the whole day: <c>from</c> is taken back to its day's start, <c>to</c> on to the next day's start.
/// </summary>
public sealed record UsageRange(long FromDay, long ToDay)
{
    public const int DefaultDays = 30;
    public const int MaxDays = 400;

    private static readonly int Epoch = new DateOnly(1970, 1, 1).DayNumber;

    // The last day a range may start or end on, so that the day after it is still a date.
    private static readonly long LastDay = DateOnly.MaxValue.DayNumber - Epoch - 1;

    private const string DateRule = "a UTC date (2026-12-01) or an RFC 3339 time (2026-12-01T00:00:00Z), from 1970-01-01 on";

    /// <summary>
    /// The range asked for, or the problem with it. By default it ends with today (UTC) and covers
    /// <see cref="DefaultDays"/> days; given one end, the other is found the same way.
    /// </summary>
    public static (UsageRange? Range, Problem? Problem) Parse(string? from, string? to, DateTimeOffset now)
    {
        long? fromDay = null, toDay = null;
        if (from is not null && (fromDay = DayOf(from, roundUp: false)) is null)
        {
            return (null, Problem.Validation("from", $"'from' must be {DateRule}."));
        }

        if (to is not null && (toDay = DayOf(to, roundUp: true)) is null)
        {
            return (null, Problem.Validation("to", $"'to' must be {DateRule}."));
        }

        var end = toDay ?? UsageEnding.DayOf(now.ToUnixTimeMilliseconds()) + 1;
        var start = fromDay ?? Math.Max(0, end - DefaultDays);
        if (start >= end)
        {
            return (null, Problem.Validation("from", "'from' must be before 'to' ('to' is exclusive and defaults to the end of today, UTC)."));
        }

        return end - start > MaxDays
            ? (null, Problem.Validation("to", $"A usage range covers at most {MaxDays} days; ask for a shorter one."))
            : (new UsageRange(start, end), null);
    }

    /// <summary>A day number as the API writes it: <c>2026-12-01</c>.</summary>
    public static string Format(long day) => DateOnly.FromDayNumber((int)(Epoch + day)).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public string From => Format(FromDay);

    public string To => Format(ToDay);

    /// <summary>The UTC day of a date or time; with <paramref name="roundUp"/> a time inside a day gives the next day.</summary>
    private static long? DayOf(string text, bool roundUp)
    {
        long day;
        if (text.Length == 10 && DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            day = date.DayNumber - Epoch;
        }
        else if (text.Length > 10 && text[10] is 'T' or 't' && text.Length <= 40
            && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            && time.ToUnixTimeMilliseconds() >= 0)
        {
            var ms = time.ToUnixTimeMilliseconds();
            day = UsageEnding.DayOf(ms) + (roundUp && ms % UsageEnding.MillisecondsPerDay != 0 ? 1 : 0);
        }
        else
        {
            return null;
        }

        return day is >= 0 && day <= LastDay ? day : null;
    }
}
