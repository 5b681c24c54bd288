using System.Diagnostics;
using System.Net;
using ModelRoute.Client.Tests.Infrastructure;

namespace ModelRoute.Client.Tests;

/// <summary>Polling is rate-limited per key: the client backs off after 429, honouring Retry-After.</summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly ClientGateway _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Polling:PermitsPerSecond"] = "1",
        ["ModelRoute:Polling:Burst"] = "2",
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task A_429_is_backed_off_and_retried_after_Retry_After()
    {
        var (_, key) = await _gateway.NewAccountAsync();
        var counter = new CountingHandler();
        using var client = _gateway.Client(key, o => o.MaxRetries = 10, counter);
        var submitted = await client.SubmitAsync(new SubmitExecutionRequest
        {
            Model = "sim/text",
            Input = System.Text.Json.JsonDocument.Parse("""{"messages":[{"role":"user","content":"x"}]}""").RootElement,
        });

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
        {
            (await client.GetAsync(submitted.Id)).Id.ShouldBe(submitted.Id);
        }

        var limited = counter.Log.Where(l => l.Status == 429).ToList();
        limited.ShouldNotBeEmpty("the burst of 2 was exceeded");
        clock.Elapsed.ShouldBeGreaterThan(TimeSpan.FromSeconds(1), "each 429 said Retry-After: 1");
        counter.Log.Count(l => l.Status == 200 && l.Path.StartsWith("/v1/executions/", StringComparison.Ordinal)).ShouldBe(5);
    }

    [Fact]
    public async Task Without_retries_the_429_is_a_typed_RATE_LIMITED_with_its_Retry_After()
    {
        var (_, key) = await _gateway.NewAccountAsync();
        using var client = _gateway.Client(key, o => o.MaxRetries = 0);
        var error = await Should.ThrowAsync<ModelRouteApiException>(async () =>
        {
            for (var i = 0; i < 10; i++)
            {
                await client.ListPageAsync();
            }
        });
        error.StatusCode.ShouldBe(HttpStatusCode.TooManyRequests);
        error.Code.ShouldBe("RATE_LIMITED");
        error.RetryAfter.ShouldNotBeNull();
        error.RetryAfter!.Value.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromSeconds(1));
    }
}
