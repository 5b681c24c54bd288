using ModelRoute.Server.Http;
using ModelRoute.Server.Storage;

namespace ModelRoute.Server.Executions;

/// <summary>
/// The parameters of GET /v1/executions read into an <see cref="ExecutionQuery"/>, or the problem with the first bad
/// one, naming it (docs/api.md#list-executions).
/// </summary>
public static class ExecutionListQuery
{
    public const int MaxMetadataPairs = 3;

    private const int MaxMetadataKey = 40;
    private const int MaxMetadataValue = 500;
    private const int MaxIdempotencyKey = 255;

    /// <summary>
    /// The page size and the query, for the HTTP list and MCP's list_executions alike (docs/mcp.md#tools): the MCP tool
    /// gives its metadata object as <c>metadata[key]</c> entries of <paramref name="raw"/>, so both are checked the same way.
    /// </summary>
    public static (ExecutionQuery? Query, int Size, Problem? Problem) ParsePage(
        IQueryCollection raw, string? status, string? model, string? createdAfter, string? createdBefore, string? idempotencyKey, string? limit, string? cursor)
    {
        var (size, pagingProblem) = Paging.Parse(limit, cursor, "exe");
        if (pagingProblem is not null)
        {
            return (null, size, pagingProblem);
        }

        var (query, problem) = Parse(raw, status, model, createdAfter, createdBefore, idempotencyKey, cursor, size);
        return (query, size, problem);
    }

    /// <summary>Metadata searches as query entries (<c>metadata[key]=value</c>), for callers that hold them as pairs.</summary>
    public static IQueryCollection MetadataQuery(IReadOnlyDictionary<string, string>? metadata) =>
        metadata is null or { Count: 0 }
            ? QueryCollection.Empty
            : new QueryCollection(metadata.ToDictionary(m => $"metadata[{m.Key}]", m => new Microsoft.Extensions.Primitives.StringValues(m.Value), StringComparer.Ordinal));

    public static (ExecutionQuery? Query, Problem? Problem) Parse(
        IQueryCollection raw, string? status, string? model, string? createdAfter, string? createdBefore, string? idempotencyKey, string? cursor, int size)
    {
        ExecutionStatus? statusFilter = null;
        if (status is not null && (statusFilter = ExecutionStatuses.FromWire(status)) is null)
        {
            return (null, Problem.Validation("status", "'status' must be one of PENDING, PROCESSING, AWAITING_WEBHOOK, COMPLETED, FAILED, CANCELLED, EXPIRED."));
        }

        if (model is not null && (model.Length > 200 || model.Contains('\0')))
        {
            return (null, Problem.Validation("model", "'model' must be a model name of at most 200 characters."));
        }

        if (idempotencyKey is not null && (idempotencyKey.Length is 0 or > MaxIdempotencyKey || SubmissionParser.HasHostileCharacters(idempotencyKey)))
        {
            return (null, Problem.Validation("idempotency_key", "'idempotency_key' must be 1 to 255 printable characters, as given at submission."));
        }

        var (after, afterProblem) = Time(createdAfter, "created_after");
        var (before, beforeProblem) = Time(createdBefore, "created_before");
        var (metadata, metadataProblem) = Metadata(raw);
        if ((afterProblem ?? beforeProblem ?? metadataProblem) is { } problem)
        {
            return (null, problem);
        }

        var query = new ExecutionQuery(statusFilter, model, after, Paging.Decode(cursor), size + 1)
        {
            CreatedBefore = before,
            IdempotencyKey = idempotencyKey,
            Metadata = metadata,
        };
        return (query, null);
    }

    /// <summary>RFC 3339, or unix seconds (a number too small to be milliseconds).</summary>
    private static (DateTimeOffset?, Problem?) Time(string? value, string name)
    {
        if (value is null)
        {
            return (null, null);
        }

        if (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var unix) && unix < 100_000_000_000)
        {
            return (DateTimeOffset.FromUnixTimeSeconds(unix), null);
        }

        return DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
            ? (parsed, null)
            : (null, Problem.Validation(name, $"'{name}' must be an RFC 3339 time or unix seconds."));
    }

    /// <summary>
    /// <c>metadata[key]=value</c> pairs (Stripe's form), ANDed; each key given once, keys as submissions allow them.
    /// </summary>
    private static (IReadOnlyList<KeyValuePair<string, string>>, Problem?) Metadata(IQueryCollection raw)
    {
        List<KeyValuePair<string, string>>? pairs = null;
        foreach (var (name, values) in raw)
        {
            if (!name.StartsWith("metadata", StringComparison.Ordinal))
            {
                continue;
            }

            if (name.Length < "metadata[]".Length || name[8] != '[' || name[^1] != ']')
            {
                return ([], Problem.Validation(name, $"'{name}' is not a metadata search: write metadata[key]=value."));
            }

            var key = name[9..^1];
            if (key.Length is 0 or > MaxMetadataKey || SubmissionParser.HasHostileCharacters(key))
            {
                return ([], Problem.Validation(name, "A metadata key must be 1 to 40 printable characters."));
            }

            if (values.Count != 1 || values[0] is not { Length: <= MaxMetadataValue } value || value.Contains('\0'))
            {
                return ([], Problem.Validation(name, $"'{name}' must be given once, with a value of at most {MaxMetadataValue} characters."));
            }

            pairs ??= [];
            pairs.Add(new(key, value));
            if (pairs.Count > MaxMetadataPairs)
            {
                return ([], Problem.Validation("metadata", $"At most {MaxMetadataPairs} metadata[key]=value pairs may be searched at once."));
            }
        }

        return (pairs ?? (IReadOnlyList<KeyValuePair<string, string>>)[], null);
    }
}
