using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// The query parameters the handlers read as text and check themselves, described and typed as they are accepted
/// (a whole number where the handler takes only digits).
/// </summary>
internal static class ApiParameters
{
    private static readonly Dictionary<string, (string Description, JsonSchemaType? Type, int? Minimum, int? Maximum)> Query = new(StringComparer.Ordinal)
    {
        ["limit"] = ("How many items per page, from 1 to 100 (20 when left out).", JsonSchemaType.Integer, 1, 100),
        ["cursor"] = ("The `next_cursor` of the previous page, to read the next one.", null, null, null),
        ["wait"] = ("Seconds to wait for the execution to end before answering, from 0 to the Limits:MaxWait setting.", JsonSchemaType.Integer, 0, null),
        ["after"] = ("Resume after this event id (the `id:` of the last event read); the same as the Last-Event-ID header.", JsonSchemaType.Integer, 0, null),
        ["status"] = ("Only executions in this status (e.g. COMPLETED).", null, null, null),
        ["model"] = ("Only executions of this model.", null, null, null),
        ["created_after"] = ("Only executions created after this UTC time (ISO 8601).", null, null, null),
        ["from"] = ("The first UTC day or time included (ISO 8601); 30 days before `to` when left out.", null, null, null),
        ["to"] = ("The UTC day or time the range ends before (ISO 8601); now when left out.", null, null, null),
        ["group_by"] = ("How rows are grouped: model, day, key (an account's own) or account (the admin's).", null, null, null),
        ["account_id"] = ("Only this account (admin key only).", null, null, null),
        ["token"] = ("The attempt's secret token, given to the provider with the callback URL.", null, null, null),
    };

    public static void Describe(OpenApiOperation operation)
    {
        foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>().Where(p => p.In == ParameterLocation.Query))
        {
            if (parameter.Name is null || !Query.TryGetValue(parameter.Name, out var known))
            {
                continue;
            }

            parameter.Description ??= known.Description;
            if (known.Type is { } type && parameter.Schema is OpenApiSchema schema)
            {
                schema.Type = type;
                schema.Minimum = known.Minimum?.ToString(CultureInfo.InvariantCulture);
                schema.Maximum = known.Maximum?.ToString(CultureInfo.InvariantCulture);
            }
        }
    }
}
