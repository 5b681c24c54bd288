namespace ModelRoute.Tests.Providers.Gemini;

/// <summary>One fake Gemini and one gateway routed to it, shared by the tests of the class (which run one at a time).</summary>
public sealed class GeminiGatewayFixture : IAsyncLifetime
{
    public const string Model = "google/gemini-flash";
    public const string BadKeyModel = "google/gemini-badkey";
    public const string WrongKey = "AIza-wrong-secret-key-0123";

    public FakeGemini Fake { get; private set; } = null!;

    public GatewayFactory Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Fake = await FakeGemini.StartAsync();
        Gateway = new GatewayFactory(TextProviderGateway.Settings(
            "gemini", "google", Fake.BaseUrl, FakeGemini.ApiKey, WrongKey, (Model, BadKeyModel), "gemini-2.5-flash", 888, ("0.30", "2.50", "0.075")));
        Gateway.Anonymous().Dispose();
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class GeminiGatewayTests(GeminiGatewayFixture fixture) : IClassFixture<GeminiGatewayFixture>
{
    private readonly FakeGemini _fake = Reset(fixture.Fake);

    private static FakeGemini Reset(FakeGemini fake)
    {
        fake.Reset();
        return fake;
    }

    private Task<(TestAccount Account, JsonElement Done)> RunAsync(string input, string model = GeminiGatewayFixture.Model, string credit = "10.00") =>
        TextProviderGateway.RunAsync(fixture.Gateway, model, input, credit);

    [Fact]
    public async Task A_text_execution_completes_with_Geminis_text()
    {
        _fake.ReplyText = "Hallo, Welt.";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"Say hello in German"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("text").GetString().ShouldBe("Hallo, Welt.");
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("stop");
        done.GetProperty("provider").GetString().ShouldBe("google");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task The_request_carries_the_key_header_a_system_instruction_generation_config_and_provider_options()
    {
        var (account, done) = await RunAsync("""
            {"system":"Be brief.",
             "messages":[{"role":"system","content":"You are a poet."},
                         {"role":"user","content":"Write about the sea"},
                         {"role":"assistant","content":[{"type":"text","text":"The sea"}]},
                         {"role":"user","content":[{"type":"text","text":"go on"}]}],
             "temperature":0.4,"top_p":0.8,"stop":["END","STOP"],
             "provider_options":{"generationConfig":{"topK":3},"safetySettings":[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_ONLY_HIGH"}]}}
            """);
        using var owned = account;
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());

        var request = _fake.Generations.Single();
        request.Path.ShouldBe("/v1beta/models/gemini-2.5-flash:generateContent");
        request.Headers["x-goog-api-key"].ShouldBe(FakeGemini.ApiKey);
        request.Headers["content-type"].ShouldStartWith("application/json");
        var body = request.Json;
        body.GetProperty("systemInstruction").GetProperty("parts")[0].GetProperty("text").GetString().ShouldBe("Be brief.\n\nYou are a poet.");
        var contents = body.GetProperty("contents").EnumerateArray().ToList();
        contents.Select(c => c.GetProperty("role").GetString()).ShouldBe(["user", "model", "user"]);
        contents[0].GetProperty("parts")[0].GetProperty("text").GetString().ShouldBe("Write about the sea");
        contents[1].GetProperty("parts")[0].GetProperty("text").GetString().ShouldBe("The sea");
        var config = body.GetProperty("generationConfig");
        config.GetProperty("maxOutputTokens").GetInt32().ShouldBe(888);
        config.GetProperty("temperature").GetDouble().ShouldBe(0.4);
        config.GetProperty("topP").GetDouble().ShouldBe(0.8);
        config.GetProperty("stopSequences").EnumerateArray().Select(s => s.GetString()).ShouldBe(["END", "STOP"]);
        config.GetProperty("topK").GetInt32().ShouldBe(3); // merged into, not replacing, the generation config
        body.GetProperty("safetySettings")[0].GetProperty("threshold").GetString().ShouldBe("BLOCK_ONLY_HIGH");
        body.TryGetProperty("provider_options", out _).ShouldBeFalse();
    }

    [Fact]
    public async Task Cost_separates_cached_input_and_counts_thoughts_as_output_to_the_micro_dollar()
    {
        _fake.Usage = (Prompt: 12345, Cached: 2345, Candidates: 678, Thoughts: 90);
        _fake.FinishReason = "MAX_TOKENS";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}],"max_tokens":800}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("length");
        _fake.Generations.Single().Json.GetProperty("generationConfig").GetProperty("maxOutputTokens").GetInt32().ShouldBe(800);
        var usage = done.GetProperty("usage");
        usage.GetProperty("input_tokens").GetInt64().ShouldBe(10000);
        usage.GetProperty("cached_input_tokens").GetInt64().ShouldBe(2345);
        usage.GetProperty("output_tokens").GetInt64().ShouldBe(768);

        // 10000 × $0.30 + 2345 × $0.075 + 768 × $2.50 per million = $0.003 + $0.000175875 + $0.00192 = $0.005095875 → $0.005096.
        HttpExtensions.Micros(done.GetProperty("cost").GetProperty("actual")).ShouldBe(5096);
        (await account.Client.BalanceAsync()).Balance.ShouldBe(10_000_000 - 5096);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Resource_exhausted_is_retried_after_the_RetryInfo_delay()
    {
        _fake.Fail(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.", details: FakeGemini.RetryInfo("1s"));
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        TextProviderGateway.ShouldHaveRetriedAfterTheDelay(done);
    }

    [Fact]
    public async Task Unavailable_503_is_retried()
    {
        _fake.Fail(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", times: 2);
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(3);
        done.GetProperty("attempt_log")[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
    }

    [Fact]
    public async Task Too_many_input_tokens_fails_at_once_as_context_length_exceeded_without_charge()
    {
        _fake.Fail(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", times: 5);
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"long"}]}""", credit: "1.00");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTEXT_LENGTH_EXCEEDED");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_wrong_key_fails_as_provider_auth_failed_and_no_key_appears_in_the_execution()
    {
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""", GeminiGatewayFixture.BadKeyModel);
        using var owned = account;

        TextProviderGateway.ShouldHaveFailedWith(done, "PROVIDER_AUTH_FAILED", false, 400); // Google's answer to a wrong key
        _fake.Requests.Single().Headers["x-goog-api-key"].ShouldBe(GeminiGatewayFixture.WrongKey);
        TextProviderGateway.ShouldRevealNoKey(done, "AIza", GeminiGatewayFixture.WrongKey, FakeGemini.ApiKey);
    }

    [Theory]
    [InlineData("SAFETY", null)]
    [InlineData("RECITATION", null)]
    [InlineData("STOP", "PROHIBITED_CONTENT")]
    public async Task A_safety_block_fails_as_content_policy_violation_without_charge(string finishReason, string? blockReason)
    {
        _fake.FinishReason = finishReason;
        _fake.BlockReason = blockReason;
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"something bad"}]}""", credit: "1.00");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task A_malformed_200_fails_as_provider_error()
    {
        _fake.RawReply = """{"modelVersion":"gemini-2.5-flash"}""";
        var (account, done) = await RunAsync("""{"messages":[{"role":"user","content":"hi"}]}""");
        using var owned = account;

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }
}
