namespace ModelRoute.Tests.Providers.Gemini;

/// <summary>
/// The official <c>@google/genai</c> SDK, pointed at the fake (httpOptions.baseUrl, apiVersion
/// v1beta as the adapter uses), must read its answers and its errors as it reads Google's. An npm
/// failure fails the test; it never skips.
/// </summary>
public sealed class GeminiFakeFidelityTests
{
    public const string SdkPackage = "@google/genai@3.1.0";

    private const string Script = """
        const { GoogleGenAI, ApiError } = require('@google/genai');
        const [baseUrl, goodKey, badKey] = process.argv.slice(2);
        const httpOptions = { baseUrl, apiVersion: 'v1beta' };
        const describe = (e) => ({ name: e.name, status: e.status, isApiError: e instanceof ApiError, message: String(e.message) });
        (async () => {
          const out = {};
          const ai = new GoogleGenAI({ apiKey: goodKey, httpOptions });
          try {
            await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'x' });
            out.unavailable = 'no error';
          } catch (e) { out.unavailable = describe(e); }
          const r = await ai.models.generateContent({
            model: 'gemini-2.5-flash',
            contents: [{ role: 'user', parts: [{ text: 'Hello' }] }],
            config: { systemInstruction: 'Be brief.', maxOutputTokens: 64, temperature: 0.2 },
          });
          out.ok = { text: r.text, finishReason: r.candidates[0].finishReason, usage: r.usageMetadata, modelVersion: r.modelVersion };
          try {
            await new GoogleGenAI({ apiKey: badKey, httpOptions }).models.generateContent({ model: 'gemini-2.5-flash', contents: 'x' });
            out.auth = 'no error';
          } catch (e) { out.auth = describe(e); }
          console.log(JSON.stringify(out));
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    [Fact]
    public async Task The_official_SDK_reads_the_fakes_answers_and_errors_as_Googles()
    {
        await using var fake = await FakeGemini.StartAsync();
        fake.ReplyText = "Hi there.";
        fake.Usage = (Prompt: 30, Cached: 10, Candidates: 4, Thoughts: 2);
        fake.Fail(503, "UNAVAILABLE", "The model is overloaded. Please try again later."); // the first request only

        var result = await SdkScript.RunAsync(SdkPackage, Script, fake.BaseUrl, FakeGemini.ApiKey, "AIza-wrong");

        var ok = result.GetProperty("ok");
        ok.GetProperty("text").GetString().ShouldBe("Hi there.");
        ok.GetProperty("finishReason").GetString().ShouldBe("STOP");
        ok.GetProperty("modelVersion").GetString().ShouldBe("gemini-2.5-flash");
        ok.GetProperty("usage").GetProperty("promptTokenCount").GetInt64().ShouldBe(30);
        ok.GetProperty("usage").GetProperty("cachedContentTokenCount").GetInt64().ShouldBe(10);
        ok.GetProperty("usage").GetProperty("candidatesTokenCount").GetInt64().ShouldBe(4);
        ok.GetProperty("usage").GetProperty("thoughtsTokenCount").GetInt64().ShouldBe(2);

        var unavailable = result.GetProperty("unavailable");
        unavailable.GetProperty("isApiError").GetBoolean().ShouldBeTrue(unavailable.ToString());
        unavailable.GetProperty("status").GetInt32().ShouldBe(503);
        unavailable.GetProperty("message").GetString()!.ShouldContain("UNAVAILABLE");

        var auth = result.GetProperty("auth");
        auth.GetProperty("isApiError").GetBoolean().ShouldBeTrue(auth.ToString());
        auth.GetProperty("status").GetInt32().ShouldBe(400);
        auth.GetProperty("message").GetString()!.ShouldContain("API key not valid");

        // What the SDK sent is what the fake checks: the path, the key header, the body shape the adapter also sends.
        var create = fake.Requests.ElementAt(1);
        create.Path.ShouldBe("/v1beta/models/gemini-2.5-flash:generateContent");
        create.Headers["x-goog-api-key"].ShouldBe(FakeGemini.ApiKey);
        create.Json.GetProperty("systemInstruction").GetProperty("parts")[0].GetProperty("text").GetString().ShouldBe("Be brief.");
        create.Json.GetProperty("generationConfig").GetProperty("maxOutputTokens").GetInt32().ShouldBe(64);
        fake.Requests.Count.ShouldBe(3); // the SDK did not retry the 503 on its own
    }
}
