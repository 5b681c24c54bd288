using System.Globalization;
using ModelRoute.Server.Providers.OpenAI;

namespace ModelRoute.Tests.Providers.OpenAI;

/// <summary>The OpenAI fake and a gateway routing three OpenAI models to it, shared by a class's tests.</summary>
public sealed class OpenAIGateway : IAsyncLifetime
{
    public const string ApiKey = "sk-test-secret-123";
    public const string Chat = "openai/gpt-4o-mini";
    public const string Image = "openai/dall-e-3";
    public const string Embedding = "openai/text-embedding-3-small";

    public OpenAIFake Fake { get; private set; } = null!;

    public GatewayFactory Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Fake = await OpenAIFake.StartAsync();
        Gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:oai:Kind"] = "openai",
            ["ModelRoute:Providers:oai:BaseUrl"] = Fake.V1,
            ["ModelRoute:Providers:oai:ApiKey"] = ApiKey,
            ["ModelRoute:Providers:oai:Timeout"] = "00:00:10",
            [$"ModelRoute:Models:{Chat}:Modality"] = "text",
            [$"ModelRoute:Models:{Chat}:Pricing:InputPerMTok"] = "0.15",
            [$"ModelRoute:Models:{Chat}:Pricing:OutputPerMTok"] = "0.60",
            [$"ModelRoute:Models:{Chat}:Pricing:CachedInputPerMTok"] = "0.075",
            [$"ModelRoute:Models:{Chat}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{Chat}:Routes:0:Model"] = "gpt-4o-mini",
            [$"ModelRoute:Models:{Image}:Modality"] = "image",
            [$"ModelRoute:Models:{Image}:Pricing:PerImage"] = "0.04",
            [$"ModelRoute:Models:{Image}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{Image}:Routes:0:Model"] = "dall-e-3",
            [$"ModelRoute:Models:{Embedding}:Modality"] = "embedding",
            [$"ModelRoute:Models:{Embedding}:Pricing:InputPerMTok"] = "0.02",
            [$"ModelRoute:Models:{Embedding}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{Embedding}:Routes:0:Model"] = "text-embedding-3-small",
        });
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class OpenAIAdapterTests(OpenAIGateway fixture) : IClassFixture<OpenAIGateway>
{
    private readonly OpenAIFake _fake = Reset(fixture.Fake);
    private readonly GatewayFactory _gateway = fixture.Gateway;

    private const string Messages = """[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}]""";

    [Fact]
    public async Task A_chat_completes_with_the_reply_and_the_request_speaks_openai()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.ChatReply = "Hello there!";

        var done = await RunAsync(account, OpenAIGateway.Chat,
            $$$"""{"messages":{{{Messages}}},"max_tokens":50,"temperature":0.2,"top_p":0.9,"stop":["\n\n"],"provider_options":{"seed":7,"user":"u-1","logit_bias":{"50256":-100},"model":"gpt-4o"}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("text").GetString().ShouldBe("Hello there!");
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("stop");
        done.GetProperty("provider").GetString().ShouldBe("oai");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);

        var request = _fake.Requests.ShouldHaveSingleItem();
        request.Method.ShouldBe("POST");
        request.Path.ShouldBe("/v1/chat/completions");
        request.Authorization.ShouldBe("Bearer " + OpenAIGateway.ApiKey);
        request.Headers["content-type"].ShouldStartWith("application/json");
        var body = request.Json;
        body.GetProperty("model").GetString().ShouldBe("gpt-4o-mini", "the route decides the model; provider_options cannot");
        JsonSerializer.Serialize(body.GetProperty("messages")).ShouldBe(JsonSerializer.Serialize(JsonDocument.Parse(Messages).RootElement));
        body.GetProperty("max_tokens").GetInt32().ShouldBe(50);
        body.GetProperty("temperature").GetDouble().ShouldBe(0.2);
        body.GetProperty("top_p").GetDouble().ShouldBe(0.9);
        body.GetProperty("stop")[0].GetString().ShouldBe("\n\n");
        body.GetProperty("seed").GetInt32().ShouldBe(7);
        body.GetProperty("user").GetString().ShouldBe("u-1");
        body.GetProperty("logit_bias").GetProperty("50256").GetInt32().ShouldBe(-100);
        body.TryGetProperty("provider_options", out _).ShouldBeFalse("options are merged top-level, not nested");
        body.TryGetProperty("stream", out _).ShouldBeFalse();
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Provider_options_can_remove_a_canonical_parameter_with_null()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await RunAsync(account, OpenAIGateway.Chat,
            $$$"""{"messages":{{{Messages}}},"max_tokens":64,"provider_options":{"max_tokens":null,"max_completion_tokens":64}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var body = _fake.Requests.ShouldHaveSingleItem().Json;
        body.TryGetProperty("max_tokens", out _).ShouldBeFalse();
        body.GetProperty("max_completion_tokens").GetInt32().ShouldBe(64);
    }

    [Fact]
    public async Task A_reply_cut_at_max_tokens_says_length()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.ChatReply = new string('x', 400);

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}},"max_tokens":5}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("output").GetProperty("finish_reason").GetString().ShouldBe("length");
        done.GetProperty("output").GetProperty("text").GetString()!.Length.ShouldBe(20);
    }

    [Fact]
    public async Task Cached_input_is_billed_at_its_own_price_to_the_micro_dollar()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        _fake.ChatUsage = (Prompt: 1234, Completion: 567, Cached: 1000);

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}},"max_tokens":1000}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var usage = done.GetProperty("usage");
        usage.GetProperty("input_tokens").GetInt64().ShouldBe(234, "OpenAI's prompt_tokens include the cached ones");
        usage.GetProperty("cached_input_tokens").GetInt64().ShouldBe(1000);
        usage.GetProperty("output_tokens").GetInt64().ShouldBe(567);

        // 234 × $0.15/M + 1000 × $0.075/M + 567 × $0.60/M = 35.1 + 75 + 340.2 = 450.3 µ$ → 450 µ$.
        HttpExtensions.Micros(done.GetProperty("cost").GetProperty("actual")).ShouldBe(450);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000 - 450, 0, 1_000_000 - 450));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Images_in_base64_become_png_artifacts_downloadable_from_the_gateway()
    {
        using var account = await _gateway.CreateAccountAsync();

        var done = await RunAsync(account, OpenAIGateway.Image, """{"prompt":"a red fox","n":2,"size":"1024x1024"}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var body = _fake.Requests.ShouldHaveSingleItem().Json;
        _fake.Requests.Single().Path.ShouldBe("/v1/images/generations");
        body.GetProperty("model").GetString().ShouldBe("dall-e-3");
        body.GetProperty("prompt").GetString().ShouldBe("a red fox");
        body.GetProperty("n").GetInt32().ShouldBe(2);
        body.GetProperty("size").GetString().ShouldBe("1024x1024");
        body.GetProperty("response_format").GetString().ShouldBe("b64_json");

        var id = done.GetProperty("id").GetString()!;
        var images = done.GetProperty("output").GetProperty("images").EnumerateArray().ToList();
        images.Count.ShouldBe(2);
        for (var i = 0; i < 2; i++)
        {
            images[i].GetProperty("artifact").GetString().ShouldBe($"image-{i}.png");
            images[i].GetProperty("url").GetString().ShouldBe($"/v1/executions/{id}/artifacts/image-{i}.png");
            using var download = await account.Client.GetAsync(images[i].GetProperty("url").GetString());
            ((int)download.StatusCode).ShouldBe(200);
            download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
            (await download.Content.ReadAsByteArrayAsync()).ShouldBe(OpenAIFake.Png("a red fox", i));
        }

        done.GetProperty("usage").GetProperty("images").GetInt64().ShouldBe(2);
        HttpExtensions.Micros(done.GetProperty("cost").GetProperty("actual")).ShouldBe(80_000);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task An_image_given_as_a_provider_url_stays_downloadable_after_the_url_expires()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.ServeImageUrls = true;

        var done = await RunAsync(account, OpenAIGateway.Image, """{"prompt":"a lighthouse"}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var fetched = _fake.Downloads.ShouldHaveSingleItem();
        _fake.FilesAvailable = false;
        using (var direct = new HttpClient())
        {
            ((int)(await direct.GetAsync(_fake.BaseUrl + fetched)).StatusCode).ShouldBe(404, "the provider's URL has expired");
        }

        using var download = await account.Client.GetAsync(done.GetProperty("output").GetProperty("images")[0].GetProperty("url").GetString());
        ((int)download.StatusCode).ShouldBe(200);
        download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
        (await download.Content.ReadAsByteArrayAsync()).ShouldBe(OpenAIFake.Png("a lighthouse", 0));
    }

    [Fact]
    public async Task Embeddings_come_back_in_input_order_with_token_usage()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.ReverseEmbeddings = true;

        var done = await RunAsync(account, OpenAIGateway.Embedding, """{"input":["alpha","beta gamma","delta"],"provider_options":{"dimensions":4}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var request = _fake.Requests.ShouldHaveSingleItem();
        request.Path.ShouldBe("/v1/embeddings");
        request.Json.GetProperty("model").GetString().ShouldBe("text-embedding-3-small");
        request.Json.GetProperty("input").GetArrayLength().ShouldBe(3);
        request.Json.GetProperty("dimensions").GetInt32().ShouldBe(4);

        var vectors = done.GetProperty("output").GetProperty("embeddings").EnumerateArray().ToList();
        vectors.Count.ShouldBe(3);
        string[] texts = ["alpha", "beta gamma", "delta"];
        for (var i = 0; i < 3; i++)
        {
            vectors[i].EnumerateArray().Select(v => v.GetSingle()).ToArray().ShouldBe(OpenAIFake.Vector(texts[i], 4));
        }

        done.GetProperty("usage").GetProperty("input_tokens").GetInt64().ShouldBe(2 + 3 + 2);
    }

    [Fact]
    public async Task A_429_with_retry_after_ms_is_retried_no_sooner_than_asked()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.FailNext(1, 429, OpenAIFake.ErrorJson("Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.", "requests", "rate_limit_exceeded"),
            new Dictionary<string, string> { ["retry-after-ms"] = "600", ["retry-after"] = "1" });

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        var error = log[0].GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("PROVIDER_RATE_LIMITED");
        error.GetProperty("retryable").GetBoolean().ShouldBeTrue();
        error.GetProperty("provider_status").GetInt32().ShouldBe(429);
        error.GetProperty("message").GetString()!.ShouldStartWith("Rate limit reached for gpt-4o-mini");
        var gap = Started(log[1]) - Started(log[0]);
        gap.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(590), "retry-after-ms is honoured (it wins over retry-after)");
        gap.ShouldBeLessThan(TimeSpan.FromSeconds(3));
        _fake.Requests.Count.ShouldBe(2);
    }

    [Fact]
    public async Task Two_503s_then_success_completes_on_the_third_attempt()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.FailNext(2, 503, OpenAIFake.ErrorJson("The engine is currently overloaded, please try again later.", "server_error"));

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(3);
        done.GetProperty("attempt_log").EnumerateArray().Select(a => a.GetProperty("outcome").GetString()).ShouldBe(["failed", "failed", "completed"]);
        done.GetProperty("attempt_log")[0].GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Context_length_exceeded_fails_at_once_without_charge()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        _fake.FailNext(1, 400, OpenAIFake.ErrorJson(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
            "invalid_request_error", "context_length_exceeded", "messages"));

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        var error = done.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("CONTEXT_LENGTH_EXCEEDED");
        error.GetProperty("retryable").GetBoolean().ShouldBeFalse();
        error.GetProperty("provider").GetString().ShouldBe("oai");
        error.GetProperty("provider_status").GetInt32().ShouldBe(400);
        error.GetProperty("message").GetString()!.ShouldContain("maximum context length");
        done.GetProperty("cost").GetProperty("actual").ValueKind.ShouldBe(JsonValueKind.Null);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
        _fake.Requests.Count.ShouldBe(1);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_wrong_key_fails_as_auth_and_the_key_appears_nowhere()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        _fake.ApiKey = "sk-the-one-the-fake-wants";

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_AUTH_FAILED");
        done.GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(401);
        done.GetProperty("error").GetProperty("message").GetString()!.ShouldStartWith("Incorrect API key provided");
        done.ToString().ShouldNotContain(OpenAIGateway.ApiKey);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task A_provider_that_echoes_the_key_has_it_scrubbed_from_the_error()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.FailNext(1, 401, OpenAIFake.ErrorJson($"Key {OpenAIGateway.ApiKey} rejected (proxy also saw sk-proj-AbCdEf123456)", "invalid_request_error", "invalid_api_key"));

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_AUTH_FAILED");
        var json = done.ToString();
        json.ShouldNotContain(OpenAIGateway.ApiKey);
        json.ShouldNotContain("sk-proj-AbCdEf123456");
        done.GetProperty("error").GetProperty("message").GetString()!.ShouldContain("[redacted]");
        (await _gateway.DumpTableAsync("executions")).ShouldAllBe(v => !v.Contains(OpenAIGateway.ApiKey));
    }

    [Theory]
    [InlineData("""{"id":"x","object":"chat.completion","choices":[]}""")]
    [InlineData("""{"id":"x","object":"chat.completion"}""")]
    [InlineData("""<html>502 Bad Gateway</html>""")]
    [InlineData("""{"choices":[{"index":0,"message":{"role":"assistant","content":42},"finish_reason":"stop"}]}""")]
    public async Task A_malformed_200_fails_as_provider_error_without_retry(string body)
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.AnswerNext(new OpenAIFakeAnswer(200, body));

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        done.GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(200);
    }

    [Fact]
    public async Task A_reply_withheld_by_the_content_filter_is_a_content_policy_violation()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.FilterContent = true;

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_route_to_a_model_the_provider_lacks_is_a_provider_error_not_the_callers()
    {
        using var account = await _gateway.CreateAccountAsync();
        _fake.UnknownModels.Add("gpt-4o-mini");

        var done = await RunAsync(account, OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(404);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_provider_slower_than_the_deadline_is_cut_off_and_the_execution_expires_uncharged()
    {
        using var account = await _gateway.CreateAccountAsync("1.00");
        _fake.Delay = TimeSpan.FromSeconds(30);

        var submitted = await account.Client.SubmitAsync(OpenAIGateway.Chat, $$"""{"messages":{{Messages}}}""", extra: ""","timeout_seconds":1""");
        submitted.Status.ShouldBeOneOf([200, 201, 202], submitted.Body);
        var started = DateTime.UtcNow;
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("EXPIRED", done.ToString());
        (DateTime.UtcNow - started).ShouldBeLessThan(TimeSpan.FromSeconds(10), "the dispatcher's token ends the HTTP call; the client has no timeout of its own");
        _fake.Requests.Count.ShouldBe(1);
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    [Fact]
    public async Task A_deadline_timer_that_fires_a_little_before_the_clock_reaches_the_deadline_still_expires_the_execution()
    {
        // Timers and the wall clock are not exact with each other: a deadline's timer may fire just before
        // GetUtcNow() reaches expires_at. Which source fired decides, so this must be EXPIRED, not a provider timeout.
        var settings = new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:slow:Kind"] = "openai",
            ["ModelRoute:Providers:slow:BaseUrl"] = _fake.V1,
            ["ModelRoute:Providers:slow:ApiKey"] = OpenAIGateway.ApiKey,
            ["ModelRoute:Providers:slow:Timeout"] = "00:00:10",
            ["ModelRoute:Models:slow/chat:Modality"] = "text",
            ["ModelRoute:Models:slow/chat:Pricing:InputPerMTok"] = "0.10",
            ["ModelRoute:Models:slow/chat:Routes:0:Provider"] = "slow",
            ["ModelRoute:Models:slow/chat:Routes:0:Model"] = "gpt-4o-mini",
        };
        await using var gateway = new GatewayFactory(settings, services => services.AddSingleton<TimeProvider>(new EarlyTimers(TimeSpan.FromMilliseconds(300))));
        using var account = await gateway.CreateAccountAsync("1.00");
        _fake.Delay = TimeSpan.FromSeconds(30);

        var submitted = await account.Client.SubmitAsync("slow/chat", $$"""{"messages":{{Messages}}}""", extra: ""","timeout_seconds":2""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("EXPIRED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("DEADLINE_EXCEEDED");
        (await account.Client.BalanceAsync()).ShouldBe((1_000_000, 0, 1_000_000));
    }

    /// <summary>The system clock, with every timer firing <paramref name="early"/> before it is due.</summary>
    private sealed class EarlyTimers(TimeSpan early) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(callback, state, dueTime > early ? dueTime - early : dueTime, period);
    }

    [Fact]
    public async Task A_base_url_with_a_trailing_slash_works_too()
    {
        var settings = new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:local:Kind"] = "openai",
            ["ModelRoute:Providers:local:BaseUrl"] = _fake.V1 + "/",
            ["ModelRoute:Providers:local:ApiKey"] = OpenAIGateway.ApiKey,
            ["ModelRoute:Models:local/llama:Modality"] = "text",
            ["ModelRoute:Models:local/llama:Pricing:InputPerMTok"] = "0.10",
            ["ModelRoute:Models:local/llama:Routes:0:Provider"] = "local",
            ["ModelRoute:Models:local/llama:Routes:0:Model"] = "llama3.1:8b",
        };
        await using var gateway = new GatewayFactory(settings);
        using var account = await gateway.CreateAccountAsync();

        var done = await RunAsync(account, "local/llama", $$"""{"messages":{{Messages}}}""");

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var request = _fake.Requests.ShouldHaveSingleItem();
        request.Path.ShouldBe("/v1/chat/completions");
        request.Json.GetProperty("model").GetString().ShouldBe("llama3.1:8b");
    }

    private static OpenAIFake Reset(OpenAIFake fake)
    {
        fake.Reset();
        return fake;
    }

    private static DateTimeOffset Started(JsonElement attempt) =>
        DateTimeOffset.Parse(attempt.GetProperty("started_at").GetString()!, CultureInfo.InvariantCulture);

    private static async Task<JsonElement> RunAsync(TestAccount account, string model, string input)
    {
        var submitted = await account.Client.SubmitAsync(model, input);
        submitted.Status.ShouldBeOneOf([200, 201, 202], submitted.Body);
        return await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);
    }
}

