namespace ModelRoute.Server.Executions;

/// <summary>
/// The text rules every request body shares (submissions, webhook endpoints, accounts, keys): hostile characters,
/// webhook URLs, and names safe to echo back in a problem. Submissions themselves are read by
/// <see cref="SubmissionRequest"/> and checked by <see cref="SubmissionValidator"/>.
/// </summary>
public static class SubmissionParser
{
    /// <summary>An absolute http(s) URL with a host, or null. Where it may point is the URL policy's business.</summary>
    public static Uri? ParseWebhookUrl(string url) =>
        url.Length is > 0 and <= 2048 && !HasHostileCharacters(url)
        && Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && !string.IsNullOrEmpty(uri.Host)
            ? uri
            : null;

    /// <summary>Control, format (e.g. bidirectional overrides), surrogate, private-use and unassigned characters.</summary>
    public static bool HasHostileCharacters(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(value, i);
                if (category is UnicodeCategory.Format or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
                {
                    return true;
                }

                i++;
                continue;
            }

            if (CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A field name safe to echo back: no control characters, bounded length.</summary>
    public static string Printable(string name) =>
        new([.. name.Take(64).Select(c => char.IsControl(c) || CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.Format ? '?' : c)]);

    /// <summary>A value safe to echo back, cut at 100 characters.</summary>
    public static string Truncate(string value) => Printable(value.Length > 100 ? value[..100] + "…" : value);
}
