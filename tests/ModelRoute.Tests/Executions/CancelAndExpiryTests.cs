namespace ModelRoute.Tests.Executions;

public sealed class CancelAndExpiryTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Cancel_of_a_running_execution_answers_202_and_releases_the_hold_without_a_charge()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "PROCESSING");

        var cancelled = await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}");

        cancelled.Status.ShouldBe(202, cancelled.Body);
        cancelled.Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        var (balance, held, _) = await account.Client.BalanceAsync();
        balance.ShouldBe(1_000_000);
        held.ShouldBe(0);
        var kinds = (await account.Client.LedgerAsync()).Select(e => e.GetProperty("kind").GetString()).ToList();
        kinds.ShouldBe(["credit", "hold", "release"]);
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("CANCELLED");
    }

    [Fact]
    public async Task Cancel_of_a_terminal_execution_is_409_invalid_state_and_changes_nothing()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);
        var before = await account.Client.BalanceAsync();

        var response = await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}");

        response.Status.ShouldBe(409);
        response.ProblemCode.ShouldBe("INVALID_STATE");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe(done.GetProperty("status").GetString());
        (await account.Client.BalanceAsync()).ShouldBe(before);
    }

    [Fact]
    public async Task Cancel_of_an_unknown_execution_is_404()
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await account.Client.PostJsonAsync("/v1/executions/exe_00000000000000000000000000/cancel", "{}");

        response.Status.ShouldBe(404);
        response.ProblemCode.ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task A_provider_callback_after_cancel_is_acknowledged_and_changes_nothing()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        var id = (await account.Client.SubmitAsync("sim/image", """{"prompt":"late","simulate":{"latency_ms":1500}}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");

        (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);
        await Eventually.HoldsAsync(
            () => _gateway.SimulatorCallbacks.Any(c => c.Url.AbsolutePath.EndsWith(id, StringComparison.Ordinal)),
            "the simulator's late callback arrived");

        var callback = _gateway.SimulatorCallbacks.Single(c => c.Url.AbsolutePath.EndsWith(id, StringComparison.Ordinal));
        callback.Status.ShouldBe(200);
        callback.Body.ShouldContain("\"changed\":false");
        var after = await account.Client.GetApiAsync($"/v1/executions/{id}");
        after.Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        after.Json.GetProperty("output").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task An_execution_past_its_deadline_expires_with_deadline_exceeded_and_its_hold_released()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":30000}""", extra: ",\"timeout_seconds\":1")).Json.GetProperty("id").GetString()!;

        var expired = await account.Client.WaitForTerminalAsync(id);

        expired.GetProperty("status").GetString().ShouldBe("EXPIRED");
        expired.GetProperty("error").GetProperty("code").GetString().ShouldBe("DEADLINE_EXCEEDED");
        expired.GetProperty("cost").GetProperty("actual").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_provider_callback_after_expiry_is_acknowledged_and_changes_nothing()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        var id = (await account.Client.SubmitAsync("sim/image", """{"prompt":"slow","simulate":{"latency_ms":2500}}""", extra: ",\"timeout_seconds\":1"))
            .Json.GetProperty("id").GetString()!;

        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("EXPIRED");
        await Eventually.HoldsAsync(
            () => _gateway.SimulatorCallbacks.Any(c => c.Url.AbsolutePath.EndsWith(id, StringComparison.Ordinal)),
            "the simulator's late callback arrived");

        _gateway.SimulatorCallbacks.Single(c => c.Url.AbsolutePath.EndsWith(id, StringComparison.Ordinal)).Body.ShouldContain("\"changed\":false");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("EXPIRED");
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task A_provider_callback_without_the_attempt_token_is_refused()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitAsync("sim/image", """{"prompt":"x","simulate":{"latency_ms":3000}}""")).Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        using var anonymous = _gateway.Anonymous();

        var forged = await anonymous.PostJsonAsync($"/v1/provider-callbacks/sim/{id}?token=not-the-token", """{"status":"succeeded"}""");
        var missing = await anonymous.PostJsonAsync($"/v1/provider-callbacks/sim/{id}", """{"status":"succeeded"}""");
        var unknown = await anonymous.PostJsonAsync("/v1/provider-callbacks/sim/exe_00000000000000000000000000?token=x", """{"status":"succeeded"}""");

        forged.Status.ShouldBe(401);
        missing.Status.ShouldBe(401);
        unknown.Status.ShouldBe(404);
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("AWAITING_WEBHOOK");
    }

    [Fact]
    public async Task Cancel_racing_completion_ends_in_exactly_one_terminal_state_with_a_balanced_ledger()
    {
        using var account = await _gateway.CreateAccountAsync("5.00");
        var ids = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            ids.Add((await account.Client.SubmitTextAsync(simulate: $$"""{"latency_ms":{{i * 7}}}""")).Json.GetProperty("id").GetString()!);
        }

        var cancels = await Task.WhenAll(ids.Select(id => account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")));

        cancels.ShouldAllBe(c => c.Status == 202 || c.Status == 409);
        foreach (var id in ids)
        {
            var final = await account.Client.WaitForTerminalAsync(id);
            final.GetProperty("status").GetString().ShouldBeOneOf("CANCELLED", "COMPLETED");
        }

        var (_, held, _) = await account.Client.BalanceAsync();
        held.ShouldBe(0);
        await Ledger.AssertBalancedAsync(account.Client);
    }
}
