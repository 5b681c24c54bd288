namespace ModelRoute.Tests.Routing;

public sealed class RetryTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Server_errors_are_retried_until_the_provider_answers_and_attempts_are_counted()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await EndOfAsync(account, """{"fail":"server_error","fail_times":2,"latency_ms":0}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(3);
        done.GetProperty("error").ValueKind.ShouldBe(JsonValueKind.Null);
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Select(a => a.GetProperty("outcome").GetString()).ShouldBe(["failed", "failed", "completed"]);
        log[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_content_policy_refusal_fails_at_once_without_retry_or_charge()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");

        var done = await EndOfAsync(account, """{"fail":"content_policy"}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        done.GetProperty("error").GetProperty("provider").GetString().ShouldBe("sim");
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_malformed_provider_answer_fails_as_provider_error()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await EndOfAsync(account, """{"fail":"bad_response"}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_provider_that_always_fails_is_given_up_on_after_the_routes_attempts_and_nothing_is_charged()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");

        var done = await EndOfAsync(account, """{"fail":"server_error"}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(3, "Dispatch:MaxAttemptsPerRoute, and sim/text has one route");
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeTrue();
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task Rate_limits_honour_the_providers_retry_after()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await EndOfAsync(account, """{"fail":"rate_limit","fail_times":1,"retry_after_ms":400,"latency_ms":0}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        log.Count.ShouldBe(2);
        log[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_RATE_LIMITED");
        var gap = log[1].GetProperty("started_at").GetDateTimeOffset() - log[0].GetProperty("started_at").GetDateTimeOffset();
        gap.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(400)); // never sooner than Retry-After
    }

    [Fact]
    public async Task Timeouts_are_retried()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await EndOfAsync(account, """{"fail":"timeout","fail_times":1,"latency_ms":0}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        done.GetProperty("attempt_log")[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_TIMEOUT");
    }

    [Fact]
    public async Task A_failure_reported_by_callback_is_retried_with_a_new_provider_job()
    {
        using var account = await _gateway.CreateAccountAsync();

        var id = (await account.Client.SubmitAsync("sim/image", """{"prompt":"x","simulate":{"fail":"server_error","fail_times":1,"latency_ms":50}}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        done.GetProperty("artifacts").GetArrayLength().ShouldBe(1);
    }

    /// <summary>Submits a text execution the simulator answers as <paramref name="simulate"/> says, and waits for its end.</summary>
    private static async Task<JsonElement> EndOfAsync(TestAccount account, string simulate)
    {
        var id = (await account.Client.SubmitTextAsync(simulate: simulate)).Json.GetProperty("id").GetString()!;
        return await account.Client.WaitForTerminalAsync(id);
    }
}

public sealed class RetryDeadlineTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:10",
        ["ModelRoute:Dispatch:RetryMaxDelay"] = "00:01:00",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task No_retry_is_scheduled_past_the_deadline_the_execution_fails_with_the_last_error()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");

        var id = (await account.Client.SubmitTextAsync(simulate: """{"fail":"server_error","latency_ms":0}""", extra: ",\"timeout_seconds\":3")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        // The next retry would come 5–10 s later, after the 3 s deadline: fail now with the provider's error.
        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }
}
