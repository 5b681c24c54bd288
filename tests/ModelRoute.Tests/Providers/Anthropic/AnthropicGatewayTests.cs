namespace ModelRoute.Tests.Providers.Anthropic;

/// <summary>One fake Anthropic and one gateway routed to it, shared by the tests of the class (which run one at a time).</summary>
public sealed class AnthropicGatewayFixture : IAsyncLifetime
{
    public const string Model = "anthropic/claude-haiku";
    public const string BadKeyModel = "anthropic/claude-badkey";
    public const string WrongKey = "sk-ant-wrong-secret-key-0123";

    public FakeAnthropic Fake { get; private set; } = null!;

    public GatewayFactory Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Fake = await FakeAnthropic.StartAsync();
        Gateway = new GatewayFactory(TextProviderGateway.Settings(
            "anthropic", "claude", Fake.BaseUrl, FakeAnthropic.ApiKey, WrongKey, (Model, BadKeyModel), "claude-3-5-haiku-latest", 777, ("0.80", "4.00", "0.08")));
        Gateway.Anonymous().Dispose();
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class AnthropicGatewayTests(AnthropicGatewayFixture fixture) : IClassFixture<AnthropicGatewayFixture>
{
    private readonly FakeAnthropic _fake = Reset(fixture.Fake);

    private static FakeAnthropic Reset(FakeAnthropic fake)
    {
        fake.Reset();
        return fake;
    }

    private Task<(TestAccount Account, JsonElement Done)> RunAsync(string input, string model = AnthropicGatewayFixture.Model, string credit = "10.00") =>
        TextProviderGateway.RunAsync(fixture.Gateway, model, input, credit);

    [Fact]
    public async Task A_text_execution_completes_with_Claudes_text()
    {
        _fake.ReplyText = "Bonjour, monde.";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"Say hello in French"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("text").GetString().ShouldBe("Bonjour, monde.");
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("stop");
        done.GetProperty("provider").GetString().ShouldBe("claude");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task The_request_carries_the_headers_a_separate_system_prompt_the_default_max_tokens_and_provider_options()
    {
        var (account, done) = await RunAsync("""
            {"system":"Be brief.",
             "messages":[{"role":"system","content":"You are a poet."},
                         {"role":"developer","content":[{"type":"text","text":"Rhyme."}]},
                         {"role":"user","content":"Write about the sea"},
                         {"role":"assistant","content":[{"type":"text","text":"The sea"}]},
                         {"role":"user","content":[{"type":"text","text":"go "},{"type":"text","text":"on"}]}],
             "temperature":0.3,"top_p":0.9,"stop":"END",
             "provider_options":{"top_k":5,"metadata":{"user_id":"u-42"},"model":"claude-opus-sneaky"}}
            """);
        using var owned = account;
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());

        var request = _fake.Messages.Single();
        request.Method.ShouldBe("POST");
        request.Headers["x-api-key"].ShouldBe(FakeAnthropic.ApiKey);
        request.Headers["anthropic-version"].ShouldBe("2023-06-01");
        request.Headers["content-type"].ShouldStartWith("application/json");
        var body = request.Json;
        body.GetProperty("model").GetString().ShouldBe("claude-3-5-haiku-latest"); // the route decides, not provider_options
        body.GetProperty("max_tokens").GetInt32().ShouldBe(777);
        body.GetProperty("system").GetString().ShouldBe("Be brief.\n\nYou are a poet.\n\nRhyme.");
        var messages = body.GetProperty("messages").EnumerateArray().ToList();
        messages.Select(m => m.GetProperty("role").GetString()).ShouldBe(["user", "assistant", "user"]);
        messages[0].GetProperty("content").GetString().ShouldBe("Write about the sea");
        messages[1].GetProperty("content")[0].GetProperty("type").GetString().ShouldBe("text");
        messages[1].GetProperty("content")[0].GetProperty("text").GetString().ShouldBe("The sea");
        messages[2].GetProperty("content").GetArrayLength().ShouldBe(2);
        body.GetProperty("temperature").GetDouble().ShouldBe(0.3);
        body.GetProperty("top_p").GetDouble().ShouldBe(0.9);
        body.GetProperty("stop_sequences").EnumerateArray().Select(s => s.GetString()).ShouldBe(["END"]);
        body.GetProperty("top_k").GetInt32().ShouldBe(5);
        body.GetProperty("metadata").GetProperty("user_id").GetString().ShouldBe("u-42");
        body.TryGetProperty("provider_options", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task An_explicit_max_tokens_is_sent_and_max_tokens_stop_is_length()
    {
        _fake.StopReason = "max_tokens";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("length");
        _fake.Messages.Single().Json.GetProperty("max_tokens").GetInt32().ShouldBe(5);
    }

    [Fact]
    public async Task Cost_counts_cache_writes_as_input_and_cache_reads_at_the_cached_price_to_the_micro_dollar()
    {
        _fake.Usage = (Input: 1234, CacheCreation: 100, CacheRead: 4321, Output: 567);
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var usage = done.GetProperty("usage");
        usage.GetProperty("input_tokens").GetInt64().ShouldBe(1334);
        usage.GetProperty("cached_input_tokens").GetInt64().ShouldBe(4321);
        usage.GetProperty("output_tokens").GetInt64().ShouldBe(567);

        // 1334 × $0.80 + 4321 × $0.08 + 567 × $4.00 per million = $0.00106720 + $0.00034568 + $0.00226800 = $0.00368088 → $0.003681.
        HttpExtensions.Micros(done.GetProperty("cost").GetProperty("actual")).ShouldBe(3681);
        (await account.Client.BalanceAsync()).Balance.ShouldBe(10_000_000 - 3681);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_rate_limit_is_retried_after_the_providers_retry_after()
    {
        _fake.Fail(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", headers: new Dictionary<string, string> { ["retry-after"] = "1" });
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        TextProviderGateway.ShouldHaveRetriedAfterTheDelay(done).GetProperty("retryable").GetBoolean().ShouldBeTrue();
        _fake.Messages.Count().ShouldBe(2);
    }

    [Fact]
    public async Task Overloaded_529_is_retried()
    {
        _fake.Fail(529, "overloaded_error", "Overloaded", times: 2);
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(3);
        done.GetProperty("attempt_log")[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        done.GetProperty("attempt_log")[0].GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(529);
    }

    [Fact]
    public async Task A_prompt_too_long_fails_at_once_as_context_length_exceeded_without_charge()
    {
        _fake.Fail(400, "invalid_request_error", "prompt is too long: 210094 tokens > 200000 maximum", times: 5);
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"a very long prompt"}]}""", credit: "1.00");
        using var owned = account;

        var error = TextProviderGateway.ShouldHaveFailedWith(done, "CONTEXT_LENGTH_EXCEEDED", false, 400);
        error.GetProperty("message").GetString()!.ShouldContain("prompt is too long");
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_wrong_key_fails_as_provider_auth_failed_and_no_key_appears_in_the_execution()
    {
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""", AnthropicGatewayFixture.BadKeyModel);
        using var owned = account;

        TextProviderGateway.ShouldHaveFailedWith(done, "PROVIDER_AUTH_FAILED", false, 401);
        _fake.Requests.Single().Headers["x-api-key"].ShouldBe(AnthropicGatewayFixture.WrongKey); // it really was sent, and refused
        TextProviderGateway.ShouldRevealNoKey(done, "sk-ant", AnthropicGatewayFixture.WrongKey, FakeAnthropic.ApiKey);
    }

    [Fact]
    public async Task A_refusal_fails_as_content_policy_violation()
    {
        _fake.StopReason = "refusal";
        _fake.ReplyText = "";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"something bad"}]}""", credit: "1.00");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task A_malformed_200_fails_as_provider_error()
    {
        _fake.RawReply = """{"id":"msg_1","type":"message","role":"assistant"}""";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(200);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }
}
