using System.Globalization;

namespace ModelRoute.Tests.Executions;

/// <summary>
/// GET /v1/executions searched: by idempotency key, by metadata[key]=value, by created_before, and these with the other
/// filters and the cursor. Exact matches only: what looks like a pattern or JSON is just text.
/// </summary>
public sealed class ListSearchTests : IAsyncLifetime
{
    private const string Slow = """{"latency_ms":20000}""";

    /// <summary>Keys and values that would mean something to LIKE, to SQL, to a JSON path or to a reader.</summary>
    private static readonly string[] Hostile =
    [
        "o'1%", "o_1", "%", "_", "O'1%", "\"quoted\"", "{\"order\":\"o_1\"}", "$.order", "naïve-ключ-名前", "a\u202Eb", "x\u200By", "back\\slash",
    ];

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task An_idempotency_key_finds_exactly_its_execution_and_never_a_pattern_or_another_accounts()
    {
        using var alice = await _gateway.CreateAccountAsync("10.00");
        using var bob = await _gateway.CreateAccountAsync("10.00");
        var byKey = new Dictionary<string, string>();
        foreach (var key in Hostile.Where(k => !k.Contains('\u202E') && !k.Contains('\u200B')))
        {
            byKey[key] = await SubmitAsync(alice.Client, key, metadata: null);
        }

        await SubmitAsync(bob.Client, "%", metadata: null);

        foreach (var (key, id) in byKey)
        {
            (await alice.Client.ExecutionsAsync("&idempotency_key=" + Uri.EscapeDataString(key))).Select(IdOf).ShouldBe([id], key);
        }

        (await alice.Client.ExecutionsAsync("&idempotency_key=o")).ShouldBeEmpty("no prefix match");
        (await alice.Client.ExecutionsAsync("&idempotency_key=" + Uri.EscapeDataString("o'1%%"))).ShouldBeEmpty();
        (await alice.Client.ExecutionsAsync("&idempotency_key=%25&status=COMPLETED")).ShouldBeEmpty("the key's execution is still processing");
        (await alice.Client.ExecutionsAsync("&idempotency_key=%25&model=sim%2Ftext")).Select(IdOf).ShouldBe([byKey["%"]]);
        (await bob.Client.ExecutionsAsync("&idempotency_key=" + Uri.EscapeDataString("o'1%"))).ShouldBeEmpty("alice's key is not bob's");
        (await bob.Client.ExecutionsAsync("&idempotency_key=%25")).Count.ShouldBe(1);
    }

    [Fact]
    public async Task Metadata_search_matches_a_top_level_string_value_exactly_and_ands_the_pairs()
    {
        using var alice = await _gateway.CreateAccountAsync("10.00");
        using var bob = await _gateway.CreateAccountAsync("10.00");
        var byValue = new Dictionary<string, string>();
        foreach (var value in Hostile)
        {
            byValue[value] = await SubmitAsync(alice.Client, null, $$"""{"order":{{JsonSerializer.Serialize(value)}},"tier":"gold"}""");
        }

        var number = await SubmitAsync(alice.Client, null, """{"order":5,"tier":"silver"}""");
        var nested = await SubmitAsync(alice.Client, null, """{"note":"{\"order\":\"o_1\"}"}""");
        var oddKey = await SubmitAsync(alice.Client, null, """{"a.b\"c $[0]":"v","tier":"silver"}""");
        await SubmitAsync(bob.Client, null, """{"order":"o_1","tier":"gold"}""");

        foreach (var (value, id) in byValue)
        {
            (await alice.Client.ExecutionsAsync(Meta("order", value))).Select(IdOf).ShouldBe([id], value);
        }

        (await alice.Client.ExecutionsAsync(Meta("order", "5"))).ShouldBeEmpty("a number is not the string '5'");
        (await alice.Client.ExecutionsAsync(Meta("order", "o"))).ShouldBeEmpty("no prefix match");
        (await alice.Client.ExecutionsAsync(Meta("note", """{"order":"o_1"}"""))).Select(IdOf).ShouldBe([nested]);
        (await alice.Client.ExecutionsAsync(Meta("a.b\"c $[0]", "v"))).Select(IdOf).ShouldBe([oddKey]);
        (await alice.Client.ExecutionsAsync(Meta("tier", "silver"))).Select(IdOf).ShouldBe([oddKey, number]);
        (await alice.Client.ExecutionsAsync(Meta("tier", "gold") + Meta("order", "o_1"))).Select(IdOf).ShouldBe([byValue["o_1"]]);
        (await alice.Client.ExecutionsAsync(Meta("tier", "silver") + Meta("order", "o_1"))).ShouldBeEmpty("both pairs must hold");
        (await alice.Client.ExecutionsAsync(Meta("missing", "o_1"))).ShouldBeEmpty();
        (await bob.Client.ExecutionsAsync(Meta("order", "o'1%"))).ShouldBeEmpty("alice's metadata is not bob's");
        (await bob.Client.ExecutionsAsync(Meta("order", "o_1"))).Count.ShouldBe(1);
    }

