using System.Text.Json.Nodes;

namespace ModelRoute.Tests.Executions;

/// <summary>
/// Malformed JSON, wrong types, unknown fields, huge bodies and hostile strings get a 4xx
/// problem, never a 500, and never a stored half-execution.
/// </summary>
public sealed class BadInputTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private const string Messages = """{"messages":[{"role":"user","content":"hello"}]}""";
    private const long Credit = 10_000_000;

    private readonly GatewayFactory _gateway = shared.Gateway;

    [Theory]
    [InlineData("""{"model":"sim/text","input":{"messages":[""")]
    [InlineData("""{"model":"sim/text","input":{},"idempotency_key":"k"} trailing""")]
    [InlineData("""{"model":"sim/text","input":{},"idempotency_key":"k"}{}""")]
    [InlineData("""{'model':'sim/text','input':{},'idempotency_key':'k'}""")]
    [InlineData("""{"model":"sim/text","input":{},"idempotency_key":"k",}""")]
    [InlineData("""{model:"sim/text"}""")]
    [InlineData("{")]
    [InlineData("nul")]
    [InlineData("   ")]
    public Task Malformed_json_is_a_400_on_the_body_and_stores_nothing(string body) => RefusedAsync(body, field: "body");

    [Fact]
    public Task Empty_body_is_a_400_on_the_body_and_stores_nothing() => RefusedAsync("", field: "body");

    [Theory]
    [InlineData("[]")]
    [InlineData("""[{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k"}]""")]
    [InlineData("\"a string\"")]
    [InlineData("42")]
    [InlineData("true")]
    [InlineData("null")]
    public Task A_body_that_is_not_an_object_is_a_400_on_the_body(string body) => RefusedAsync(body, field: "body");

    [Theory]
    // wrong types
    [InlineData("model", "42")]
    [InlineData("model", "null")]
    [InlineData("model", "\"\"")]
    [InlineData("model", """["sim/text"]""")]
    [InlineData("input", "\"hello\"")]
    [InlineData("input", "[]")]
    [InlineData("input", "null")]
    [InlineData("idempotency_key", "42")]
    [InlineData("idempotency_key", "null")]
    [InlineData("idempotency_key", "\"\"")]
    [InlineData("timeout_seconds", "\"60\"")]
    [InlineData("timeout_seconds", "1.5")]
    [InlineData("timeout_seconds", "true")]
    [InlineData("metadata", "[]")]
    [InlineData("metadata", "\"tag\"")]
    [InlineData("metadata", """{"nested":{"a":1}}""")]
    [InlineData("webhook_events", "\"execution.completed\"")]
    [InlineData("webhook_events", """{"execution.completed":true}""")]
    [InlineData("webhook_events", """["execution.exploded"]""")]
    [InlineData("webhook_url", "42")]
    [InlineData("max_cost_usd", "true")]
    // out of range
    [InlineData("timeout_seconds", "-1")]
    [InlineData("timeout_seconds", "0")]
    [InlineData("timeout_seconds", "3601")]
    [InlineData("timeout_seconds", "999999999")]
    [InlineData("timeout_seconds", "99999999999999999999")]
    [InlineData("max_cost_usd", "\"-1\"")]
    [InlineData("max_cost_usd", "-1")]
    [InlineData("max_cost_usd", "\"0.1234567\"")]
    [InlineData("max_cost_usd", "0.1234567")]
    [InlineData("max_cost_usd", "\"1e3\"")]
    [InlineData("max_cost_usd", "\"abc\"")]
    [InlineData("webhook_url", "\"ftp://example.com/hook\"")]
    [InlineData("webhook_url", "\"file:///etc/passwd\"")]
    [InlineData("webhook_url", "\"javascript:alert(1)\"")]
    [InlineData("webhook_url", "\"/relative/hook\"")]
    [InlineData("webhook_url", "\"not a url\"")]
    // hostile strings
    [InlineData("idempotency_key", "\"a\\u0000b\"")]
    [InlineData("idempotency_key", "\"a\\u0007b\"")]
    [InlineData("idempotency_key", "\"line\\nbreak\"")]
    [InlineData("idempotency_key", "\"evil\\u202etxt.exe\"")]
    [InlineData("idempotency_key", "\"zero\\u200bwidth\"")]
    [InlineData("model", "\"sim/text\\u202e\"")]
    [InlineData("model", "\"sim/text\\u0000\"")]
    [InlineData("webhook_url", "\"https://example.com/\\u202ehook\"")]
    public Task A_wrong_type_or_value_is_a_400_naming_the_field_and_stores_nothing(string field, string valueJson) =>
        RefusedAsync(Envelope(field, valueJson), field);

    [Fact]
    public Task A_missing_idempotency_key_is_a_400_naming_it() =>
        RefusedAsync($$"""{"model":"sim/text","input":{{Messages}}}""", "idempotency_key", code: null);

    [Fact]
    public async Task An_idempotency_key_of_256_characters_is_a_400_and_255_is_accepted()
    {
        using var account = await _gateway.CreateAccountAsync();

        var tooLong = await account.Client.SendJsonAsync(HttpMethod.Post, "/v1/executions", Envelope("idempotency_key", $"\"{new string('k', 256)}\""));
        tooLong.Status.ShouldBe(400, tooLong.Body);
        tooLong.ProblemField().ShouldBe("idempotency_key");
        await AssertNothingStoredAsync(account);

        var longest = await account.Client.SendJsonAsync(HttpMethod.Post, "/v1/executions", Envelope("idempotency_key", $"\"{new string('k', 255)}\""));
        longest.Status.ShouldBe(202, longest.Body);
    }

    [Theory]
    [InlineData("temperature", "0.5")]
    [InlineData("messages", """[{"role":"user","content":"hello"}]""")]
    [InlineData("Model", "\"sim/text\"")]
    [InlineData("id", "\"exe_01\"")]
    [InlineData("status", "\"COMPLETED\"")]
    public Task An_unknown_envelope_field_is_a_400_naming_it(string field, string valueJson) => RefusedAsync(Envelope(field, valueJson), field);

    [Fact]
    public async Task An_unknown_field_name_with_control_characters_is_not_echoed_raw()
    {
        var response = await RefusedAsync($$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"k","evil\u0000\u202e":1}""", field: null, code: null);

        var field = response.ProblemField()!;
        field.ShouldStartWith("evil");
        field.ShouldNotContain('\0');
        field.ShouldNotContain('\u202e');
    }

    [Theory]
    [InlineData("model", """{"model":"sim/text","model":"sim/image","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k"}""")]
    [InlineData("model", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","model":"sim/text"}""")]
    [InlineData("idempotency_key", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"a","idempotency_key":"b"}""")]
    [InlineData("input", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"input":{"messages":[{"role":"user","content":"bye"}]},"idempotency_key":"k"}""")]
    [InlineData("max_cost_usd", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","max_cost_usd":"100","max_cost_usd":"0.000001"}""")]
    public Task A_duplicated_envelope_field_is_a_400_naming_it(string field, string body) => RefusedAsync(body, field);

    [Theory]
    [InlineData("sim/nope")]
    [InlineData("openai/gpt-4o-mini")]
    [InlineData("SIM/TEXT")]
    [InlineData("sim/text ")]
    public Task An_unknown_model_is_a_422_model_not_found_and_stores_nothing(string model) =>
        RefusedAsync(client => client.SubmitAsync(model, Messages), 422, "MODEL_NOT_FOUND", "model");

    [Theory]
    [InlineData("{}", "input.messages")]
    [InlineData("""{"messages":[]}""", "input.messages")]
    [InlineData("""{"messages":"hello"}""", "input.messages")]
    [InlineData("""{"messages":{"role":"user","content":"hello"}}""", "input.messages")]
    [InlineData("""{"prompt":"hello"}""", "input.messages")]
    [InlineData("""{"messages":[{"role":"wizard","content":"hello"}]}""", "input.messages[0].role")]
    [InlineData("""{"messages":[{"content":"hello"}]}""", "input.messages[0].role")]
    [InlineData("""{"messages":[{"role":"user","content":"hi"},{"role":42,"content":"hello"}]}""", "input.messages[1].role")]
    [InlineData("""{"messages":["hello"]}""", "input.messages[0].role")]
    [InlineData("""{"messages":[{"role":"user"}]}""", "input.messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":42}]}""", "input.messages[0].content")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"max_tokens":0}""", "input.max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"max_tokens":"10"}""", "input.max_tokens")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"temperature":3}""", "input.temperature")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"provider_options":[1]}""", "input.provider_options")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":{"fail":"explode"}}""", "input.simulate.fail")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":{"fail":42}}""", "input.simulate.fail")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":"timeout"}""", "input.simulate")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":{"latency_ms":-5}}""", "input.simulate.latency_ms")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":{"explode":true}}""", "input.simulate.explode")]
    [InlineData("""{"messages":[{"role":"user","content":"hello"}],"simulate":{"usage":{"input_tokens":-1}}}""", "input.simulate.usage.input_tokens")]
    public Task A_bad_text_input_is_a_400_naming_the_input_field(string input, string field) =>
        RefusedAsync(client => client.SubmitAsync("sim/text", input), 400, "VALIDATION_ERROR", field);

    [Theory]
    [InlineData("sim/image", """{"n":1}""", "input.prompt")]
    [InlineData("sim/image", """{"prompt":"a cat","n":0}""", "input.n")]
    [InlineData("sim/image", """{"prompt":"a cat","n":11}""", "input.n")]
    [InlineData("sim/video", """{"prompt":""}""", "input.prompt")]
    [InlineData("sim/video", """{"prompt":"waves","duration_seconds":601}""", "input.duration_seconds")]
    public Task A_bad_image_or_video_input_is_a_400_naming_the_input_field(string model, string input, string field) =>
        RefusedAsync(client => client.SubmitAsync(model, input), 400, code: null, field);

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data")]
    [InlineData("application/xml")]
    public Task A_body_that_is_not_declared_as_json_is_a_415(string contentType) =>
        RefusedAsync(
            client => client.SendJsonAsync(HttpMethod.Post, "/v1/executions", $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"k"}""", contentType),
            415,
            "UNSUPPORTED_MEDIA_TYPE");

    [Theory]
    [InlineData(200)]
    [InlineData(65)]
    public Task Deeply_nested_json_is_a_400_not_a_500(int depth)
    {
        var nested = new string('[', depth) + new string(']', depth);
        return RefusedAsync(
            client => client.SubmitAsync("sim/text", $$$"""{"messages":[{"role":"user","content":"hello"}],"provider_options":{"deep":{{{nested}}}}}"""),
            400,
            "VALIDATION_ERROR",
            "body");
    }

    [Fact]
    public Task Nesting_ten_thousand_levels_deep_is_a_400_not_a_500() =>
        RefusedAsync(string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000), "body", code: null);

    [Fact]
    public async Task A_body_one_byte_over_1_MiB_is_a_413_payload_too_large()
    {
        var prefix = """{"model":"sim/text","idempotency_key":"k","input":{"messages":[{"role":"user","content":" """;
        const string suffix = "\"}]}}";
        var body = prefix + new string('a', (1024 * 1024) + 1 - prefix.Length - suffix.Length) + suffix;
        Encoding.UTF8.GetByteCount(body).ShouldBe((1024 * 1024) + 1);

        await RefusedAsync(body, field: null, status: 413, code: "PAYLOAD_TOO_LARGE");
    }

    [Fact]
    public async Task A_body_just_under_1_MiB_is_not_refused_for_its_size()
    {
        using var account = await _gateway.CreateAccountAsync("1000.00");
        var prefix = """{"model":"sim/text","idempotency_key":"k","input":{"messages":[{"role":"user","content":" """;
        const string suffix = "\"}]}}";
        var body = prefix + new string('a', (1000 * 1024) - prefix.Length - suffix.Length) + suffix;

        var response = await account.Client.PostJsonAsync("/v1/executions", body);

        response.Status.ShouldBe(202, response.Body);
    }

    [Fact]
    public async Task A_10_MB_string_inside_input_is_a_413_and_the_problem_does_not_echo_it()
    {
        var huge = new string('x', 10 * 1024 * 1024);

        var response = await RefusedAsync(client => client.SubmitAsync("sim/text", $$"""{"messages":[{"role":"user","content":"{{huge}}"}]}"""), 413, "PAYLOAD_TOO_LARGE");

        response.Body.Length.ShouldBeLessThan(2000);
    }

    [Fact]
    public async Task A_chunked_body_over_1_MiB_without_a_content_length_is_a_413()
    {
        var bytes = Encoding.UTF8.GetBytes($$$"""{"model":"sim/text","idempotency_key":"k","input":{"messages":[{"role":"user","content":"{{{new string('x', 2 * 1024 * 1024)}}}"}]}}""");
        using var content = new StreamContent(new NonSeekableStream(bytes));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        content.Headers.ContentLength.ShouldBeNull();

        var response = await RefusedAsync(client => client.SendRawAsync(HttpMethod.Post, "/v1/executions", content), 413, "PAYLOAD_TOO_LARGE");

        response.Body.Length.ShouldBeLessThan(2000);
    }

    [Theory]
    [InlineData("unknown_field")]
    [InlineData("model")]
    [InlineData("idempotency_key")]
    [InlineData("unterminated")]
    [InlineData("metadata")]
    [InlineData("webhook_url")]
    public async Task Problem_bodies_never_echo_a_huge_string_back(string where)
    {
        var huge = new string('Z', 900 * 1024);
        var body = where switch
        {
            "unknown_field" => $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"k","{{huge}}":1}""",
            "model" => $$"""{"model":"{{huge}}","input":{{Messages}},"idempotency_key":"k"}""",
            "idempotency_key" => $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"{{huge}}"}""",
            "unterminated" => $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"{{huge}}""",
            "metadata" => $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"k","metadata":{"note":"{{{huge}}}"}}""",
            "webhook_url" => $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"k","webhook_url":"https://example.com/{{huge}}"}""",
            _ => throw new ArgumentOutOfRangeException(nameof(where)),
        };

        var response = await RefusedAsync(body, field: null);

        response.Body.Length.ShouldBeLessThan(2000);
        response.Body.ShouldNotContain(new string('Z', 200));
    }

    [Theory]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"\ud800"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"ok\udc00"}""")]
    [InlineData("""{"model":"sim/\ud800","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","\ud800":1}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","metadata":{"\udc00":"x"}}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","metadata":{"a":"\ud800"}}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"\ud800"}]},"idempotency_key":"k"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":[{"type":"text","text":"\ud800"}]}]},"idempotency_key":"k"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"\ud800","content":"hello"}]},"idempotency_key":"k"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}],"provider_options":{"\ud800":"\udc00\ud800"}},"idempotency_key":"k"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","webhook_url":"https://example.com/\ud800"}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","webhook_events":["\ud800"]}""")]
    [InlineData("""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","max_cost_usd":"\ud800"}""")]
    public Task An_unpaired_surrogate_escape_anywhere_is_a_400_not_a_500(string body) => RefusedAsync(body, field: null);

    [Theory]
    [InlineData("content")]
    [InlineData("idempotency_key")]
    [InlineData("field_name")]
    [InlineData("metadata")]
    public async Task Bytes_that_are_not_utf8_are_a_400_not_a_500(string where)
    {
        var body = where switch
        {
            "content" => """{"model":"sim/text","input":{"messages":[{"role":"user","content":"@@"}]},"idempotency_key":"k"}""",
            "idempotency_key" => """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k@@"}""",
            "field_name" => """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","@@":1}""",
            "metadata" => """{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"k","metadata":{"a":"@@"}}""",
            _ => throw new ArgumentOutOfRangeException(nameof(where)),
        };
        var bytes = Encoding.UTF8.GetBytes(body).SelectMany(b => b == (byte)'@' ? new byte[] { 0xFF } : [b]).ToArray();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");

        await RefusedAsync(client => client.SendRawAsync(HttpMethod.Post, "/v1/executions", content), 400, "VALIDATION_ERROR");
    }

    [Fact]
    public async Task A_batch_item_with_an_unpaired_surrogate_is_refused_without_a_500_and_stores_nothing()
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await account.Client.PostJsonAsync(
            "/v1/executions/batch",
            """{"executions":[{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"\ud800"}]}""");

        // Either the whole batch is refused, or its one item carries the error.
        if (response.Status == 200)
        {
            response.Json.GetProperty("data")[0].GetProperty("status").GetInt32().ShouldBe(400, response.Body);
        }
        else
        {
            response.Status.ShouldBe(400, response.Body);
            response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        }

        await AssertNothingStoredAsync(account);
    }

    [Theory]
    [InlineData("/v1/ledger?limit=abc")]
    [InlineData("/v1/ledger?limit=99999999999")]
    [InlineData("/v1/ledger?limit=0")]
    [InlineData("/v1/executions?limit=abc")]
    [InlineData("/v1/executions?limit=0")]
    public async Task A_list_limit_that_is_not_1_to_100_is_a_400_naming_limit(string path)
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await account.Client.GetApiAsync(path);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe("limit");
    }

    [Fact]
    public async Task A_bad_submission_after_a_good_one_leaves_the_good_one_and_its_hold_alone()
    {
        using var account = await _gateway.CreateAccountAsync();
        var good = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""");
        good.Status.ShouldBe(202, good.Body);
        var heldBefore = (await account.Client.BalanceAsync()).Held;

        var bad = await account.Client.SendJsonAsync(HttpMethod.Post, "/v1/executions", Envelope("timeout_seconds", "0"));

        bad.Status.ShouldBe(400, bad.Body);
        (await account.Client.ExecutionsAsync()).Select(e => e.GetProperty("id").GetString()).ShouldBe([good.Json.GetProperty("id").GetString()]);
        (await account.Client.BalanceAsync()).Held.ShouldBe(heldBefore);
        (await account.Client.LedgerAsync()).Count.ShouldBe(2); // credit + the good one's hold
    }

    /// <summary>Posts <paramref name="body"/> to <c>/v1/executions</c> as a new account and expects it refused, storing nothing.</summary>
    private Task<ApiResponse> RefusedAsync(string body, string? field, int status = 400, string? code = "VALIDATION_ERROR") =>
        RefusedAsync(client => client.SendJsonAsync(HttpMethod.Post, "/v1/executions", body), status, code, field);

    /// <summary>
    /// Sends a request as a new account and expects the problem: its status, and its <c>code</c> and <c>field</c> where
    /// given. Nothing of the request may be stored.
    /// </summary>
    private async Task<ApiResponse> RefusedAsync(Func<HttpClient, Task<ApiResponse>> send, int status, string? code, string? field = null)
    {
        using var account = await _gateway.CreateAccountAsync();

        var response = await send(account.Client);

        response.Status.ShouldBe(status, response.Body.Length > 2000 ? response.Body[..2000] : response.Body);
        if (code is not null)
        {
            response.ProblemCode.ShouldBe(code);
        }

        if (field is not null)
        {
            response.ProblemField().ShouldBe(field);
        }

        await AssertNothingStoredAsync(account);
        return response;
    }

    /// <summary>A valid submission with one top-level field set to <paramref name="valueJson"/> (added when it is not there).</summary>
    private static string Envelope(string field, string valueJson)
    {
        var envelope = new JsonObject
        {
            ["model"] = "sim/text",
            ["input"] = JsonNode.Parse(Messages),
            ["idempotency_key"] = Guid.NewGuid().ToString(),
        };
        envelope[field] = JsonNode.Parse(valueJson);
        return envelope.ToJsonString();
    }

    /// <summary>Nothing of a refused submission is left: no execution, no hold, no ledger entry but the setup credit.</summary>
    private static async Task AssertNothingStoredAsync(TestAccount account)
    {
        (await account.Client.ExecutionsAsync()).ShouldBeEmpty();
        var (balance, held, available) = await account.Client.BalanceAsync();
        balance.ShouldBe(Credit);
        held.ShouldBe(0);
        available.ShouldBe(Credit);
        var ledger = await account.Client.LedgerAsync();
        ledger.Count.ShouldBe(1);
        ledger[0].GetProperty("kind").GetString().ShouldBe("credit");
        ledger[0].GetProperty("reference").GetString().ShouldBe("setup");
    }

    /// <summary>A read-only stream without a length, so that HttpClient sends the body chunked.</summary>
    private sealed class NonSeekableStream(byte[] bytes) : Stream
    {
        private readonly MemoryStream _inner = new(bytes);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
