namespace ModelRoute.Tests.Executions;

/// <summary>docs/api.md#idempotency: one idempotency key, one execution, one hold, whatever happens.</summary>
public sealed class IdempotencyTests : IAsyncLifetime
{
    /// <summary>A text submission that stays open long enough for the test to look at it.</summary>
    private const string SlowInput = """{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}}""";

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Same_key_and_same_request_replays_the_original_with_200_and_places_no_new_hold()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var body = Submission("replay-1");

        var first = await account.Client.PostJsonAsync("/v1/executions", body);
        var second = await account.Client.PostJsonAsync("/v1/executions", body);

        first.Status.ShouldBe(202, first.Body);
        first.Header("Idempotent-Replayed").ShouldBeNull();
        var id = first.Json.GetProperty("id").GetString()!;
        second.Status.ShouldBe(200, second.Body);
        second.Header("Idempotent-Replayed").ShouldBe("true");
        second.Json.GetProperty("id").GetString().ShouldBe(id);
        second.Json.GetProperty("object").GetString().ShouldBe("execution");
        second.Json.GetProperty("idempotency_key").GetString().ShouldBe("replay-1");
        second.Json.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.010000");

        (await account.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([id]);
        await AssertOneHoldAsync(account.Client, id);
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Replay_matches_a_body_whose_keys_are_in_another_order_with_other_white_space()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        const string original = """
            {"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"max_tokens":50,"simulate":{"latency_ms":20000}},"idempotency_key":"order-1","metadata":{"a":"1","b":2},"timeout_seconds":600,"webhook_events":["execution.completed"]}
            """;
        const string reordered = """
            {
              "timeout_seconds" : 600,
              "webhook_events" : [ "execution.completed" ],
              "metadata" : { "b" : 2, "a" : "1" },
              "idempotency_key" : "order-1",
              "input" : {
                "simulate" : { "latency_ms" : 20000 },
                "max_tokens" : 50,
                "messages" : [ { "content" : "hello", "role" : "user" } ]
              },
              "model" : "sim/text"
            }
            """;

        var first = await account.Client.PostJsonAsync("/v1/executions", original);
        var second = await account.Client.PostJsonAsync("/v1/executions", reordered);

        first.Status.ShouldBe(202, first.Body);
        second.Status.ShouldBe(200, second.Body);
        second.Header("Idempotent-Replayed").ShouldBe("true");
        second.Json.GetProperty("id").GetString().ShouldBe(first.Json.GetProperty("id").GetString());
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
        await AssertOneHoldAsync(account.Client, first.Json.GetProperty("id").GetString()!);
    }

    [Fact]
    public async Task Replay_after_completion_returns_the_execution_as_it_is_now_and_moves_no_money()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var body = Submission("done-1", """{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":0,"usage":{"input_tokens":1000,"output_tokens":500}}}""");
        var first = await account.Client.PostJsonAsync("/v1/executions", body);
        first.Status.ShouldBe(202, first.Body);
        var id = first.Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        var before = await account.Client.BalanceAsync();
        var ledgerBefore = (await account.Client.LedgerAsync()).Count;

        var replay = await account.Client.PostJsonAsync("/v1/executions", body);

