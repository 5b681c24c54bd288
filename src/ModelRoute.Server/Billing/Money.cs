namespace ModelRoute.Server.Billing;

/// <summary>USD amounts as integer micro-dollars (1e-6 USD); the API shows six decimal places.</summary>
public static class Money
{
    public const long MicrosPerDollar = 1_000_000;

    /// <summary>Parses a non-negative plain decimal such as <c>"0.15"</c> or <c>"12"</c> (at most six places).</summary>
    public static bool TryParseUsd(ReadOnlySpan<char> text, out long micros)
    {
        micros = 0;
        if (text.IsEmpty || text.Length > 24)
        {
            return false;
        }

        var dot = text.IndexOf('.');
        var whole = dot < 0 ? text : text[..dot];
        var fraction = dot < 0 ? [] : text[(dot + 1)..];
        if (whole.IsEmpty || fraction.Length > 6 || (dot >= 0 && fraction.IsEmpty))
        {
            return false;
        }

        foreach (var c in whole)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        foreach (var c in fraction)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        if (!long.TryParse(whole, NumberStyles.None, CultureInfo.InvariantCulture, out var dollars) || dollars > 9_000_000_000)
        {
            return false;
        }

        long fractionMicros = 0;
        for (var i = 0; i < 6; i++)
        {
            fractionMicros = (fractionMicros * 10) + (i < fraction.Length ? fraction[i] - '0' : 0);
        }

        micros = (dollars * MicrosPerDollar) + fractionMicros;
        return true;
    }

    public static string Format(long micros)
    {
        var sign = micros < 0 ? "-" : "";
        var abs = Math.Abs(micros);
        return string.Create(CultureInfo.InvariantCulture, $"{sign}{abs / MicrosPerDollar}.{abs % MicrosPerDollar:D6}");
    }

    /// <summary>Hold = max(estimate × 1.2, $0.01), rounded up to the micro-dollar (docs/api.md#money).</summary>
    public static long HoldFor(long estimateMicros) => Math.Max(((estimateMicros * 6) + 4) / 5, 10_000);
}
