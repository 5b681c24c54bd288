using System.Globalization;
using ModelRoute.Server.Billing;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/api.md#operator-overview: GET /v1/admin/overview answers the store's figures as last counted (with when) and this
/// node's providers and throughput, for the admin key only, and never asks the store itself.
/// </summary>
public sealed class OverviewEndpointTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?> { ["ModelRoute:Metrics:SampleInterval"] = "00:00:01" });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task The_overview_shows_a_pending_delivery_an_active_execution_its_hold_and_the_providers()
    {
        using var admin = _gateway.Admin();
        using var account = await _gateway.CreateAccountAsync();
        // Port 9 (discard) refuses: the delivery stays pending between its retries.
        var done = Id(await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""", extra: ""","webhook_url":"http://127.0.0.1:9/hook" """));
        await account.Client.WaitForTerminalAsync(done);
        var running = Id(await account.Client.SubmitTextAsync(simulate: """{"latency_ms":60000}"""));
        await account.Client.WaitForStatusAsync(running, "PROCESSING");
        var held = (await account.Client.BalanceAsync()).Held;

        var overview = await OverviewUntilAsync(admin, o => Store(o) is { ValueKind: JsonValueKind.Object } s
            && s.GetProperty("outbox").GetProperty("backlog").GetInt64() == 1 && s.GetProperty("executions_active").GetProperty("processing").GetInt64() == 1);

        overview.GetProperty("object").GetString().ShouldBe("overview");
        var store = Store(overview);
        var sampledAt = DateTimeOffset.Parse(store.GetProperty("sampled_at").GetString()!, CultureInfo.InvariantCulture);
        sampledAt.ShouldBeInRange(DateTimeOffset.UtcNow.AddSeconds(-30), DateTimeOffset.UtcNow.AddSeconds(1));
        store.GetProperty("sample_interval_seconds").GetInt32().ShouldBe(1);
        store.GetProperty("executions_active").GetProperty("pending").GetInt64().ShouldBe(0);
        store.GetProperty("outbox").GetProperty("oldest_age_seconds").GetInt64().ShouldBeGreaterThanOrEqualTo(0);
        Money.TryParseUsd(store.GetProperty("held").GetString()!, out var heldMicros).ShouldBeTrue();
        heldMicros.ShouldBe(held);
        store.GetProperty("oldest_hold_age_seconds").GetInt64().ShouldBeGreaterThanOrEqualTo(0);
        var sim = overview.GetProperty("providers").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "sim");
        sim.GetProperty("circuit").GetString().ShouldBe("closed");
        sim.GetProperty("in_flight").GetInt32().ShouldBe(1);
        sim.GetProperty("recent_calls").GetInt32().ShouldBe(1);
        overview.GetProperty("throughput").GetProperty("window_seconds").GetInt32().ShouldBe(60);

        (await account.Client.PostJsonAsync($"/v1/executions/{running}/cancel", "{}")).Status.ShouldBeOneOf([200, 202]);
        await OverviewUntilAsync(admin, o => Store(o).GetProperty("executions_active").GetProperty("processing").GetInt64() == 0
            && Store(o).GetProperty("held").GetString() == "0.000000" && Store(o).GetProperty("oldest_hold_age_seconds").ValueKind == JsonValueKind.Null);
    }

    [Fact]
    public async Task The_overview_is_for_the_admin_key_only()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var anonymous = _gateway.Anonymous();

        var refused = await account.Client.GetApiAsync("/v1/admin/overview");
        var unknown = await anonymous.GetApiAsync("/v1/admin/overview");

        refused.Status.ShouldBe(403, refused.Body);
        refused.ProblemCode.ShouldBe("FORBIDDEN");
        unknown.Status.ShouldBe(401, unknown.Body);
    }

    [Fact]
    public async Task The_overview_is_in_the_api_document_with_its_operation_id_and_a_summary()
    {
        using var client = _gateway.Anonymous();

        var document = await client.GetApiAsync("/openapi/v1.json");

        var operation = document.Json.GetProperty("paths").GetProperty("/v1/admin/overview").GetProperty("get");
        operation.GetProperty("operationId").GetString().ShouldBe("getOverview");
        operation.GetProperty("summary").GetString().ShouldNotBeNullOrWhiteSpace();
    }

    private static JsonElement Store(JsonElement overview) => overview.GetProperty("store");

    private static string Id(ApiResponse response)
    {
        response.Status.ShouldBe(202, response.Body);
        return response.Json.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> OverviewUntilAsync(HttpClient admin, Func<JsonElement, bool> condition)
    {
        var overview = default(JsonElement);
        await Eventually.HoldsAsync(async () =>
        {
            var response = await admin.GetApiAsync("/v1/admin/overview");
            response.Status.ShouldBe(200, response.Body);
            return condition(overview = response.Json);
        }, "the overview's figures", 20);
        return overview;
    }
}

/// <summary>docs/api.md#operator-overview: the overview reads the last count; asking for it never counts the store.</summary>
public sealed class OverviewSamplingTests : IAsyncLifetime
{
    private readonly CountingOperationalCounts _counts = new();
    private readonly GatewayFactory _gateway;

    public OverviewSamplingTests() =>
        _gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Metrics:SampleInterval"] = "01:00:00" },
            services => services.AddSingleton<IOperationalCounts>(_counts));

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Asking_for_the_overview_again_and_again_never_counts_the_store()
    {
        using var admin = _gateway.Admin();
        await Eventually.HoldsAsync(async () => (await admin.GetApiAsync("/v1/admin/overview")).Json.GetProperty("store").ValueKind == JsonValueKind.Object, "the first count", 10);

        for (var i = 0; i < 5; i++)
        {
            var overview = (await admin.GetApiAsync("/v1/admin/overview")).Json.GetProperty("store");
            overview.GetProperty("executions_active").GetProperty("pending").GetInt64().ShouldBe(5);
            overview.GetProperty("outbox").GetProperty("backlog").GetInt64().ShouldBe(2);
            overview.GetProperty("held").GetString().ShouldBe("0.001234");
        }

        _counts.Calls.ShouldBe(1);
    }
}
