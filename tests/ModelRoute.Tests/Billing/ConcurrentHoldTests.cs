namespace ModelRoute.Tests.Billing;

/// <summary>docs/api.md#money: a hold is placed atomically with the insert, only if the available balance covers it.</summary>
public sealed class ConcurrentHoldTests : IAsyncLifetime
{
    /// <summary>Holds exactly the $0.01 floor and stays open for the length of a test.</summary>
    private const string Slow = """{"latency_ms":20000}""";

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Two_hundred_concurrent_submissions_never_hold_more_than_the_balance()
    {
        using var account = await _gateway.CreateAccountAsync("0.105000");

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => account.Client.SubmitTextAsync(simulate: Slow)));

        var accepted = responses.Where(r => r.Status == 202).ToList();
        var refused = responses.Where(r => r.Status != 202).ToList();
        accepted.Count.ShouldBe(10);
        refused.Count.ShouldBe(190);
        foreach (var response in refused)
        {
            response.Status.ShouldBe(402, response.Body);
            response.ProblemCode.ShouldBe("INSUFFICIENT_BALANCE");
        }

        accepted.ShouldAllBe(r => r.Json.GetProperty("cost").GetProperty("held").GetString() == "0.010000");
        var (balance, held, available) = await account.Client.BalanceAsync();
        balance.ShouldBe(105_000);
        held.ShouldBe(accepted.Count * 10_000L);
        available.ShouldBe(5_000);

        var acceptedIds = accepted.Select(r => r.Json.GetProperty("id").GetString()!).ToList();
        (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString()!).ShouldBe(acceptedIds, ignoreOrder: true);

        var ledger = await account.Client.LedgerAsync();
        var holds = ledger.Where(e => e.GetProperty("kind").GetString() == "hold").ToList();
        holds.Count.ShouldBe(accepted.Count);
        holds.Select(e => e.GetProperty("execution_id").GetString()!).ShouldBe(acceptedIds, ignoreOrder: true);

        // Every entry records the account right after it: the held amount never passed the balance.
        foreach (var entry in ledger)
        {
            HttpExtensions.Micros(entry.GetProperty("held")).ShouldBeLessThanOrEqualTo(HttpExtensions.Micros(entry.GetProperty("balance")), entry.ToString());
        }

        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task An_account_with_exactly_the_hold_available_is_accepted_once_then_refused()
    {
        using var account = await _gateway.CreateAccountAsync("0.010000");

        var first = await account.Client.SubmitTextAsync(simulate: Slow);
        var second = await account.Client.SubmitTextAsync(simulate: Slow);

        first.Status.ShouldBe(202, first.Body);
        second.Status.ShouldBe(402, second.Body);
        second.ProblemCode.ShouldBe("INSUFFICIENT_BALANCE");
        (await account.Client.BalanceAsync()).ShouldBe((10_000L, 10_000L, 0L));
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_zero_balance_account_is_refused_with_402_and_nothing_is_stored()
    {
        using var account = await _gateway.CreateAccountAsync("0");

        var response = await account.Client.SubmitTextAsync(key: "broke-1", simulate: Slow);

        response.Status.ShouldBe(402, response.Body);
        response.ProblemCode.ShouldBe("INSUFFICIENT_BALANCE");
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        (await account.Client.LedgerAsync()).ShouldBeEmpty();
        (await account.Client.BalanceAsync()).ShouldBe((0L, 0L, 0L));
    }

    [Fact]
    public async Task A_refused_submission_does_not_use_up_its_idempotency_key()
    {
        using var account = await _gateway.CreateAccountAsync("0");
        var refused = await account.Client.SubmitTextAsync(key: "retry-after-topup", simulate: Slow);
        refused.Status.ShouldBe(402, refused.Body);

        using (var admin = _gateway.Admin())
        {
            var credit = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/credits", """{"amount_usd":"1.00","reference":"topup"}""");
            credit.Status.ShouldBe(201, credit.Body);
        }

        var accepted = await account.Client.SubmitTextAsync(key: "retry-after-topup", simulate: Slow);

        accepted.Status.ShouldBe(202, accepted.Body);
        accepted.Header("Idempotent-Replayed").ShouldBeNull();
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Theory]
    [InlineData("\"0.009999\"", "0.010000")]
    [InlineData("\"0\"", "0.010000")]
    [InlineData("0.005", "0.010000")]
    public async Task A_hold_above_max_cost_usd_is_refused_with_422_and_nothing_is_stored(string cap, string hold)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.SubmitTextAsync(simulate: Slow, extra: $",\"max_cost_usd\":{cap}");

        response.Status.ShouldBe(422, response.Body);
        response.ProblemCode.ShouldBe("COST_CAP_EXCEEDED");
        response.Json.GetProperty("field").GetString().ShouldBe("max_cost_usd");
        response.Json.GetProperty("detail").GetString().ShouldNotBeNull().ShouldContain(hold);
        await AssertUntouchedAsync(account.Client);
    }

    [Fact]
    public async Task Max_cost_usd_is_compared_with_the_hold_not_the_estimate()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        // 4000 characters ≈ 1000 input tokens, max_tokens 100000: estimate 201000 µ$, hold × 1.2 = 241200 µ$.
        var input = $$$"""{"messages":[{"role":"user","content":"{{{new string('a', 4000)}}}"}],"max_tokens":100000,"simulate":{"latency_ms":20000}}""";

        var aboveEstimateBelowHold = await account.Client.SubmitAsync("sim/text", input, extra: ",\"max_cost_usd\":\"0.241199\"");

        aboveEstimateBelowHold.Status.ShouldBe(422, aboveEstimateBelowHold.Body);
        aboveEstimateBelowHold.ProblemCode.ShouldBe("COST_CAP_EXCEEDED");
        await AssertUntouchedAsync(account.Client);

        var atTheHold = await account.Client.SubmitAsync("sim/text", input, extra: ",\"max_cost_usd\":\"0.241200\"");

        atTheHold.Status.ShouldBe(202, atTheHold.Body);
        atTheHold.Json.GetProperty("cost").GetProperty("estimated").GetString().ShouldBe("0.201000");
        atTheHold.Json.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.241200");
        (await account.Client.BalanceAsync()).Held.ShouldBe(241_200);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Theory]
    [InlineData("\"0.010000\"")]
    [InlineData("\"0.01\"")]
    [InlineData("0.01")]
    [InlineData("\"5\"")]
    [InlineData("null")]
    public async Task A_hold_at_or_below_max_cost_usd_is_accepted(string cap)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.SubmitTextAsync(simulate: Slow, extra: $",\"max_cost_usd\":{cap}");

        response.Status.ShouldBe(202, response.Body);
        response.Json.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.010000");
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000);
    }

    [Theory]
    [InlineData("\"-0.01\"")]
    [InlineData("\"0.0000001\"")]
    [InlineData("\"1e3\"")]
    [InlineData("\"ten\"")]
    [InlineData("true")]
    public async Task An_unreadable_max_cost_usd_is_a_validation_error(string cap)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.SubmitTextAsync(simulate: Slow, extra: $",\"max_cost_usd\":{cap}");

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.GetProperty("field").GetString().ShouldBe("max_cost_usd");
        await AssertUntouchedAsync(account.Client);
    }

    private static async Task AssertUntouchedAsync(HttpClient client)
    {
        (await client.ExecutionsAsync()).ShouldBeEmpty();
        (await client.LedgerAsync()).Select(e => e.GetProperty("kind").GetString()).ShouldBe(["credit"]);
        (await client.BalanceAsync()).ShouldBe((10_000_000L, 0L, 10_000_000L));
    }
}
