namespace ModelRoute.Tests.Providers.Anthropic;

/// <summary>
/// The fake is only worth what it agrees with Anthropic: the official TypeScript SDK, pointed at
/// it, must read its messages and classify its errors as it would Anthropic's own. An npm failure
/// fails the test; it never skips.
/// </summary>
public sealed class AnthropicFakeFidelityTests
{
    public const string SdkPackage = "@anthropic-ai/sdk@1.11.0";

    private const string Script = """
        const Anthropic = require('@anthropic-ai/sdk');
        const [baseURL, goodKey, badKey] = process.argv.slice(2);
        const describe = (e) => ({
          name: e.constructor.name,
          status: e.status,
          isApiError: e instanceof Anthropic.APIError,
          isAuth: e instanceof Anthropic.AuthenticationError,
          isOverloaded: Anthropic.OverloadedError ? e instanceof Anthropic.OverloadedError : null,
          isInternal: e instanceof Anthropic.InternalServerError,
          errorType: e.error && e.error.error ? e.error.error.type : null,
          requestId: e.requestID ?? null,
        });
        (async () => {
          const out = {};
          const client = new Anthropic({ apiKey: goodKey, baseURL, maxRetries: 0 });
          try {
            await client.messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
            out.overloaded = 'no error';
          } catch (e) { out.overloaded = describe(e); }
          const message = await client.messages.create({
            model: 'claude-3-5-haiku-latest',
            max_tokens: 64,
            system: 'Be brief.',
            messages: [{ role: 'user', content: 'Hello' }],
          });
          out.ok = { text: message.content.filter(b => b.type === 'text').map(b => b.text).join(''), usage: message.usage, stop_reason: message.stop_reason, type: message.type, role: message.role, model: message.model };
          try {
            await new Anthropic({ apiKey: badKey, baseURL, maxRetries: 0 }).messages.create({ model: 'claude-3-5-haiku-latest', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] });
            out.auth = 'no error';
          } catch (e) { out.auth = describe(e); }
          console.log(JSON.stringify(out));
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    [Fact]
    public async Task The_official_SDK_reads_the_fakes_messages_and_errors_as_Anthropics()
    {
        await using var fake = await FakeAnthropic.StartAsync();
        fake.ReplyText = "Hi there.";
        fake.Usage = (Input: 21, CacheCreation: 3, CacheRead: 40, Output: 5);

        fake.Fail(529, "overloaded_error", "Overloaded"); // the first request only: maxRetries 0, so the SDK must not retry it

        var result = await SdkScript.RunAsync(SdkPackage, Script, fake.BaseUrl, FakeAnthropic.ApiKey, "sk-ant-wrong");

        var ok = result.GetProperty("ok");
        ok.GetProperty("text").GetString().ShouldBe("Hi there.");
        ok.GetProperty("type").GetString().ShouldBe("message");
        ok.GetProperty("role").GetString().ShouldBe("assistant");
        ok.GetProperty("stop_reason").GetString().ShouldBe("end_turn");
        ok.GetProperty("model").GetString().ShouldBe("claude-3-5-haiku-latest");
        ok.GetProperty("usage").GetProperty("input_tokens").GetInt64().ShouldBe(21);
        ok.GetProperty("usage").GetProperty("cache_creation_input_tokens").GetInt64().ShouldBe(3);
        ok.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt64().ShouldBe(40);
        ok.GetProperty("usage").GetProperty("output_tokens").GetInt64().ShouldBe(5);

        var auth = result.GetProperty("auth");
        auth.GetProperty("status").GetInt32().ShouldBe(401, auth.ToString());
        auth.GetProperty("isAuth").GetBoolean().ShouldBeTrue(auth.ToString());
        auth.GetProperty("name").GetString().ShouldBe("AuthenticationError");
        auth.GetProperty("errorType").GetString().ShouldBe("authentication_error");

        var overloaded = result.GetProperty("overloaded");
        overloaded.GetProperty("status").GetInt32().ShouldBe(529, overloaded.ToString());
        overloaded.GetProperty("isApiError").GetBoolean().ShouldBeTrue();
        overloaded.GetProperty("name").GetString().ShouldBe("OverloadedError");
        overloaded.GetProperty("errorType").GetString().ShouldBe("overloaded_error");
        overloaded.GetProperty("requestId").GetString().ShouldBe("req_011CTestFake");

        // What the SDK sent is what the fake checks for: the path and the headers the adapter also sends.
        var create = fake.Requests.ElementAt(1);
        create.Path.ShouldBe("/v1/messages");
        FakeAnthropic.KeyOf(create.Headers).ShouldBe(FakeAnthropic.ApiKey); // SDK 1.x: Authorization: Bearer
        create.Headers.ContainsKey("anthropic-version").ShouldBeTrue();
        create.Json.GetProperty("system").GetString().ShouldBe("Be brief.");
        fake.Requests.Count.ShouldBe(3); // maxRetries: 0, so the 529 was not retried by the SDK
    }
}
