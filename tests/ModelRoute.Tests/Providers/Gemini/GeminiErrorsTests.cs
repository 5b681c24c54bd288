using ModelRoute.Server.Providers;
using ModelRoute.Server.Providers.Gemini;

namespace ModelRoute.Tests.Providers.Gemini;

public sealed class GeminiErrorsTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ProviderOutcome.Failed Map(int code, string status, string message, params object[] details) =>
        GeminiErrors.Map("google", code, FakeGemini.ErrorBody(code, status, message, details), null, "AIza-secret", Now);

    [Theory]
    [InlineData(400, "INVALID_ARGUMENT", "Invalid value at 'contents[0].role'", "INVALID_INPUT", false)]
    [InlineData(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", "CONTEXT_LENGTH_EXCEEDED", false)]
    [InlineData(400, "FAILED_PRECONDITION", "User location is not supported for the API use.", "INVALID_INPUT", false)]
    [InlineData(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(404, "NOT_FOUND", "models/gemini-nope is not found for API version v1beta", "INVALID_INPUT", false)]
    [InlineData(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", "PROVIDER_RATE_LIMITED", true)]
    [InlineData(500, "INTERNAL", "An internal error has occurred.", "PROVIDER_UNAVAILABLE", true)]
    [InlineData(503, "UNAVAILABLE", "The model is overloaded.", "PROVIDER_UNAVAILABLE", true)]
    [InlineData(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", "PROVIDER_TIMEOUT", true)]
    public void The_table(int status, string statusName, string message, string code, bool retryable)
    {
        var failed = Map(status, statusName, message);

        failed.Error.Code.ShouldBe(code);
        failed.Error.Retryable.ShouldBe(retryable);
        failed.Error.Provider.ShouldBe("google");
        failed.Error.ProviderStatus.ShouldBe(status);
        failed.Error.Message.ShouldContain(statusName);
    }

    [Fact]
    public void A_wrong_key_is_known_by_its_ErrorInfo_reason()
    {
        var info = new Dictionary<string, object> { ["@type"] = "type.googleapis.com/google.rpc.ErrorInfo", ["reason"] = "API_KEY_INVALID", ["domain"] = "googleapis.com" };
        Map(400, "INVALID_ARGUMENT", "Something else.", info).Error.Code.ShouldBe("PROVIDER_AUTH_FAILED");
    }

    [Fact]
    public void The_retry_delay_comes_from_RetryInfo_then_from_retry_after()
    {
        Map(429, "RESOURCE_EXHAUSTED", "quota", FakeGemini.RetryInfo("13s")).RetryAfter.ShouldBe(TimeSpan.FromSeconds(13));
        Map(429, "RESOURCE_EXHAUSTED", "quota", FakeGemini.RetryInfo("0.250s")).RetryAfter.ShouldBe(TimeSpan.FromMilliseconds(250));
        Map(429, "RESOURCE_EXHAUSTED", "quota").RetryAfter.ShouldBeNull();
        Map(400, "INVALID_ARGUMENT", "x", FakeGemini.RetryInfo("13s")).RetryAfter.ShouldBeNull();

        using var response = new HttpResponseMessage((System.Net.HttpStatusCode)429);
        response.Headers.TryAddWithoutValidation("retry-after", "7");
        GeminiErrors.Map("google", 429, FakeGemini.ErrorBody(429, "RESOURCE_EXHAUSTED", "quota"), response.Headers, null, Now).RetryAfter.ShouldBe(TimeSpan.FromSeconds(7));
    }

    [Theory]
    [InlineData(502, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(504, "PROVIDER_TIMEOUT", true)]
    [InlineData(429, "PROVIDER_RATE_LIMITED", true)]
    [InlineData(403, "PROVIDER_AUTH_FAILED", false)]
    [InlineData(418, "PROVIDER_ERROR", false)]
    public void A_body_that_is_not_Googles_is_judged_by_its_status(int status, string code, bool retryable)
    {
        var failed = GeminiErrors.Map("google", status, "<html>oops</html>", null, null, Now);
        failed.Error.Code.ShouldBe(code);
        failed.Error.Retryable.ShouldBe(retryable);
    }

    [Fact]
    public void Messages_are_truncated_and_never_carry_the_key()
    {
        var failed = Map(400, "INVALID_ARGUMENT", "key AIza-secret echoed " + new string('x', 1000));
        failed.Error.Message.ShouldNotContain("AIza-secret");
        failed.Error.Message.Length.ShouldBeLessThan(GeminiErrors.MaxMessageLength + 80);
    }

    [Fact]
    public void Responses_without_candidates_are_provider_errors_and_function_calls_are_tool_calls()
    {
        GeminiAdapter.ReadResponse("google", "[]").ShouldBeOfType<ProviderOutcome.Failed>().Error.Code.ShouldBe("PROVIDER_ERROR");
        GeminiAdapter.ReadResponse("google", """{"candidates":[],"usageMetadata":{}}""").ShouldBeOfType<ProviderOutcome.Failed>().Error.Code.ShouldBe("PROVIDER_ERROR");

        var tool = GeminiAdapter.ReadResponse("google", """
            {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"weather","args":{"city":"Oslo"}}}]},"finishReason":"STOP","index":0}],
             "usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":4,"totalTokenCount":24}}
            """).ShouldBeOfType<ProviderOutcome.Completed>();
        using var output = JsonDocument.Parse(tool.Output);
        output.RootElement.GetProperty("finish_reason").GetString().ShouldBe("tool_calls");
        output.RootElement.GetProperty("tool_calls")[0].GetProperty("arguments").GetProperty("city").GetString().ShouldBe("Oslo");
        tool.Usage.InputTokens.ShouldBe(20);
        tool.Usage.OutputTokens.ShouldBe(4);
    }
}
