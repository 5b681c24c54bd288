namespace ModelRoute.Tests.Providers.OpenAI;

/// <summary>
/// The fake is only worth what it resembles: OpenAI's own Node SDK, pointed at it, must read its
/// answers and raise its errors as it does against api.openai.com. npm being unreachable fails the
/// test; it never skips.
/// </summary>
public sealed class OpenAIFakeFidelityTests
{
    /// <summary>Pinned: the last v4 release (CommonJS, Node 18+); checked to exist with <c>npm view openai@4.104.0 version</c>.</summary>
    private const string Sdk = "openai@4.104.0";

    private const string Script = """
        const OpenAI = require('openai');
        const [baseURL, apiKey] = process.argv.slice(2);
        const client = new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 15000 });
        const describe = (e) => ({
          name: e.constructor.name,
          status: e.status,
          isAuthentication: e instanceof OpenAI.AuthenticationError,
          isRateLimit: e instanceof OpenAI.RateLimitError,
          code: e.code ?? null,
          type: e.type ?? null,
          message: e.message,
          retryAfterMs: e.headers ? (e.headers['retry-after-ms'] ?? null) : null,
        });
        (async () => {
          const out = {};
          // The test scripted one 429 for the first request that passes the key check.
          try {
            await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
            out.rateLimit = 'no error';
          } catch (e) { out.rateLimit = describe(e); }
          try {
            const wrong = new OpenAI({ apiKey: 'sk-wrong-key-0000000000', baseURL, maxRetries: 0 });
            await wrong.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
            out.auth = 'no error';
          } catch (e) { out.auth = describe(e); }
          const chat = await client.chat.completions.create({
            model: 'gpt-4o-mini', max_tokens: 50,
            messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Say hello.' }],
          });
          out.chat = { object: chat.object, id: chat.id, model: chat.model, content: chat.choices[0].message.content,
                       role: chat.choices[0].message.role, finish: chat.choices[0].finish_reason, usage: chat.usage };
          const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
          out.embeddings = { object: emb.object, count: emb.data.length, indexes: emb.data.map(d => d.index),
                             vectors: emb.data.map(d => Array.from(d.embedding)), usage: emb.usage };
          const b64 = await client.images.generate({ model: 'dall-e-3', prompt: 'a fox', n: 2, response_format: 'b64_json' });
          out.imagesB64 = b64.data.map(d => d.b64_json);
          const url = await client.images.generate({ model: 'dall-e-2', prompt: 'a fox', response_format: 'url' });
          out.imageUrl = url.data[0].url;
          console.log(JSON.stringify(out));
        })().catch(e => { console.error('UNEXPECTED', e); process.exit(2); });
        """;

    [Fact]
    public async Task The_official_node_sdk_reads_the_fakes_answers_and_errors()
    {
        await using var fake = await OpenAIFake.StartAsync();
        fake.FailNext(1, 429, OpenAIFake.ErrorJson("Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.", "requests", "rate_limit_exceeded"),
            new Dictionary<string, string> { ["retry-after-ms"] = "1200", ["retry-after"] = "2" });
        fake.ChatReply = "Hello there!";

        var result = await SdkScript.RunAsync(Sdk, Script, fake.V1, fake.ApiKey);

        ShouldHaveRaisedOpenAIsErrors(result);
        ShouldHaveReadTheChatAndEmbeddings(result);
        await ShouldHaveReadTheImagesAsync(result, fake.BaseUrl);

        // What the SDK sent: the fake saw OpenAI's paths, bearer keys and JSON bodies.
        var requests = fake.Requests.ToList();
        requests.Select(r => r.Path).ShouldBe(["/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/images/generations", "/v1/images/generations"]);
        requests[1].Authorization.ShouldBe("Bearer sk-wrong-key-0000000000");
        requests.Where((_, i) => i != 1).ShouldAllBe(r => r.Authorization == "Bearer " + fake.ApiKey);
        requests[2].Json.GetProperty("max_tokens").GetInt32().ShouldBe(50);
    }