    [Fact]
    public async Task Filters_combine_and_the_cursor_pages_through_the_filtered_result()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var done = new List<string>();
        var open = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var finished = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""", extra: ""","metadata":{"batch":"b1"}""");
            done.Add(IdOf(finished.Json));
            open.Add(await SubmitAsync(account.Client, null, """{"batch":"b1"}"""));
            await SubmitAsync(account.Client, null, """{"batch":"b2"}""");
        }

        foreach (var id in done)
        {
            (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        var pages = await account.Client.PagesAsync("/v1/executions?limit=2&status=COMPLETED&model=sim%2Ftext" + Meta("batch", "b1"));
        pages.Select(p => p.GetProperty("data").GetArrayLength()).ShouldBe([2, 2, 1]);
        pages.SelectMany(p => p.GetProperty("data").EnumerateArray()).Select(IdOf).ShouldBe(Enumerable.Reverse(done).ToList());

        var openPages = await account.Client.PagesAsync("/v1/executions?limit=3&status=PROCESSING" + Meta("batch", "b1"));
        openPages.SelectMany(p => p.GetProperty("data").EnumerateArray()).Select(IdOf).ShouldBe(Enumerable.Reverse(open).ToList());
        (await account.Client.ExecutionsAsync("&model=sim%2Fimage" + Meta("batch", "b1"))).ShouldBeEmpty();
    }

    [Fact]
    public async Task Created_before_and_created_after_bound_a_window()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var first = await SubmitAsync(account.Client, null, null);
        await Task.Delay(5); // each its own millisecond
        var middle = await SubmitAsync(account.Client, null, null);
        await Task.Delay(5);
        var last = await SubmitAsync(account.Client, null, null);
        var all = await account.Client.ExecutionsAsync();
        var created = all.ToDictionary(IdOf, e => e.GetProperty("created_at").GetString()!);

        (await account.Client.ExecutionsAsync("&created_before=" + Uri.EscapeDataString(created[last]))).Select(IdOf).ShouldBe([middle, first]);
        var window = $"&created_after={Uri.EscapeDataString(created[first])}&created_before={Uri.EscapeDataString(created[last])}";
        (await account.Client.ExecutionsAsync(window)).Select(IdOf).ShouldBe([middle]);
        (await account.Client.ExecutionsAsync("&created_before=2000-01-01T00:00:00Z")).ShouldBeEmpty();
        var unix = DateTimeOffset.Parse(created[last], CultureInfo.InvariantCulture).AddSeconds(2).ToUnixTimeSeconds();
        (await account.Client.ExecutionsAsync($"&created_before={unix}")).Count.ShouldBe(3);
    }

    [Theory]
    [InlineData("metadata=x", "metadata")]
    [InlineData("metadata[]=x", "metadata[]")]
    [InlineData("metadata[a]b=x", "metadata[a]b")]
    [InlineData("metadataz=x", "metadataz")]
    [InlineData("metadata[a]=1&metadata[a]=2", "metadata[a]")]
    [InlineData("metadata[a]=1&metadata[b]=2&metadata[c]=3&metadata[d]=4", "metadata")]
    [InlineData("metadata[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]=1", "metadata[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]")]
    [InlineData("metadata[a%E2%80%AEb]=1", "metadata[a\u202Eb]")]
    [InlineData("metadata[a]=%00", "metadata[a]")]
    [InlineData("idempotency_key=", "idempotency_key")]
    [InlineData("idempotency_key=a%00b", "idempotency_key")]
    [InlineData("created_before=yesterday", "created_before")]
    [InlineData("model=sim%00text", "model")]
    public async Task Bad_search_parameters_are_refused_with_400_naming_the_parameter(string query, string field)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.GetApiAsync("/v1/executions?" + query);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe(field);
    }

    [Fact]
    public async Task Over_long_values_are_refused_and_the_longest_allowed_are_searched()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var longValue = new string('v', 500);
        var id = await SubmitAsync(account.Client, new string('k', 255), $$"""{"{{new string('m', 40)}}":"{{longValue}}"}""");

        (await account.Client.ExecutionsAsync(Meta(new string('m', 40), longValue))).Select(IdOf).ShouldBe([id]);
        (await account.Client.ExecutionsAsync("&idempotency_key=" + new string('k', 255))).Select(IdOf).ShouldBe([id]);
        (await account.Client.GetApiAsync("/v1/executions?" + Meta("m", longValue + "v")[1..])).ProblemField().ShouldBe("metadata[m]");
        (await account.Client.GetApiAsync("/v1/executions?idempotency_key=" + new string('k', 256))).ProblemField().ShouldBe("idempotency_key");
    }

    [Fact]
    public async Task The_list_is_documented_with_its_search_parameters()
    {
        using var client = _gateway.Anonymous();

        var document = await client.GetApiAsync("/openapi/v1.json");

        document.Status.ShouldBe(200, document.Body);
        var operation = document.Json.GetProperty("paths").GetProperty("/v1/executions").GetProperty("get");
        operation.GetProperty("operationId").GetString().ShouldBe("listExecutions");
        operation.GetProperty("description").GetString()!.ShouldContain("metadata[key]=value");
        var names = operation.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()!).ToList();
        new[] { "status", "model", "created_after", "created_before", "idempotency_key", "limit", "cursor" }.ShouldBeSubsetOf(names);
    }

    private static string Meta(string key, string value) => $"&metadata%5B{Uri.EscapeDataString(key)}%5D={Uri.EscapeDataString(value)}";

    /// <summary>A slow text execution (it stays PROCESSING) with this key (or a fresh one) and metadata JSON.</summary>
    private static async Task<string> SubmitAsync(HttpClient client, string? key, string? metadata)
    {
        var response = await client.SubmitTextAsync(
            key is null ? null : JsonSerializer.Serialize(key)[1..^1], Slow, metadata is null ? "" : ",\"metadata\":" + metadata);
        response.Status.ShouldBe(202, response.Body);
        return IdOf(response.Json);
    }

    private static string IdOf(JsonElement element) => element.GetProperty("id").GetString()!;
}
