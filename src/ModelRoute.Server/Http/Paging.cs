namespace ModelRoute.Server.Http;

/// <summary>Cursor pagination, newest first: the cursor is the last id of the page, opaque to clients.</summary>
public static class Paging
{
    public const int DefaultLimit = 20;

    /// <summary>The page size (default 20), or the problem with <c>limit</c> or <c>cursor</c>.</summary>
    public static (int Limit, Problem? Problem) Parse(string? limit, string? cursor, string idPrefix)
    {
        var size = DefaultLimit;
        if (limit is not null && (!int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size) || size is < 1 or > 100))
        {
            return (0, Problem.Validation("limit", "'limit' must be a whole number from 1 to 100."));
        }

        if (cursor is not null)
        {
            if (Decode(cursor) is not { } id)
            {
                return (0, Problem.Validation("cursor", "'cursor' is not a cursor this API gave out."));
            }

            if (!id.StartsWith(idPrefix + "_", StringComparison.Ordinal))
            {
                return (0, Problem.Validation("cursor", "'cursor' belongs to another list."));
            }
        }

        return (size, null);
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

    /// <summary>
    /// One page of a list, newest first, as the response: <paramref name="read"/> gets the id to continue after (none
    /// for the first page) and how many rows to read, one more than the page; the problem when the query is bad.
    /// </summary>
    public static async Task<IResult> ListAsync<T, TView>(
        string? limit, string? cursor, string idPrefix, Func<string?, int, Task<IReadOnlyList<T>>> read, Func<T, string> id, Func<T, TView> view)
    {
        var (take, problem) = Parse(limit, cursor, idPrefix);
        if (problem is not null)
        {
            return problem.ToResult();
        }

        return TypedResults.Ok(Page(await read(Decode(cursor), take + 1), take, id, view));
    }
}
