using Microsoft.AspNetCore.Http;
using ModelRoute.Server.Http;

namespace ModelRoute.Tests.Http;

/// <summary>docs/api.md, "Bad input": a request the server could not read that reaches the exception handler is the client's 4xx, as a problem.</summary>
public sealed class BadRequestExceptionHandlerTests
{
    [Theory]
    [InlineData(400, 400, "VALIDATION_ERROR")]
    [InlineData(413, 413, "PAYLOAD_TOO_LARGE")]
    [InlineData(431, 431, "VALIDATION_ERROR")]
    [InlineData(408, 408, "VALIDATION_ERROR")]
    [InlineData(500, 400, "VALIDATION_ERROR")]
    public async Task A_bad_request_exception_becomes_its_own_4xx_problem(int thrown, int status, string code)
    {
        var (handled, context, problem) = await HandleAsync(new BadHttpRequestException("bad", thrown));

        handled.ShouldBeTrue();
        context.Response.StatusCode.ShouldBe(status);
        context.Response.ContentType.ShouldBe("application/problem+json");
        problem.GetProperty("status").GetInt32().ShouldBe(status);
        problem.GetProperty("code").GetString().ShouldBe(code);
    }

    [Fact]
    public async Task A_chunk_size_beyond_64_bits_is_a_400_problem()
    {
        var (handled, context, _) = await HandleAsync(new IOException("Bad chunk size data.", new OverflowException()));

        handled.ShouldBeTrue();
        context.Response.StatusCode.ShouldBe(400);
    }

    [Fact]
    public async Task Any_other_exception_is_left_to_the_500_handler()
    {
        var (handled, _, _) = await HandleAsync(new InvalidOperationException("a bug"));

        handled.ShouldBeFalse();
    }

    private static async Task<(bool Handled, DefaultHttpContext Context, JsonElement Problem)> HandleAsync(Exception exception)
    {
        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;

        var handled = await new BadRequestExceptionHandler().TryHandleAsync(context, exception, CancellationToken.None);

        return (handled, context, body.Length == 0 ? default : JsonDocument.Parse(body.ToArray()).RootElement);
    }
}
