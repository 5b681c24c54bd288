using ModelRoute.Server.Providers;
using ModelRoute.Server.Providers.Anthropic;

namespace ModelRoute.Tests.Providers.Anthropic;

public sealed class AnthropicErrorsTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static ProviderOutcome.Failed Map(int status, string type, string message, params (string Name, string Value)[] headers)
    {
        using var response = new HttpResponseMessage((System.Net.HttpStatusCode)status);
        foreach (var (name, value) in headers)
        {
            response.Headers.TryAddWithoutValidation(name, value);
        }

        return AnthropicErrors.Map("claude", status, FakeAnthropic.ErrorBody(type, message), response.Headers, "sk-ant-secret", Now);
    }

    [Theory]
    [InlineData(400, "invalid_request_error", "messages: field required", "INVALID_INPUT", false)]
    [InlineData(400, "invalid_request_error", "prompt is too long: 210094 tokens > 200000 maximum", "CONTEXT_LENGTH_EXCEEDED", false)]
    [InlineData(400, "invalid_request_error", "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000", "CONTEXT_LENGTH_EXCEEDED", false)]
    [InlineData(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API.", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(401, "authentication_error", "invalid x-api-key", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(402, "billing_error", "billing problem", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(403, "permission_error", "no access to this model", "PROVIDER_AUTH_FAILED", false)]
    [InlineData(404, "not_found_error", "model: claude-nope", "INVALID_INPUT", false)]
    [InlineData(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", "INVALID_INPUT", false)]
    [InlineData(429, "rate_limit_error", "rate limited", "PROVIDER_RATE_LIMITED", true)]
    [InlineData(500, "api_error", "Internal server error", "PROVIDER_UNAVAILABLE", true)]
    [InlineData(504, "timeout_error", "Request timeout", "PROVIDER_TIMEOUT", true)]
    [InlineData(529, "overloaded_error", "Overloaded", "PROVIDER_UNAVAILABLE", true)]
    public void The_table(int status, string type, string message, string code, bool retryable)
    {
        var failed = Map(status, type, message);

        failed.Error.Code.ShouldBe(code);
        failed.Error.Retryable.ShouldBe(retryable);
        failed.Error.Provider.ShouldBe("claude");
        failed.Error.ProviderStatus.ShouldBe(status);
        failed.Error.Message.ShouldContain(type);
    }

    [Theory]
    [InlineData(502, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(503, "PROVIDER_UNAVAILABLE", true)]
    [InlineData(504, "PROVIDER_TIMEOUT", true)]
    [InlineData(429, "PROVIDER_RATE_LIMITED", true)]
    [InlineData(401, "PROVIDER_AUTH_FAILED", false)]
    [InlineData(400, "INVALID_INPUT", false)]
    [InlineData(418, "PROVIDER_ERROR", false)]
    public void A_body_that_is_not_Anthropics_is_judged_by_its_status(int status, string code, bool retryable)
    {
        var failed = AnthropicErrors.Map("claude", status, "<html>Bad Gateway</html>", null, "k", Now);

        failed.Error.Code.ShouldBe(code);
        failed.Error.Retryable.ShouldBe(retryable);
        failed.Error.Message.ShouldNotContain("html");
    }

    [Fact]
    public void Retry_after_is_read_in_seconds_or_as_a_date_and_only_for_retryable_errors()
    {
        Map(429, "rate_limit_error", "x", ("retry-after", "13")).RetryAfter.ShouldBe(TimeSpan.FromSeconds(13));
        Map(529, "overloaded_error", "x", ("retry-after", "0.5")).RetryAfter.ShouldBe(TimeSpan.FromMilliseconds(500));
        Map(429, "rate_limit_error", "x", ("retry-after", Now.AddSeconds(30).ToString("R"))).RetryAfter.ShouldBe(TimeSpan.FromSeconds(30));
        Map(429, "rate_limit_error", "x").RetryAfter.ShouldBeNull();
        Map(400, "invalid_request_error", "x", ("retry-after", "13")).RetryAfter.ShouldBeNull();
    }

    [Fact]
    public void Messages_are_truncated_and_never_carry_the_key()
    {
        var failed = Map(400, "invalid_request_error", "bad key sk-ant-secret echoed " + new string('x', 1000));

        failed.Error.Message.ShouldNotContain("sk-ant-secret");
        failed.Error.Message.Length.ShouldBeLessThan(AnthropicErrors.MaxMessageLength + 80);
    }

    [Fact]
    public void A_response_without_content_or_usage_is_a_provider_error_and_tool_use_is_tool_calls()
    {
        var malformed = AnthropicAdapter.ReadResponse("claude", "not json").ShouldBeOfType<ProviderOutcome.Failed>();
        malformed.Error.Code.ShouldBe("PROVIDER_ERROR");
        AnthropicAdapter.ReadResponse("claude", """{"type":"message","content":[]}""").ShouldBeOfType<ProviderOutcome.Failed>().Error.Code.ShouldBe("PROVIDER_ERROR");

        var tool = AnthropicAdapter.ReadResponse("claude", """
            {"type":"message","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}],
             "stop_reason":"tool_use","usage":{"input_tokens":10,"output_tokens":3}}
            """).ShouldBeOfType<ProviderOutcome.Completed>();
        using var output = JsonDocument.Parse(tool.Output);
        output.RootElement.GetProperty("finish_reason").GetString().ShouldBe("tool_calls");
        output.RootElement.GetProperty("text").GetString().ShouldBe("Let me check.");
        output.RootElement.GetProperty("tool_calls")[0].GetProperty("arguments").GetProperty("city").GetString().ShouldBe("Paris");
        tool.Usage.InputTokens.ShouldBe(10);
        tool.Usage.OutputTokens.ShouldBe(3);
    }
}