/// <summary>The error table alone (docs/api.md#execution-errors): OpenAI's statuses and error codes to normalized errors.</summary>
public sealed class OpenAIErrorTableTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(400, "context_length_exceeded", "invalid_request_error", "CONTEXT_LENGTH_EXCEEDED", false)]
    [InlineData(400, "content_policy_violation", "invalid_request_error", "CONTENT_POLICY_VIOLATION", false)]
    [InlineData(400, "moderation_blocked", "image_generation_user_error", "CONTENT_POLICY_VIOLATION", false)]
    [InlineData(400, null, "invalid_request_error", "INVALID_INPUT", false)]
    [InlineData(400, "invalid_value", "invalid_request_error", "INVALID_INPUT", false)]
    [InlineData(404, null, "invalid_request_error", "INVALID_INPUT", false)]
    [InlineData(404, "model_not_found", "invalid_request_error", "PROVIDER_ERROR", false)]
    [InlineData(413, null, null, "INVALID_INPUT", false)]
    [InlineData(422, null, null, "INVALID_INPUT", false)]
    [InlineData(401, "invalid_api_key", "invalid_request_error", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(403, "unsupported_country_region_territory", "request_forbidden", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(408, null, null, "PROVIDER_TIMEOUT", true)]
    [InlineData(409, null, null, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(429, "rate_limit_exceeded", "requests", "PROVIDER_RATE_LIMITED", true)]
    [InlineData(429, null, "tokens", "PROVIDER_RATE_LIMITED", true)]
    [InlineData(429, "insufficient_quota", "insufficient_quota", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(429, null, "insufficient_quota", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(429, "billing_hard_limit_reached", null, "PROVIDER_AUTH_FAILED", false)]
    [InlineData(500, null, "server_error", "PROVIDER_UNAVAILABLE", true)]
    [InlineData(502, null, null, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(503, null, "server_error", "PROVIDER_UNAVAILABLE", true)]
    [InlineData(504, null, null, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(520, null, null, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(402, null, null, "PROVIDER_ERROR", false)]
    [InlineData(302, null, null, "PROVIDER_ERROR", false)]
    public void Each_status_and_code_maps_to_one_normalized_error(int status, string? code, string? type, string expected, bool retryable)
    {
        var failed = OpenAIErrors.Map("oai", status, OpenAIFake.ErrorJson("m", type ?? "x", code), null, Now, "sk-key");

        failed.Error.Code.ShouldBe(expected);
        failed.Error.Retryable.ShouldBe(retryable);
        failed.Error.ProviderStatus.ShouldBe(status);
        failed.Error.Provider.ShouldBe("oai");
    }

    [Theory]
    [InlineData("1500", null, 1500)]
    [InlineData("250.5", "9", 250.5)]
    [InlineData(null, "2", 2000)]
    [InlineData(null, "0.5", 500)]
    [InlineData(null, "Wed, 01 Jan 2025 12:00:07 GMT", 7000)]
    [InlineData(null, "Wed, 01 Jan 2025 11:00:00 GMT", 0)]
    public void Retry_after_prefers_milliseconds_then_seconds_or_a_date(string? ms, string? seconds, double expectedMs)
    {
        using var response = new HttpResponseMessage((System.Net.HttpStatusCode)429);
        if (ms is not null)
        {
            response.Headers.TryAddWithoutValidation("retry-after-ms", ms);
        }

        if (seconds is not null)
        {
            response.Headers.TryAddWithoutValidation("retry-after", seconds);
        }

        var failed = OpenAIErrors.Map("oai", 429, OpenAIFake.ErrorJson("slow down", "requests", "rate_limit_exceeded"), response.Headers, Now, null);

        failed.RetryAfter.ShouldBe(TimeSpan.FromMilliseconds(expectedMs));
    }

    [Fact]
    public void No_retry_after_is_given_for_a_failure_that_will_not_be_retried()
    {
        using var response = new HttpResponseMessage((System.Net.HttpStatusCode)429);
        response.Headers.TryAddWithoutValidation("retry-after", "30");

        OpenAIErrors.Map("oai", 429, OpenAIFake.ErrorJson("You exceeded your current quota", "insufficient_quota", "insufficient_quota"), response.Headers, Now, null)
            .RetryAfter.ShouldBeNull();
    }

    [Fact]
    public void Messages_are_truncated_scrubbed_and_fall_back_to_the_status()
    {
        var longMessage = OpenAIErrors.Map("oai", 400, OpenAIFake.ErrorJson(new string('a', 1000), "invalid_request_error"), null, Now, null).Error.Message;
        longMessage.Length.ShouldBe(OpenAIErrors.MaxMessageLength);

        OpenAIErrors.Map("oai", 401, OpenAIFake.ErrorJson("bad key my-own-secret-key", "invalid_request_error"), null, Now, "my-own-secret-key")
            .Error.Message.ShouldBe("bad key [redacted]");
        OpenAIErrors.Map("oai", 502, "<html><body>Bad gateway</body></html>", null, Now, null).Error.Message.ShouldBe("The provider answered HTTP 502.");
        OpenAIErrors.Map("oai", 500, """{"error":"model crashed"}""", null, Now, null).Error.Message.ShouldBe("model crashed");
    }

    [Fact]
    public void A_malformed_answer_is_a_provider_error_that_is_not_retried()
    {
        var failed = OpenAIErrors.Malformed("oai", "no choices");
        failed.Error.Code.ShouldBe(ExecutionErrorCodes.ProviderError);
        failed.Error.Retryable.ShouldBeFalse();
        failed.Error.ProviderStatus.ShouldBe(200);
    }
}