        replay.Status.ShouldBe(200, replay.Body);
        replay.Header("Idempotent-Replayed").ShouldBe("true");
        replay.Json.GetProperty("id").GetString().ShouldBe(id);
        replay.Json.GetProperty("status").GetString().ShouldBe("COMPLETED");
        replay.Json.GetProperty("output").GetProperty("text").GetString().ShouldNotBeNullOrEmpty();
        replay.Json.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.002000");
        (await account.Client.BalanceAsync()).ShouldBe(before);
        (await account.Client.LedgerAsync()).Count.ShouldBe(ledgerBefore);
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
        await AssertOneHoldAsync(account.Client, id);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Replay_of_a_cancelled_execution_returns_it_cancelled_and_moves_no_money()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var body = Submission("cancel-1");
        var id = (await account.Client.PostJsonAsync("/v1/executions", body)).Json.GetProperty("id").GetString()!;
        var cancel = await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}");
        cancel.Status.ShouldBe(202, cancel.Body);
        var ledgerBefore = (await account.Client.LedgerAsync()).Count;

        var replay = await account.Client.PostJsonAsync("/v1/executions", body);

        replay.Status.ShouldBe(200, replay.Body);
        replay.Header("Idempotent-Replayed").ShouldBe("true");
        replay.Json.GetProperty("id").GetString().ShouldBe(id);
        replay.Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        (await account.Client.LedgerAsync()).Count.ShouldBe(ledgerBefore);
        (await account.Client.BalanceAsync()).ShouldBe((10_000_000L, 0L, 10_000_000L));
        await AssertOneHoldAsync(account.Client, id);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Replay_needs_no_available_balance_because_it_places_no_hold()
    {
        using var account = await _gateway.CreateAccountAsync("0.010000");
        var body = Submission("all-in");
        var first = await account.Client.PostJsonAsync("/v1/executions", body);
        first.Status.ShouldBe(202, first.Body);
        (await account.Client.BalanceAsync()).Available.ShouldBe(0);

        var replay = await account.Client.PostJsonAsync("/v1/executions", body);

        replay.Status.ShouldBe(200, replay.Body);
        replay.Json.GetProperty("id").GetString().ShouldBe(first.Json.GetProperty("id").GetString());
        (await account.Client.BalanceAsync()).ShouldBe((10_000L, 10_000L, 0L));
    }

    [Theory]
    [InlineData("input", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"goodbye"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"}}""")]
    [InlineData("input parameter", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"max_tokens":7,"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"}}""")]
    [InlineData("model", """{"model":"sim/video","input":{"prompt":"hello","simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"}}""")]
    [InlineData("metadata", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"b"}}""")]
    [InlineData("metadata added", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a","extra":true}}""")]
    [InlineData("timeout_seconds", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"},"timeout_seconds":601}""")]
    [InlineData("webhook_url", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"},"webhook_url":"https://93.184.216.34/hooks/modelroute"}""")]
    [InlineData("webhook_events", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":20000}},"idempotency_key":"KEY","metadata":{"team":"a"},"webhook_events":["execution.failed"]}""")]
    public async Task Same_key_with_a_different_request_is_refused_with_422_and_nothing_is_stored(string difference, string changed)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var key = "reuse-" + Guid.NewGuid().ToString("N");
        var original = await account.Client.PostJsonAsync(
            "/v1/executions",
            $$$"""{"model":"sim/text","input":{{{SlowInput}}},"idempotency_key":"{{{key}}}","metadata":{"team":"a"}}""");
        original.Status.ShouldBe(202, original.Body);
        var id = original.Json.GetProperty("id").GetString()!;
        var ledgerBefore = (await account.Client.LedgerAsync()).Count;

        var refused = await account.Client.PostJsonAsync("/v1/executions", changed.Replace("KEY", key, StringComparison.Ordinal));

        refused.Status.ShouldBe(422, $"{difference}: {refused.Body}");
        refused.ProblemCode.ShouldBe("IDEMPOTENCY_KEY_REUSED");
        refused.Json.GetProperty("field").GetString().ShouldBe("idempotency_key");
        refused.Header("Idempotent-Replayed").ShouldBeNull();
        (await account.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([id]);
        (await account.Client.LedgerAsync()).Count.ShouldBe(ledgerBefore);
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000);
        var stored = await account.Client.GetApiAsync($"/v1/executions/{id}");
        stored.Json.GetProperty("model").GetString().ShouldBe("sim/text");
        stored.Json.GetProperty("metadata").GetProperty("team").GetString().ShouldBe("a");
        stored.Json.GetProperty("webhook_url").ValueKind.ShouldBe(JsonValueKind.Null);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task The_original_request_is_still_replayable_after_a_refused_reuse()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var original = await account.Client.PostJsonAsync("/v1/executions", Submission("again-1"));
        var refused = await account.Client.PostJsonAsync("/v1/executions", Submission("again-1", """{"messages":[{"role":"user","content":"other"}]}"""));

        var replay = await account.Client.PostJsonAsync("/v1/executions", Submission("again-1"));

        original.Status.ShouldBe(202, original.Body);
        refused.Status.ShouldBe(422, refused.Body);
        replay.Status.ShouldBe(200, replay.Body);
        replay.Json.GetProperty("id").GetString().ShouldBe(original.Json.GetProperty("id").GetString());
        (await account.Client.ExecutionsAsync()).Count.ShouldBe(1);
    }

    [Theory]
    [InlineData("missing", "")]
    [InlineData("null", ""","idempotency_key":null""")]
    [InlineData("empty", ""","idempotency_key":"" """)]
    [InlineData("a number", ""","idempotency_key":12345""")]
    [InlineData("a control character", ""","idempotency_key":"ab\u0007cd" """)]
    public async Task A_submission_without_a_usable_idempotency_key_is_refused_with_400_naming_the_field(string what, string keyJson)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.PostJsonAsync("/v1/executions", $$"""{"model":"sim/text","input":{{SlowInput}}{{keyJson}}}""");

        response.Status.ShouldBe(400, $"{what}: {response.Body}");
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.Json.GetProperty("field").GetString().ShouldBe("idempotency_key");
        await AssertNothingStoredAsync(account.Client);
    }

    [Fact]
    public async Task A_key_longer_than_255_characters_is_refused_and_one_of_exactly_255_is_accepted()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var tooLong = await account.Client.PostJsonAsync("/v1/executions", Submission(new string('k', 256)));

        tooLong.Status.ShouldBe(400, tooLong.Body);
        tooLong.ProblemCode.ShouldBe("VALIDATION_ERROR");
        tooLong.Json.GetProperty("field").GetString().ShouldBe("idempotency_key");
        await AssertNothingStoredAsync(account.Client);

        var longest = await account.Client.PostJsonAsync("/v1/executions", Submission(new string('k', 255)));

        longest.Status.ShouldBe(202, longest.Body);
        longest.Json.GetProperty("idempotency_key").GetString().ShouldBe(new string('k', 255));
    }

    [Fact]
    public async Task The_same_key_in_two_accounts_makes_two_independent_executions()
    {
        using var alice = await _gateway.CreateAccountAsync("10.00");
        using var bob = await _gateway.CreateAccountAsync("10.00");
        var body = Submission("shared-key");

        var fromAlice = await alice.Client.PostJsonAsync("/v1/executions", body);
        var fromBob = await bob.Client.PostJsonAsync("/v1/executions", body);

        fromAlice.Status.ShouldBe(202, fromAlice.Body);
        fromBob.Status.ShouldBe(202, fromBob.Body);
        fromBob.Header("Idempotent-Replayed").ShouldBeNull();
        var aliceId = fromAlice.Json.GetProperty("id").GetString()!;
        var bobId = fromBob.Json.GetProperty("id").GetString()!;
        bobId.ShouldNotBe(aliceId);
        (await alice.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([aliceId]);
        (await bob.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([bobId]);
        await AssertOneHoldAsync(alice.Client, aliceId);
        await AssertOneHoldAsync(bob.Client, bobId);
        (await bob.Client.GetApiAsync($"/v1/executions/{aliceId}")).Status.ShouldBe(404);

        // A replay in one account still finds that account's own execution.
        var bobAgain = await bob.Client.PostJsonAsync("/v1/executions", body);
        bobAgain.Status.ShouldBe(200, bobAgain.Body);
        bobAgain.Json.GetProperty("id").GetString().ShouldBe(bobId);
    }

    [Fact]
    public async Task Two_hundred_concurrent_submissions_with_one_key_make_one_execution_and_one_hold()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var body = Submission("stampede");

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => account.Client.PostJsonAsync("/v1/executions", body)));

        responses.Where(r => r.Status is not (200 or 202)).ShouldBeEmpty();
        var created = responses.Where(r => r.Status == 202).ToList();
        created.Count.ShouldBe(1, string.Join("\n", responses.Select(r => r.Status).Distinct()));
        var id = created[0].Json.GetProperty("id").GetString()!;
        var replays = responses.Where(r => r.Status == 200).ToList();
        replays.Count.ShouldBe(199);
        replays.ShouldAllBe(r => r.Header("Idempotent-Replayed") == "true");
        responses.Select(r => r.Json.GetProperty("id").GetString()).Distinct().ShouldBe([id]);
        (await account.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([id]);
        await AssertOneHoldAsync(account.Client, id);
        (await account.Client.BalanceAsync()).Held.ShouldBe(10_000);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Concurrent_submissions_of_two_different_requests_on_one_key_store_only_the_winner()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var bodyA = Submission("contested", """{"messages":[{"role":"user","content":"version a"}],"simulate":{"latency_ms":20000}}""");
        var bodyB = Submission("contested", """{"messages":[{"role":"user","content":"version b"}],"simulate":{"latency_ms":20000}}""");

        var sent = Enumerable.Range(0, 100).SelectMany(_ => new[] { bodyA, bodyB }).ToList();
        var responses = await Task.WhenAll(sent.Select(b => account.Client.PostJsonAsync("/v1/executions", b)));

        var winners = responses.Select((r, i) => (Response: r, Body: sent[i])).Where(x => x.Response.Status == 202).ToList();
        winners.Count.ShouldBe(1, string.Join(",", responses.Select(r => r.Status).Distinct()));
        var (winner, winningBody) = winners[0];
        var id = winner.Json.GetProperty("id").GetString()!;
        for (var i = 0; i < responses.Length; i++)
        {
            if (ReferenceEquals(responses[i], winner))
            {
                continue;
            }

            if (sent[i] == winningBody)
            {
                responses[i].Status.ShouldBe(200, responses[i].Body);
                responses[i].Json.GetProperty("id").GetString().ShouldBe(id);
            }
            else
            {
                responses[i].Status.ShouldBe(422, responses[i].Body);
                responses[i].ProblemCode.ShouldBe("IDEMPOTENCY_KEY_REUSED");
            }
        }

        (await account.Client.ExecutionsAsync()).Select(IdOf).ShouldBe([id]);
        await AssertOneHoldAsync(account.Client, id);
        var stored = await account.Client.GetApiAsync($"/v1/executions/{id}");
        stored.Json.GetProperty("input").GetProperty("messages")[0].GetProperty("content").GetString()
            .ShouldBe(winningBody.Contains("version a", StringComparison.Ordinal) ? "version a" : "version b");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    private static string Submission(string key, string input = SlowInput) =>
        $$"""{"model":"sim/text","input":{{input}},"idempotency_key":"{{key}}"}""";

    private static string IdOf(JsonElement execution) => execution.GetProperty("id").GetString()!;

    private static async Task AssertOneHoldAsync(HttpClient client, string executionId)
    {
        var holds = (await client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "hold").ToList();
        holds.Count.ShouldBe(1);
        holds[0].GetProperty("execution_id").GetString().ShouldBe(executionId);
        holds[0].GetProperty("amount").GetString().ShouldBe("0.010000");
    }

    private static async Task AssertNothingStoredAsync(HttpClient client)
    {
        (await client.ExecutionsAsync()).ShouldBeEmpty();
        (await client.LedgerAsync()).Select(e => e.GetProperty("kind").GetString()).ShouldBe(["credit"]);
        var (balance, held, _) = await client.BalanceAsync();
        balance.ShouldBe(10_000_000);
        held.ShouldBe(0);
    }
}
