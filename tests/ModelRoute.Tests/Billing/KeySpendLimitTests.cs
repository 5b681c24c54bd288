namespace ModelRoute.Tests.Billing;

/// <summary>docs/tenancy.md: a key's max_spend_usd caps what its executions hold plus what they were charged.</summary>
public sealed class KeySpendLimitTests : IAsyncLifetime
{
    /// <summary>Holds exactly the $0.01 floor and stays open for the length of a test.</summary>
    private const string Slow = """{"latency_ms":20000}""";

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    private async Task<(HttpClient Client, string KeyId)> KeyAsync(TestAccount account, string body)
    {
        var created = await account.Client.PostJsonAsync("/v1/api-keys", body);
        created.Status.ShouldBe(201, created.Body);
        return (_gateway.WithBearer(created.Json.GetProperty("key").GetString()!), created.Json.GetProperty("id").GetString()!);
    }

    private async Task<System.Text.Json.JsonElement> ShownAsync(TestAccount account, string keyId) =>
        (await account.Client.GetApiAsync("/v1/api-keys?limit=100")).Json.GetProperty("data").EnumerateArray().Single(k => k.GetProperty("id").GetString() == keyId);

    [Fact]
    public async Task A_hundred_concurrent_submissions_on_a_key_whose_limit_fits_ten_hold_exactly_ten()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var (limited, keyId) = await KeyAsync(account, """{"name":"capped","max_spend_usd":"0.105"}""");
        using var _ = limited;
        var before = await _gateway.CountRowsAsync("executions");

        var responses = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => limited.SubmitTextAsync(simulate: Slow)));

        var accepted = responses.Where(r => r.Status == 202).ToList();
        accepted.Count.ShouldBe(10, string.Join("\n", responses.Where(r => r.Status != 202 && r.Status != 402).Select(r => r.ToString())));
        foreach (var refused in responses.Where(r => r.Status != 202))
        {
            refused.Status.ShouldBe(402, refused.Body);
            refused.ProblemCode.ShouldBe("KEY_SPEND_LIMIT");
        }

        (await _gateway.CountRowsAsync("executions")).ShouldBe(before + 10);
        var (_, held, _) = await account.Client.BalanceAsync();
        held.ShouldBe(100_000);
        var shown = await ShownAsync(account, keyId);
        shown.GetProperty("held").GetString().ShouldBe("0.100000");
        shown.GetProperty("spent").GetString().ShouldBe("0.000000");

        // The account's other key is not bound by this key's limit.
        (await account.Client.SubmitTextAsync(simulate: Slow)).Status.ShouldBe(202);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Spent_after_settlement_is_what_the_keys_executions_were_charged_and_frees_the_held_room()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var (limited, keyId) = await KeyAsync(account, """{"max_spend_usd":"1.00"}""");
        using var _ = limited;
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var submitted = await limited.SubmitTextAsync();
            submitted.Status.ShouldBe(202, submitted.Body);
            ids.Add(submitted.Json.GetProperty("id").GetString()!);
        }

        var charged = 0L;
        foreach (var id in ids)
        {
            var ended = await limited.WaitForTerminalAsync(id);
            ended.GetProperty("status").GetString().ShouldBe("COMPLETED");
            charged += HttpExtensions.Micros(ended.GetProperty("cost").GetProperty("actual"));
        }

        charged.ShouldBeGreaterThan(0);
        var charges = (await account.Client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "charge").Sum(e => HttpExtensions.Micros(e.GetProperty("amount")));
        charges.ShouldBe(charged);
        var shown = await ShownAsync(account, keyId);
        HttpExtensions.Micros(shown.GetProperty("spent")).ShouldBe(charged);
        shown.GetProperty("held").GetString().ShouldBe("0.000000");
    }

    [Fact]
    public async Task A_key_without_a_limit_is_never_refused_for_one_and_still_counts_what_it_spent()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;

        var responses = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => account.Client.SubmitTextAsync()));

        responses.ShouldAllBe(r => r.Status == 202);
        foreach (var response in responses)
        {
            await account.Client.WaitForTerminalAsync(response.Json.GetProperty("id").GetString()!);
        }

        var charges = (await account.Client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "charge").Sum(e => HttpExtensions.Micros(e.GetProperty("amount")));
        await Eventually.HoldsAsync(
            async () => HttpExtensions.Micros((await ShownAsync(account, keyId)).GetProperty("spent")) == charges,
            "the key's spent equals the account's charges");
        charges.ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task The_balance_is_refused_before_the_key_limit_and_a_replay_before_either()
    {
        using var account = await _gateway.CreateAccountAsync("0.010000");
        var (limited, _) = await KeyAsync(account, """{"max_spend_usd":"0.015"}""");
        using var client = limited;
        var first = await limited.SubmitTextAsync(key: "replayed", simulate: Slow);
        first.Status.ShouldBe(202, first.Body);

        var replay = await limited.SubmitTextAsync(key: "replayed", simulate: Slow);
        var overBoth = await limited.SubmitTextAsync(simulate: Slow);

        replay.Status.ShouldBe(200, replay.Body);
        overBoth.Status.ShouldBe(402, overBoth.Body);
        overBoth.ProblemCode.ShouldBe("INSUFFICIENT_BALANCE");
        (await _gateway.Admin().PostJsonAsync($"/v1/admin/accounts/{account.Id}/credits", """{"amount_usd":"5.00","reference":"more"}""")).Status.ShouldBe(201);
        var overKey = await limited.SubmitTextAsync(simulate: Slow);
        overKey.Status.ShouldBe(402, overKey.Body);
        overKey.ProblemCode.ShouldBe("KEY_SPEND_LIMIT");
    }

    [Fact]
    public async Task A_batch_on_a_limited_key_takes_the_items_that_fit()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var (limited, _) = await KeyAsync(account, """{"max_spend_usd":"0.03"}""");
        using var client = limited;
        var item = """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hi"}],"simulate":{"latency_ms":20000}},"idempotency_key":"K"}""";
        var body = "{\"executions\":[" + string.Join(",", Enumerable.Range(0, 5).Select(i => item.Replace("\"K\"", $"\"b{i}\"", StringComparison.Ordinal))) + "]}";

        var batch = await limited.PostJsonAsync("/v1/executions/batch", body);

        batch.Status.ShouldBe(200, batch.Body);
        var statuses = batch.Json.GetProperty("data").EnumerateArray().Select(r => r.GetProperty("status").GetInt32()).ToList();
        statuses.Count(s => s == 202).ShouldBe(3);
        statuses.Count(s => s == 402).ShouldBe(2);
    }
}
