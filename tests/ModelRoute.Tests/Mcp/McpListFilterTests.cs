using ModelContextProtocol.Client;

namespace ModelRoute.Tests.Mcp;

/// <summary>docs/mcp.md#tools: list_executions takes the HTTP list's filters, checked by the same parser, within the caller's account.</summary>
public sealed class McpListFilterTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private static async Task<string> SubmitAsync(McpClient client, string key, object metadata)
    {
        var submitted = await client.CallAsync("submit_execution", new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = key } } }, idempotency_key = key, metadata });
        return submitted.Structured().GetProperty("id").GetString()!;
    }

    private static async Task<string[]> ListAsync(McpClient client, object filter) =>
        [.. (await client.CallAsync("list_executions", filter)).Structured().GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()!)];

    [Fact]
    public async Task List_executions_finds_executions_by_idempotency_key_metadata_and_creation_time_and_never_another_accounts()
    {
        using var owner = await _gateway.CreateAccountAsync();
        using var other = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, owner.Key);
        await using var otherClient = await McpTestClient.ConnectAsync(_gateway, other.Key);
        var first = await SubmitAsync(client, "order-42-step-1", new { order = "42", team = "search" });
        var second = await SubmitAsync(client, "order-42-step-2", new { order = "42", team = "ads" });
        var third = await SubmitAsync(client, "order-43-step-1", new { order = "43", team = "search" });
        var theirs = await SubmitAsync(otherClient, "order-42-step-1", new { order = "42", team = "search" });
        var later = DateTimeOffset.UtcNow.AddHours(1);

        (await ListAsync(client, new { idempotency_key = "order-42-step-2" })).ShouldBe([second]);
        (await ListAsync(client, new { metadata = new { order = "42" } })).ShouldBe([second, first]);
        (await ListAsync(client, new { metadata = new { order = "42", team = "search" } })).ShouldBe([first]);
        (await ListAsync(client, new { metadata = new { team = "search" }, created_before = later.ToString("O") })).ShouldBe([third, first]);
        (await ListAsync(client, new { created_before = "2020-01-01T00:00:00Z" })).ShouldBeEmpty();
        (await ListAsync(client, new { created_after = later.ToUnixTimeSeconds() })).ShouldBeEmpty();
        (await ListAsync(client, new { created_after = 1_000_000_000, model = "sim/text", limit = 10 })).ShouldBe([third, second, first]);
        (await ListAsync(otherClient, new { idempotency_key = "order-42-step-1" })).ShouldBe([theirs]);
        (await ListAsync(otherClient, new { metadata = new { order = "43" } })).ShouldBeEmpty();
        (await ListAsync(otherClient, new { idempotency_key = "order-42-step-2" })).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("""{"created_before":"yesterday"}""", "created_before=yesterday", "created_before")]
    [InlineData("""{"idempotency_key":"tab\there"}""", "idempotency_key=tab%09here", "idempotency_key")]
    [InlineData("""{"metadata":{"a":"1","b":"2","c":"3","d":"4"}}""", "metadata[a]=1&metadata[b]=2&metadata[c]=3&metadata[d]=4", "metadata")]
    [InlineData("""{"metadata":{"this-key-is-far-longer-than-forty-characters-allowed":"1"}}""", "metadata[this-key-is-far-longer-than-forty-characters-allowed]=1", "metadata[this-key-is-far-longer-than-forty-characters-allowed]")]
    public async Task A_bad_list_filter_is_a_tool_error_with_the_code_and_field_of_the_http_list(string arguments, string query, string field)
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var tool = await client.CallToolAsync("list_executions", JsonSerializer.Deserialize<Dictionary<string, object?>>(arguments)!);
        var http = await account.Client.GetApiAsync($"/v1/executions?{query}");

        http.Status.ShouldBe(400, http.Body);
        (tool.ErrorCode(), tool.ErrorField()).ShouldBe((http.Json.GetProperty("code").GetString(), field));
        http.Json.GetProperty("field").GetString().ShouldBe(field);
    }

    [Fact]
    public async Task A_metadata_filter_that_is_not_an_object_of_strings_is_a_tool_error_naming_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var number = await client.CallAsync("list_executions", new { metadata = new { order = 42 } });
        var text = await client.CallAsync("list_executions", new { metadata = "order=42" });

        (number.ErrorCode(), number.ErrorField()).ShouldBe(("VALIDATION_ERROR", "metadata"));
        (text.ErrorCode(), text.ErrorField()).ShouldBe(("VALIDATION_ERROR", "metadata"));
    }
}