    private static void ShouldHaveRaisedOpenAIsErrors(JsonElement result)
    {
        var rateLimit = result.GetProperty("rateLimit");
        rateLimit.GetProperty("isRateLimit").GetBoolean().ShouldBeTrue(rateLimit.ToString());
        rateLimit.GetProperty("name").GetString().ShouldBe("RateLimitError");
        rateLimit.GetProperty("status").GetInt32().ShouldBe(429);
        rateLimit.GetProperty("code").GetString().ShouldBe("rate_limit_exceeded");
        rateLimit.GetProperty("type").GetString().ShouldBe("requests");
        rateLimit.GetProperty("retryAfterMs").GetString().ShouldBe("1200");
        rateLimit.GetProperty("message").GetString()!.ShouldContain("Rate limit reached");

        var auth = result.GetProperty("auth");
        auth.GetProperty("isAuthentication").GetBoolean().ShouldBeTrue(auth.ToString());
        auth.GetProperty("name").GetString().ShouldBe("AuthenticationError");
        auth.GetProperty("status").GetInt32().ShouldBe(401);
        auth.GetProperty("code").GetString().ShouldBe("invalid_api_key");
        auth.GetProperty("message").GetString()!.ShouldContain("Incorrect API key provided");
        auth.GetProperty("message").GetString()!.ShouldNotContain("sk-wrong-key-0000000000", Case.Sensitive, "OpenAI masks a wrong key");
    }

    private static void ShouldHaveReadTheChatAndEmbeddings(JsonElement result)
    {
        var chat = result.GetProperty("chat");
        chat.GetProperty("object").GetString().ShouldBe("chat.completion");
        chat.GetProperty("id").GetString()!.ShouldStartWith("chatcmpl-");
        chat.GetProperty("model").GetString().ShouldBe("gpt-4o-mini");
        chat.GetProperty("content").GetString().ShouldBe("Hello there!");
        chat.GetProperty("role").GetString().ShouldBe("assistant");
        chat.GetProperty("finish").GetString().ShouldBe("stop");
        var usage = chat.GetProperty("usage");
        usage.GetProperty("completion_tokens").GetInt32().ShouldBe(3);
        usage.GetProperty("total_tokens").GetInt32().ShouldBe(usage.GetProperty("prompt_tokens").GetInt32() + 3);
        usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32().ShouldBe(0);

        var embeddings = result.GetProperty("embeddings");
        embeddings.GetProperty("object").GetString().ShouldBe("list");
        embeddings.GetProperty("count").GetInt32().ShouldBe(2);
        embeddings.GetProperty("indexes").EnumerateArray().Select(i => i.GetInt32()).ShouldBe([0, 1]);
        string[] texts = ["alpha", "beta"];
        for (var i = 0; i < 2; i++)
        {
            var vector = embeddings.GetProperty("vectors")[i].EnumerateArray().Select(v => v.GetDouble()).ToArray();
            vector.Length.ShouldBe(8);
            vector.Zip(OpenAIFake.Vector(texts[i])).ShouldAllBe(p => Math.Abs(p.First - p.Second) < 1e-6);
        }

        embeddings.GetProperty("usage").GetProperty("prompt_tokens").GetInt32().ShouldBe(2 + 1);
    }

    private static async Task ShouldHaveReadTheImagesAsync(JsonElement result, string baseUrl)
    {
        var images = result.GetProperty("imagesB64").EnumerateArray().Select(b => Convert.FromBase64String(b.GetString()!)).ToList();
        images.Count.ShouldBe(2);
        images[0].ShouldBe(OpenAIFake.Png("a fox", 0));
        images[1].ShouldBe(OpenAIFake.Png("a fox", 1));
        var imageUrl = result.GetProperty("imageUrl").GetString()!;
        imageUrl.ShouldStartWith(baseUrl + "/files/");
        using (var http = new HttpClient())
        {
            (await http.GetByteArrayAsync(imageUrl)).ShouldBe(OpenAIFake.Png("a fox", 0));
        }
    }
}
