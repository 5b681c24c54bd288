namespace ModelRoute.Tests.Executions;

/// <summary>docs/api.md#endpoints: POST /v1/executions/batch, one result per item, in order, each item on its own key.</summary>
public sealed class BatchTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_mixed_batch_answers_200_with_one_result_per_item_in_order()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var earlier = await account.Client.PostJsonAsync("/v1/executions", Text("mix-earlier"));
        earlier.Status.ShouldBe(202, earlier.Body);

        var response = await PostBatchAsync(account.Client,
            Text("mix-0"),
            """{"model":"nope/not-a-model","input":{"prompt":"x"},"idempotency_key":"mix-1"}""",
            """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]}}""",
            """{"model":"sim/video","input":{"prompt":"waves","duration_seconds":2,"simulate":{"latency_ms":20000}},"idempotency_key":"mix-3"}""",
            Text("mix-earlier"),
            Text("mix-0"),
            Text("mix-0", "different"),
            """{"model":"sim/text","input":{"messages":[]},"idempotency_key":"mix-7"}""");

        response.Status.ShouldBe(200, response.Body);
        response.Json.GetProperty("object").GetString().ShouldBe("batch");
        var items = response.Json.GetProperty("data").EnumerateArray().ToList();
        items.Count.ShouldBe(8);
        items.Select(i => i.GetProperty("index").GetInt32()).ShouldBe([0, 1, 2, 3, 4, 5, 6, 7]);
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 422, 400, 202, 200, 200, 422, 400]);

        var created0 = ExecutionOf(items[0]);
        created0.GetProperty("object").GetString().ShouldBe("execution");
        created0.GetProperty("idempotency_key").GetString().ShouldBe("mix-0");
        created0.GetProperty("status").GetString().ShouldBe("PENDING");
        created0.GetProperty("model").GetString().ShouldBe("sim/text");
        ErrorOf(items[1], "MODEL_NOT_FOUND", 422).GetProperty("field").GetString().ShouldBe("executions[1].model");
        ErrorOf(items[2], "VALIDATION_ERROR", 400).GetProperty("field").GetString().ShouldBe("executions[2].idempotency_key");
        var created3 = ExecutionOf(items[3]);
        created3.GetProperty("model").GetString().ShouldBe("sim/video");
        created3.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.120000"); // 2 s × $0.05 × 1.2
        ExecutionOf(items[4]).GetProperty("id").GetString().ShouldBe(earlier.Json.GetProperty("id").GetString());
        ExecutionOf(items[5]).GetProperty("id").GetString().ShouldBe(created0.GetProperty("id").GetString());
        ErrorOf(items[6], "IDEMPOTENCY_KEY_REUSED", 422);
        ErrorOf(items[7], "VALIDATION_ERROR", 400).GetProperty("field").GetString().ShouldStartWith("executions[7].input");

        var stored = (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString()!).ToList();
        stored.ShouldBe(
            [created3.GetProperty("id").GetString()!, created0.GetProperty("id").GetString()!, earlier.Json.GetProperty("id").GetString()!],
            ignoreOrder: true);
        var holds = (await account.Client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "hold").ToList();
        holds.Count.ShouldBe(3);
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000 + 10_000 + 120_000);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_bare_array_is_accepted_as_the_list_of_submissions()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.PostJsonAsync("/v1/executions/batch", $"[{Text("bare-0")},{Text("bare-1")}]");

        response.Status.ShouldBe(200, response.Body);
        response.Json.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 202]);
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(2);
    }

    [Fact]
    public async Task A_batch_sent_again_with_the_same_keys_creates_nothing_new()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submissions = Enumerable.Range(0, 5).Select(i => Text($"again-{i}")).ToArray();

        var first = await PostBatchAsync(account.Client, submissions);
        var ledgerAfterFirst = (await account.Client.LedgerAsync()).Count;
        var balanceAfterFirst = await account.Client.BalanceAsync();
        var second = await PostBatchAsync(account.Client, submissions);

        first.Status.ShouldBe(200, first.Body);
        second.Status.ShouldBe(200, second.Body);
        var firstItems = first.Json.GetProperty("data").EnumerateArray().ToList();
        var secondItems = second.Json.GetProperty("data").EnumerateArray().ToList();
        firstItems.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 202, 202, 202, 202]);
        secondItems.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([200, 200, 200, 200, 200]);
        var firstIds = firstItems.Select(i => ExecutionOf(i).GetProperty("id").GetString()!).ToList();
        firstIds.Distinct().Count().ShouldBe(5);
        secondItems.Select(i => ExecutionOf(i).GetProperty("id").GetString()!).ShouldBe(firstIds);
        (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString()!).ShouldBe(firstIds, ignoreOrder: true);
        (await account.Client.LedgerAsync()).Count.ShouldBe(ledgerAfterFirst);
        (await account.Client.BalanceAsync()).ShouldBe(balanceAfterFirst);
        balanceAfterFirst.Held.ShouldBe(5 * 10_000);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Items_past_the_available_balance_are_refused_with_402_one_by_one()
    {
        using var account = await _gateway.CreateAccountAsync("0.030000");

        var response = await PostBatchAsync(account.Client, [.. Enumerable.Range(0, 5).Select(i => Text($"money-{i}"))]);

        response.Status.ShouldBe(200, response.Body);
        var items = response.Json.GetProperty("data").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 202, 202, 402, 402]);
        ErrorOf(items[3], "INSUFFICIENT_BALANCE", 402);
        ErrorOf(items[4], "INSUFFICIENT_BALANCE", 402);
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(3);
        (await account.Client.BalanceAsync()).ShouldBe((30_000L, 30_000L, 0L));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_batch_of_1001_items_is_refused_whole_with_400()
    {
        using var account = await _gateway.CreateAccountAsync("100.00");

        var response = await PostBatchAsync(account.Client, [.. Enumerable.Range(0, 1001).Select(i => Text($"big-{i}"))]);

        response.Status.ShouldBe(400, response.Body.Length > 500 ? response.Body[..500] : response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.GetProperty("field").GetString().ShouldBe("executions");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);
    }

    [Fact]
    public async Task A_batch_of_exactly_1000_items_gets_1000_results()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        // Items that fail validation keep this cheap: no execution, no hold, just one answer each.
        var items = Enumerable.Range(0, 1000).Select(i => $$"""{"model":"nope/model-{{i}}","input":{"prompt":"x"},"idempotency_key":"k-{{i}}"}""").ToArray();

        var response = await PostBatchAsync(account.Client, items);

        response.Status.ShouldBe(200, response.Body.Length > 500 ? response.Body[..500] : response.Body);
        var results = response.Json.GetProperty("data").EnumerateArray().ToList();
        results.Count.ShouldBe(1000);
        results.Select(r => r.GetProperty("index").GetInt32()).ShouldBe(Enumerable.Range(0, 1000));
        results.ShouldAllBe(r => r.GetProperty("status").GetInt32() == 422);
        ErrorOf(results[999], "MODEL_NOT_FOUND", 422).GetProperty("field").GetString().ShouldBe("executions[999].model");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("""{"executions":[]}""", "executions")]
    [InlineData("""[]""", "executions")]
    [InlineData("""{}""", "executions")]
    [InlineData("""{"executions":{}}""", "executions")]
    [InlineData("""{"executions":null}""", "executions")]
    [InlineData("""{"executions":[{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"x"}],"extra":1}""", "executions")]
    [InlineData("""{"executions":[{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"x"}]""", "body")]
    [InlineData("""not json at all""", "body")]
    public async Task A_batch_that_is_not_a_non_empty_list_of_submissions_is_refused_with_400(string body, string field)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.PostJsonAsync("/v1/executions/batch", body);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.TryGetProperty("field", out var named).ShouldBeTrue(response.Body);
        named.GetString().ShouldBe(field);
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        (await account.Client.BalanceAsync()).Held.ShouldBe(0);
    }

    [Fact]
    public async Task An_item_that_is_not_an_object_gets_its_own_400_and_the_others_still_run()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await PostBatchAsync(account.Client, "42", Text("after-a-bad-item"), "\"text\"");

        response.Status.ShouldBe(200, response.Body);
        var items = response.Json.GetProperty("data").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([400, 202, 400]);
        ErrorOf(items[0], "VALIDATION_ERROR", 400).GetProperty("field").GetString().ShouldBe("executions[0]");
        ErrorOf(items[2], "VALIDATION_ERROR", 400).GetProperty("field").GetString().ShouldBe("executions[2]");
        (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString())
            .ShouldBe([ExecutionOf(items[1]).GetProperty("id").GetString()]);
    }

    [Fact]
    public async Task A_batch_is_refused_without_authentication()
    {
        using var anonymous = _gateway.Anonymous();

        var response = await anonymous.PostJsonAsync("/v1/executions/batch", $$"""{"executions":[{{Text("anon")}}]}""");

        response.Status.ShouldBe(401, response.Body);
        response.ProblemCode.ShouldBe("UNAUTHENTICATED");
    }

    private static string Text(string key, string content = "hello") =>
        $$$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"{{{content}}}"}],"simulate":{"latency_ms":20000}},"idempotency_key":"{{{key}}}"}""";

    private static Task<ApiResponse> PostBatchAsync(HttpClient client, params string[] submissions) =>
        client.PostJsonAsync("/v1/executions/batch", $$"""{"executions":[{{string.Join(",", submissions)}}]}""");

    private static JsonElement ExecutionOf(JsonElement item)
    {
        IsAbsentOrNull(item, "error").ShouldBeTrue(item.ToString());
        return item.GetProperty("execution");
    }

    private static JsonElement ErrorOf(JsonElement item, string code, int status)
    {
        IsAbsentOrNull(item, "execution").ShouldBeTrue(item.ToString());
        var error = item.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe(code, item.ToString());
        error.GetProperty("status").GetInt32().ShouldBe(status);
        error.GetProperty("detail").GetString().ShouldNotBeNullOrEmpty();
        return error;
    }

    private static bool IsAbsentOrNull(JsonElement item, string name) =>
        !item.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null;
}
