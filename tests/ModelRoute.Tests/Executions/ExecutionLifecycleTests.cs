namespace ModelRoute.Tests.Executions;

public sealed class ExecutionLifecycleTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Submit_answers_202_with_location_then_completes_and_charges_exactly_the_actual_cost()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var (before, _, _) = await account.Client.BalanceAsync();

        var submitted = await account.Client.SubmitTextAsync(simulate: """{"usage":{"input_tokens":1000,"output_tokens":500}}""");

        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        id.ShouldStartWith("exe_");
        submitted.Header("Location").ShouldBe($"/v1/executions/{id}");
        submitted.Json.GetProperty("status").GetString().ShouldBe("PENDING");
        submitted.Json.GetProperty("object").GetString().ShouldBe("execution");

        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        done.GetProperty("output").GetProperty("text").GetString().ShouldNotBeNullOrEmpty();
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("provider").GetString().ShouldBe("sim");
        // sim/text: $1.00 / Mtok in, $2.00 / Mtok out: 1000 × 1 + 500 × 2 = 2000 µ$.
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.002000");
        var (after, held, available) = await account.Client.BalanceAsync();
        (before - after).ShouldBe(2000);
        held.ShouldBe(0);
        available.ShouldBe(after);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Submission_places_a_hold_of_the_estimate_times_1_2_with_a_one_cent_floor()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        // 4000 characters ≈ 1000 input tokens, max_tokens 100000 → 1000 × 1 + 100000 × 2 = 201000 µ$; hold 241200 µ$.
        var content = new string('a', 4000);
        var big = await account.Client.SubmitAsync("sim/text", $$$"""{"messages":[{"role":"user","content":"{{{content}}}"}],"max_tokens":100000,"simulate":{"latency_ms":3000}}""");
        big.Status.ShouldBe(202, big.Body);
        big.Json.GetProperty("cost").GetProperty("estimated").GetString().ShouldBe("0.201000");
        big.Json.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.241200");

        var small = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":3000}""");
        small.Json.GetProperty("cost").GetProperty("held").GetString().ShouldBe("0.010000");

        var (_, held, _) = await account.Client.BalanceAsync();
        held.ShouldBe(241_200 + 10_000);
    }

    [Fact]
    public async Task Image_goes_through_the_provider_callback_and_its_artifacts_are_downloadable()
    {
        using var account = await _gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("sim/image", """{"prompt":"a lighthouse","n":2,"simulate":{"latency_ms":300}}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;

        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.040000"); // 2 × $0.02
        await Eventually.HoldsAsync(
            () => _gateway.SimulatorCallbacks.Any(c => c.Url.AbsolutePath == $"/v1/provider-callbacks/sim/{id}" && c.Status == 200),
            "the simulator's callback answered 200");
        var artifacts = done.GetProperty("artifacts").EnumerateArray().ToList();
        artifacts.Count.ShouldBe(2);
        var download = await account.Client.GetAsync(artifacts[0].GetProperty("url").GetString());
        download.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        var bytes = await download.Content.ReadAsByteArrayAsync();
        bytes.Take(4).ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47 });
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Video_is_charged_per_second_of_duration()
    {
        using var account = await _gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("sim/video", """{"prompt":"waves","duration_seconds":4,"simulate":{"latency_ms":10}}""");
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED");
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.200000"); // 4 s × $0.05
    }

    [Fact]
    public async Task Long_poll_returns_as_soon_as_the_execution_ends() =>
        (await LongPollAsync(latencyMs: 300, waitSeconds: 20)).ShouldBe("COMPLETED");

    [Fact]
    public async Task Long_poll_with_nothing_to_wait_for_returns_the_current_state_after_the_wait() =>
        (await LongPollAsync(latencyMs: 20_000, waitSeconds: 1)).ShouldBeOneOf("PENDING", "PROCESSING");

    /// <summary>Submits an execution the simulator answers after <paramref name="latencyMs"/>, long-polls it once, and gives its status.</summary>
    private async Task<string?> LongPollAsync(int latencyMs, int waitSeconds)
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync(simulate: $$"""{"latency_ms":{{latencyMs}}}""")).Json.GetProperty("id").GetString()!;

        var waited = await account.Client.GetApiAsync($"/v1/executions/{id}?wait={waitSeconds}");

        waited.Status.ShouldBe(200);
        return waited.Json.GetProperty("status").GetString();
    }

    [Theory]
    [InlineData("61")]
    [InlineData("-1")]
    [InlineData("abc")]
    public async Task Long_poll_rejects_a_wait_outside_0_to_60_seconds(string wait)
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;

        var response = await account.Client.GetApiAsync($"/v1/executions/{id}?wait={wait}");

        response.Status.ShouldBe(400);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
    }

    [Fact]
    public async Task Event_stream_sends_each_status_change_and_ends_with_the_final_execution()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync(simulate: """{"latency_ms":200}""")).Json.GetProperty("id").GetString()!;

        using var response = await account.Client.GetAsync($"/v1/executions/{id}/events", HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.ShouldBe("text/event-stream");
        var text = await response.Content.ReadAsStringAsync(); // the server closes the stream at the terminal event

        var events = text.Split('\n').Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l["event: ".Length..]).ToList();
        events.ShouldBe(["execution.pending", "execution.processing", "execution.completed"]);
        var last = text.Split('\n').Last(l => l.StartsWith("data: ", StringComparison.Ordinal));
        last.ShouldContain("\"status\":\"COMPLETED\"");
        last.ShouldContain("\"output\":");
    }

    [Fact]
    public async Task Models_lists_the_simulator_catalog_with_prices()
    {
        using var account = await _gateway.CreateAccountAsync();

        var models = await account.Client.GetApiAsync("/v1/models");

        models.Status.ShouldBe(200);
        var byId = models.Json.GetProperty("data").EnumerateArray().ToDictionary(m => m.GetProperty("id").GetString()!);
        byId.Keys.ShouldBe(["sim/image", "sim/text", "sim/video"], ignoreOrder: true);
        byId["sim/text"].GetProperty("modality").GetString().ShouldBe("text");
        byId["sim/text"].GetProperty("pricing").GetProperty("input_per_mtok").GetString().ShouldBe("1.000000");
        byId["sim/image"].GetProperty("pricing").GetProperty("per_image").GetString().ShouldBe("0.020000");
    }
}
