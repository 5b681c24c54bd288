using System.Globalization;

namespace ModelRoute.Tests.Http;

/// <summary>docs/api.md#endpoints: polling is rate-limited per API key with a token bucket; 429 RATE_LIMITED with Retry-After.</summary>
public sealed class RateLimitTests : IAsyncLifetime
{
    private const int Burst = 3;

    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Polling:PermitsPerSecond"] = "1",
        ["ModelRoute:Polling:Burst"] = Burst.ToString(CultureInfo.InvariantCulture),
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Polling_past_the_burst_gets_429_rate_limited_with_retry_after_in_whole_seconds()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);

        // The bucket starts full: the burst passes.
        for (var i = 0; i < Burst; i++)
        {
            var allowed = await account.Client.GetApiAsync($"/v1/executions/{id}");
            allowed.Status.ShouldBe(200, $"request {i + 1}: {allowed.Body}");
        }

        var limited = await PollUntilLimitedAsync(account.Client, id);

        limited.ProblemCode.ShouldBe("RATE_LIMITED");
        var retryAfter = limited.Header("Retry-After");
        retryAfter.ShouldNotBeNull();
        int.TryParse(retryAfter, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds).ShouldBeTrue(retryAfter);
        seconds.ShouldBeGreaterThanOrEqualTo(1);
        seconds.ShouldBeLessThanOrEqualTo(60);
    }

    [Fact]
    public async Task Every_polling_endpoint_draws_on_the_same_bucket()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);
        string[] paths = [$"/v1/executions/{id}", "/v1/executions", $"/v1/executions/{id}/artifacts/none.png"];

        var statuses = new List<int>();
        for (var i = 0; i < 30 && !statuses.Contains(429); i++)
        {
            statuses.Add((await account.Client.GetApiAsync(paths[i % paths.Length])).Status);
        }

        statuses.Take(Burst).ShouldBe([200, 200, 404]);
        statuses.ShouldContain(429);
    }

    [Fact]
    public async Task Limits_are_per_api_key_so_another_key_is_not_limited_by_the_first()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var otherAccount = await _gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);
        var otherId = await SubmitAsync(otherAccount.Client);
        using var admin = _gateway.Admin();
        var secondKey = (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        using var secondClient = _gateway.WithBearer(secondKey);

        await PollUntilLimitedAsync(account.Client, id);

        // A second key of the same account and a key of another account each have a full bucket of their own.
        for (var i = 0; i < Burst; i++)
        {
            var sameAccount = await secondClient.GetApiAsync($"/v1/executions/{id}");
            sameAccount.Status.ShouldBe(200, $"second key, request {i + 1}: {sameAccount.Body}");
            var other = await otherAccount.Client.GetApiAsync($"/v1/executions/{otherId}");
            other.Status.ShouldBe(200, $"other account, request {i + 1}: {other.Body}");
        }
    }

    [Fact]
    public async Task Submissions_and_cancels_are_not_limited_by_the_polling_limiter()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);
        await PollUntilLimitedAsync(account.Client, id);

        var ids = new List<string>();
        for (var i = 0; i < Burst * 3; i++)
        {
            var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""");
            submitted.Status.ShouldBe(202, $"submission {i + 1}: {submitted.Body}");
            ids.Add(submitted.Json.GetProperty("id").GetString()!);
        }

        foreach (var submittedId in ids)
        {
            var cancelled = await account.Client.PostJsonAsync($"/v1/executions/{submittedId}/cancel", "{}");
            cancelled.Status.ShouldBe(202, cancelled.Body);
        }

        // Read through the admin API: the account's own key is still limited, and every account GET counts.
        using var admin = _gateway.Admin();
        var held = (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("held");
        HttpExtensions.Micros(held).ShouldBe(10_000); // only the first, still running, holds money
    }

    [Theory]
    [InlineData("/v1/executions/{id}/webhook-deliveries")]
    [InlineData("/v1/webhook-deliveries/whd_none")]
    [InlineData("/v1/webhook-endpoints")]
    [InlineData("/v1/webhook-endpoints/whe_none")]
    [InlineData("/v1/webhook-endpoints/whe_none/deliveries")]
    [InlineData("/v1/webhooks/default-secret")]
    [InlineData("/v1/balance")]
    [InlineData("/v1/ledger")]
    [InlineData("/v1/models")]
    public async Task Every_read_an_account_key_makes_is_rate_limited(string path)
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);
        path = path.Replace("{id}", id, StringComparison.Ordinal);

        var statuses = new List<int>();
        for (var i = 0; i < 30 && !statuses.Contains(429); i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            using var response = await account.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            statuses.Add((int)response.StatusCode);
        }

        statuses.ShouldContain(429, $"{path}: {string.Join(",", statuses)}");
        statuses.Count(s => s != 429).ShouldBe(Burst, $"{path}: {string.Join(",", statuses)}");
    }

    [Fact]
    public async Task A_key_idle_for_seconds_gets_exactly_its_burst_and_no_more()
    {
        const int burst = 20;
        const int perSecond = 1;
        await using var gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["ModelRoute:Polling:PermitsPerSecond"] = perSecond.ToString(CultureInfo.InvariantCulture),
            ["ModelRoute:Polling:Burst"] = burst.ToString(CultureInfo.InvariantCulture),
        });
        using var account = await gateway.CreateAccountAsync();
        var id = await SubmitAsync(account.Client);
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Status.ShouldBe(200); // the key's bucket now exists

        // Idle: the bucket refills to its burst within a second and then stays full. The framework's bucket
        // credited this idle time again at its first refill after the next burst (28 or more granted here,
        // 35 of 60 at 5/s after 3 s); idle buckets are dropped after 10 s, so stay below that.
        await Task.Delay(TimeSpan.FromSeconds(8));
        var started = System.Diagnostics.Stopwatch.StartNew();
        var waves = new List<Task<int>>();
        for (var wave = 0; wave < 3; wave++)
        {
            waves.AddRange(Enumerable.Range(0, burst).Select(async _ => (await account.Client.GetApiAsync($"/v1/executions/{id}")).Status));
            await Task.Delay(150);
        }

        var statuses = await Task.WhenAll(waves);
        var elapsed = started.Elapsed;

        // What really refilled while the requests ran may pass too; nothing more.
        var refilled = (int)Math.Floor(elapsed.TotalSeconds * perSecond);
        var granted = statuses.Count(s => s == 200);
        statuses.Where(s => s != 200).ShouldAllBe(s => s == 429);
        granted.ShouldBeGreaterThanOrEqualTo(burst);
        granted.ShouldBeLessThanOrEqualTo(burst + refilled, $"{granted} granted in {elapsed.TotalMilliseconds:0} ms");
    }

    private static async Task<string> SubmitAsync(HttpClient client)
    {
        var submitted = await client.SubmitTextAsync(simulate: """{"latency_ms":20000}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        return submitted.Json.GetProperty("id").GetString()!;
    }

    /// <summary>Polls until the limiter refuses; a bucket of 3 refilled at 1/s must refuse well within 30 quick requests.</summary>
    private static async Task<ApiResponse> PollUntilLimitedAsync(HttpClient client, string id)
    {
        var statuses = new List<int>();
        for (var i = 0; i < 30; i++)
        {
            var response = await client.GetApiAsync($"/v1/executions/{id}");
            if (response.Status == 429)
            {
                return response;
            }

            response.Status.ShouldBe(200, response.Body);
            statuses.Add(response.Status);
        }

        throw new ShouldAssertException($"No 429 after {statuses.Count} polls with a burst of {Burst} at 1/s.");
    }
}
