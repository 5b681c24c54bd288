using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Mcp;

/// <summary>
/// Tool results: the API's JSON as structured content plus a short text summary; a refusal as a tool error
/// (isError) carrying the normalized code, never a protocol failure (docs/mcp.md#errors).
/// </summary>
public static class ToolResults
{
    public static CallToolResult From(GatewayResult result, Func<JsonElement, string> summary) =>
        result.Error is { } error
            ? Error(error)
            : new CallToolResult
            {
                Content = [new TextContentBlock { Text = summary(result.Value) + "\n" + result.Value.GetRawText() }],
                StructuredContent = result.Value,
            };

    public static CallToolResult Error(GatewayError error)
    {
        var structured = JsonSerializer.SerializeToElement(
            error.Field is null
                ? new Dictionary<string, string> { ["code"] = error.Code, ["message"] = error.Message }
                : new Dictionary<string, string> { ["code"] = error.Code, ["message"] = error.Message, ["field"] = error.Field },
            McpJson.Default.DictionaryStringString);
        return new CallToolResult
        {
            IsError = true,
            Content = [new TextContentBlock { Text = $"{error.Code}: {error.Message}" }],
            StructuredContent = structured,
        };
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class McpJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>One line saying what a result is, for clients that show text only.</summary>
internal static class Summaries
{
    private static readonly string[] Terminal = ["COMPLETED", "FAILED", "CANCELLED", "EXPIRED"];

    public static string Status(JsonElement execution) =>
        execution.ValueKind == JsonValueKind.Object && execution.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";

    public static bool IsTerminal(JsonElement execution) => Terminal.Contains(Status(execution));

    public static string Execution(JsonElement e)
    {
        var id = Text(e, "id");
        var status = Status(e);
        var line = $"Execution {id} ({Text(e, "model")}) is {status}.";
        return status switch
        {
            "COMPLETED" => line + $" Charged {Text(e.GetProperty("cost"), "actual")} USD" +
                (e.TryGetProperty("artifacts", out var a) && a.GetArrayLength() > 0 ? $"; {a.GetArrayLength()} artifact(s): use get_artifact." : "."),
            "FAILED" or "EXPIRED" when e.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object =>
                line + $" {Text(error, "code")}: {Text(error, "message")}",
            "CANCELLED" => line,
            _ => line + " It is still running: do other work, then call wait_for_execution again.",
        };
    }

    public static string Batch(JsonElement batch)
    {
        var items = batch.GetProperty("data");
        var accepted = items.EnumerateArray().Count(i => i.TryGetProperty("execution", out var x) && x.ValueKind == JsonValueKind.Object);
        return $"Batch of {items.GetArrayLength()}: {accepted} accepted, {items.GetArrayLength() - accepted} refused (see each item's error).";
    }

    public static string Executions(JsonElement list) =>
        $"{list.GetProperty("data").GetArrayLength()} execution(s)" + (Text(list, "next_cursor") is { Length: > 0 } c ? $"; more with cursor '{c}'." : ".");

    public static string Models(JsonElement list) =>
        "Models: " + string.Join(", ", list.GetProperty("data").EnumerateArray().Select(m => $"{Text(m, "id")} ({Text(m, "modality")})")) + ".";

    public static string Balance(JsonElement b) => $"Balance {Text(b, "balance")} USD, held {Text(b, "held")}, available {Text(b, "available")}.";

    public static string Text(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? (v.ValueKind == JsonValueKind.String ? v.GetString()! : v.GetRawText())
            : "";
}
