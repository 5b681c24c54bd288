using System.Text;
using ModelRoute.Server.Executions;

namespace ModelRoute.Server.Http;

/// <summary>Cursor pagination, newest first: the cursor is the last id of the page, opaque to clients.</summary>
public static class Paging
{
    public const int DefaultLimit = 20;

    public static (bool Ok, Problem? Problem) Parse(int? limit, string? cursor, string idPrefix)
    {
        if (limit is < 1 or > 100)
        {
            return (false, Problem.Validation("limit", "'limit' must be from 1 to 100."));
        }

        if (cursor is not null && Decode(cursor) is not { } id)
        {
            return (false, Problem.Validation("cursor", "'cursor' is not a cursor this API gave out."));
        }

        if (cursor is not null && !Decode(cursor)!.StartsWith(idPrefix + "_", StringComparison.Ordinal))
        {
            return (false, Problem.Validation("cursor", "'cursor' belongs to another list."));
        }

        return (true, null);
    }

    public static string Encode(string id) => Convert.ToBase64String(Encoding.UTF8.GetBytes(id)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string? Decode(string? cursor)
    {
        if (cursor is null || cursor.Length > 200)
        {
            return null;
        }

        try
        {
            var padded = cursor.Replace('-', '+').Replace('_', '/');
            padded += new string('=', (4 - (padded.Length % 4)) % 4);
            var id = Encoding.UTF8.GetString(Convert.FromBase64String(padded));
            return id.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? id : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Builds the page from up to <paramref name="take"/> + 1 rows: the extra one only says there is more.</summary>
    public static ListView<TView> Page<T, TView>(IReadOnlyList<T> rows, int take, Func<T, string> id, Func<T, TView> view)
    {
        var hasMore = rows.Count > take;
        var page = rows.Take(take).ToList();
        return ListView<TView>.Of([.. page.Select(view)], hasMore, hasMore ? Encode(id(page[^1])) : null);
    }
}
