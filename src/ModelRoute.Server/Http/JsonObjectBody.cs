namespace ModelRoute.Server.Http;

/// <summary>
/// A request body that must be one JSON object with only the fields an endpoint knows (docs/api.md, "Bad input"):
/// read by <see cref="JsonBody"/>, then refused with a problem naming the body or the first unknown field.
/// </summary>
public static class JsonObjectBody
{
    /// <summary>The document (the caller disposes it), or the problem with the body (nothing to dispose then).</summary>
    /// <param name="notAnObject">The problem's detail when the body is not an object: an example of one.</param>
    /// <param name="known">Whether a field is one the endpoint reads.</param>
    /// <param name="unknownField">The problem's detail for a field it does not.</param>
    public static async Task<(JsonDocument? Document, Problem? Problem)> ReadAsync(
        HttpRequest request, long maxBytes, string notAnObject, Func<string, bool> known, string unknownField, CancellationToken cancellationToken)
    {
        var (document, problem) = await JsonBody.ReadAsync(request, maxBytes, cancellationToken);
        problem ??= Refusal(document!.RootElement, notAnObject, known, unknownField);
        if (problem is null)
        {
            return (document, null);
        }

        document?.Dispose();
        return (null, problem);
    }

    private static Problem? Refusal(JsonElement root, string notAnObject, Func<string, bool> known, string unknownField)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return Problem.Validation("body", notAnObject);
        }

        foreach (var property in root.EnumerateObject())
        {
            if (!known(property.Name))
            {
                return Problem.Validation(property.Name.Length > 64 ? property.Name[..64] : property.Name, unknownField);
            }
        }

        return null;
    }
}
