using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// Makes the generated schemas say what the API does (docs/api.md#openapi-and-the-reference-page):
/// one type per field, a request's required fields exactly those it cannot do without, and examples.
/// </summary>
internal static class ApiSchemaRules
{
    /// <summary>The request bodies the document describes (read by hand, declared with Accepts): named …Request or …RequestBody.</summary>
    internal static bool IsRequestSchema(string name) =>
        name.EndsWith("Request", StringComparison.Ordinal) || name.EndsWith("RequestBody", StringComparison.Ordinal);

    /// <summary>Every operation of the document.</summary>
    internal static IEnumerable<OpenApiOperation> Operations(OpenApiDocument document) =>
        (document.Paths ?? []).Values.SelectMany(p => p.Operations?.Values ?? (IEnumerable<OpenApiOperation>)[]);

    public static void Apply(OpenApiDocument document)
    {
        var schemas = document.Components!.Schemas!;
        foreach (var (name, schema) in schemas)
        {
            Walk(schema, OneType);
            Walk(schema, TimesAreStrings);
            Walk(schema, NullableAsAnyOf);
            Walk(schema, NoTypeDiscriminator);
            if (IsRequestSchema(name) && schema is OpenApiSchema request)
            {
                RequireOnlyWhatCannotBeNull(request);
            }
        }

        foreach (var parameter in Operations(document).SelectMany(o => o.Parameters ?? []))
        {
            Walk(parameter.Schema, OneType);
        }

        // A batch item's error is the same problem the single submission answers with.
        if (schemas.TryGetValue("BatchItemView", out var item) && item is OpenApiSchema { Properties: { } batch } && batch.ContainsKey("error"))
        {
            batch["error"] = new OpenApiSchema
            {
                AnyOf = [new OpenApiSchemaReference(ApiDocumentTransformer.ProblemSchema, document), new OpenApiSchema { Type = JsonSchemaType.Null }],
            };
        }

        foreach (var unused in new[] { "ProblemDetails", "HttpValidationProblemDetails" })
        {
            schemas.Remove(unused);
        }

        ApiExamples.Apply(schemas);
    }

    /// <summary>
    /// The web JSON defaults read numbers from strings, so the generator types every number as number-or-string
    /// (with a pattern). The API's own readers take numbers only (a request body is read by hand), so the string is dropped.
    /// </summary>
    private static void OneType(OpenApiSchema schema)
    {
        if (schema.Type is { } type && type.HasFlag(JsonSchemaType.String) && (type.HasFlag(JsonSchemaType.Integer) || type.HasFlag(JsonSchemaType.Number)))
        {
            schema.Type = type & ~JsonSchemaType.String;
            schema.Pattern = null;
        }
    }

    /// <summary>Times are written by the API's own converter, which the generator cannot see into: they are strings.</summary>
    private static void TimesAreStrings(OpenApiSchema schema)
    {
        if (schema.Type is null && schema.Format is "date-time" or "date")
        {
            schema.Type = JsonSchemaType.String;
        }
    }

    /// <summary>
    /// A nullable reference comes as oneOf [null, the type]; where the type is any JSON value (RawJson), null matches
    /// both and "exactly one" fails. anyOf says the same for every other type.
    /// </summary>
    private static void NullableAsAnyOf(OpenApiSchema schema)
    {
        if (schema.OneOf is { Count: > 0 } oneOf && oneOf.Any(s => s.Type == JsonSchemaType.Null))
        {
            schema.AnyOf = oneOf;
            schema.OneOf = null;
        }
    }

    /// <summary>The usage rows are derived types without a type discriminator: the API writes no <c>$type</c>.</summary>
    private static void NoTypeDiscriminator(OpenApiSchema schema)
    {
        if (schema.Discriminator?.PropertyName == "$type")
        {
            schema.Discriminator = null;
        }
    }

    /// <summary>A request field that may be null may also be left out; the others are required (the handlers check the same).</summary>
    private static void RequireOnlyWhatCannotBeNull(OpenApiSchema schema)
    {
        if (schema.Properties is null)
        {
            return;
        }

        schema.Required = new HashSet<string>(
            schema.Properties.Where(p => !MayBeNull(p.Value)).Select(p => p.Key),
            StringComparer.Ordinal);
    }

    private static bool MayBeNull(IOpenApiSchema schema) =>
        (schema.Type is { } type && type.HasFlag(JsonSchemaType.Null))
        || (schema.OneOf ?? schema.AnyOf ?? []).Any(s => s.Type is { } t && t.HasFlag(JsonSchemaType.Null));

    /// <summary>Visits a schema and the schemas inside it; references are visited where they are defined.</summary>
    private static void Walk(IOpenApiSchema? schema, Action<OpenApiSchema> visit)
    {
        if (schema is not OpenApiSchema concrete)
        {
            return;
        }

        visit(concrete);
        foreach (var inner in (concrete.Properties?.Values ?? []).Concat(concrete.AllOf ?? []).Concat(concrete.AnyOf ?? []).Concat(concrete.OneOf ?? []))
        {
            Walk(inner, visit);
        }

        Walk(concrete.Items, visit);
        Walk(concrete.AdditionalProperties, visit);
    }
}
