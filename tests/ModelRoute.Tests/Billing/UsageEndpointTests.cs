using System.Globalization;
using Dapper;

namespace ModelRoute.Tests.Billing;

/// <summary>docs/api.md#usage: usage by model, UTC day, key and account, from the totals kept at settlement.</summary>
public sealed class UsageEndpointTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    private static string Today => DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static async Task<string> EndedAsync(HttpClient client, string simulate = "{}", string status = "COMPLETED")
    {
        var submitted = await client.SubmitTextAsync(simulate: simulate);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        (await client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe(status);
        return id;
    }

    private static async Task<long> LedgerChargesAsync(HttpClient client) =>
        (await client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "charge").Sum(e => HttpExtensions.Micros(e.GetProperty("amount")));

    private static JsonElement Row(ApiResponse usage, string member, string? value) =>
        usage.Json.GetProperty("data").EnumerateArray().Single(r => r.GetProperty(member).GetString() == value);

    [Fact]
    public async Task An_account_sees_its_endings_by_model_day_and_key_and_what_they_were_charged_matches_its_ledger()
    {
        using var account = await _gateway.CreateAccountAsync();
        var made = await account.Client.PostJsonAsync("/v1/api-keys", """{"name":"second"}""");
        made.Status.ShouldBe(201, made.Body);
        using var second = _gateway.WithBearer(made.Json.GetProperty("key").GetString()!);
        var firstKey = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data").EnumerateArray()
            .Select(k => k.GetProperty("id").GetString()).Single(id => id != made.Json.GetProperty("id").GetString());

        await EndedAsync(account.Client);
        await EndedAsync(account.Client, """{"usage":{"input_tokens":2000000,"output_tokens":5000000}}"""); // charged its hold only
        await EndedAsync(account.Client, """{"fail":"content_policy"}""", "FAILED");
        await EndedAsync(second);
        var slow = (await second.SubmitTextAsync(simulate: """{"latency_ms":20000}""")).Json.GetProperty("id").GetString()!;
        (await second.PostJsonAsync($"/v1/executions/{slow}/cancel", "{}")).Status.ShouldBe(202);

        var byModel = await account.Client.GetApiAsync("/v1/usage?group_by=model");
        var byKey = await account.Client.GetApiAsync("/v1/usage?group_by=key");
        var byDay = await account.Client.GetApiAsync("/v1/usage");

        byModel.Status.ShouldBe(200, byModel.Body);
        byModel.Json.GetProperty("object").GetString().ShouldBe("usage");
        byModel.Json.GetProperty("account_id").GetString().ShouldBe(account.Id);
        byModel.Json.GetProperty("currency").GetString().ShouldBe("usd");
        var text = Row(byModel, "model", "sim/text");
        text.EnumerateObject().Select(p => p.Name).ShouldBe(["model", "executions", "completed", "failed", "cancelled", "expired", "charged", "overage"]);
        (text.GetProperty("executions").GetInt64(), text.GetProperty("completed").GetInt64(), text.GetProperty("failed").GetInt64(),
            text.GetProperty("cancelled").GetInt64(), text.GetProperty("expired").GetInt64()).ShouldBe((5L, 3L, 1L, 1L, 0L));
        var charged = await LedgerChargesAsync(account.Client);
        charged.ShouldBeGreaterThan(0);
        HttpExtensions.Micros(text.GetProperty("charged")).ShouldBe(charged);
        HttpExtensions.Micros(text.GetProperty("overage")).ShouldBeGreaterThan(0);
        HttpExtensions.Micros(byModel.Json.GetProperty("totals").GetProperty("charged")).ShouldBe(charged);
        Row(byKey, "api_key_id", firstKey).GetProperty("executions").GetInt64().ShouldBe(3);
        Row(byKey, "api_key_id", made.Json.GetProperty("id").GetString()).GetProperty("cancelled").GetInt64().ShouldBe(1);

        // By day by default, over the last 30 UTC days, today included and every day present.
        byDay.Json.GetProperty("group_by").GetString().ShouldBe("day");
        byDay.Json.GetProperty("data").GetArrayLength().ShouldBe(30);
        byDay.Json.GetProperty("data")[29].GetProperty("day").GetString().ShouldBe(Today);
        byDay.Json.GetProperty("data")[29].GetProperty("executions").GetInt64().ShouldBe(5);
        byDay.Json.GetProperty("data")[0].GetProperty("executions").GetInt64().ShouldBe(0);
        byDay.Json.GetProperty("to").GetString().ShouldBe(DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Endings_settled_in_parallel_add_up_to_exactly_what_the_ledger_charged()
    {
        using var account = await _gateway.CreateAccountAsync("100.00");

        var ids = await Task.WhenAll(Enumerable.Range(0, 30).Select(i =>
            EndedAsync(account.Client, "{\"usage\":{\"input_tokens\":" + (i * 1_003) + ",\"output_tokens\":" + (i * 517) + "}}")));

        var usage = await account.Client.GetApiAsync("/v1/usage?group_by=model");
        usage.Status.ShouldBe(200, usage.Body);
        ids.Distinct().Count().ShouldBe(30);
        usage.Json.GetProperty("totals").GetProperty("executions").GetInt64().ShouldBe(30);
        usage.Json.GetProperty("totals").GetProperty("completed").GetInt64().ShouldBe(30);
        HttpExtensions.Micros(usage.Json.GetProperty("totals").GetProperty("charged")).ShouldBe(await LedgerChargesAsync(account.Client));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task One_account_never_sees_another_accounts_usage_and_the_operator_sees_each()
    {
        using var mine = await _gateway.CreateAccountAsync();
        using var theirs = await _gateway.CreateAccountAsync();
        await EndedAsync(mine.Client);
        await EndedAsync(theirs.Client);
        await EndedAsync(theirs.Client, """{"fail":"content_policy"}""", "FAILED");
        using var admin = _gateway.Admin();

        var own = await mine.Client.GetApiAsync("/v1/usage?group_by=key");
        var everyone = await admin.GetApiAsync("/v1/admin/usage?group_by=account");
        var one = await admin.GetApiAsync($"/v1/admin/usage?group_by=model&account_id={theirs.Id}");

        own.Json.GetProperty("totals").GetProperty("executions").GetInt64().ShouldBe(1);
        own.Body.ShouldNotContain(theirs.Id);
        (await theirs.Client.GetApiAsync("/v1/usage")).Json.GetProperty("totals").GetProperty("executions").GetInt64().ShouldBe(2);
        everyone.Status.ShouldBe(200, everyone.Body);
        everyone.Json.GetProperty("account_id").ValueKind.ShouldBe(JsonValueKind.Null);
        Row(everyone, "account_id", mine.Id).GetProperty("executions").GetInt64().ShouldBe(1);
        Row(everyone, "account_id", theirs.Id).GetProperty("failed").GetInt64().ShouldBe(1);
        one.Json.GetProperty("account_id").GetString().ShouldBe(theirs.Id);
        Row(one, "model", "sim/text").GetProperty("executions").GetInt64().ShouldBe(2);
        (await admin.GetApiAsync("/v1/admin/usage?account_id=acct_nope")).Status.ShouldBe(404);
        (await mine.Client.GetApiAsync("/v1/admin/usage")).Status.ShouldBe(403);
        using var anonymous = _gateway.Anonymous();
        (await anonymous.GetApiAsync("/v1/usage")).Status.ShouldBe(401);
    }

    [Fact]
    public async Task The_usage_endpoints_are_in_the_openapi_document_with_their_operation_ids()
    {
        using var client = _gateway.Anonymous();

        var response = await client.GetApiAsync("/openapi/v1.json");

        response.Status.ShouldBe(200, response.Body);
        var paths = response.Json.GetProperty("paths");
        paths.GetProperty("/v1/usage").GetProperty("get").GetProperty("operationId").GetString().ShouldBe("getUsage");
        paths.GetProperty("/v1/admin/usage").GetProperty("get").GetProperty("operationId").GetString().ShouldBe("getAdminUsage");
    }

    [Fact]
    public async Task Times_widen_the_range_to_the_whole_UTC_days_they_fall_in()
    {
        using var account = await _gateway.CreateAccountAsync();
        await EndedAsync(account.Client);

        var usage = await account.Client.GetApiAsync($"/v1/usage?from={Today}T10:00:00Z&to={Today}T10:00:00.001Z&group_by=day");
        var before = await account.Client.GetApiAsync($"/v1/usage?to={Today}");

        usage.Status.ShouldBe(200, usage.Body);
        usage.Json.GetProperty("from").GetString().ShouldBe(Today);
        usage.Json.GetProperty("data").GetArrayLength().ShouldBe(1);
        usage.Json.GetProperty("data")[0].GetProperty("executions").GetInt64().ShouldBe(1);
        before.Json.GetProperty("totals").GetProperty("executions").GetInt64().ShouldBe(0, "'to' is exclusive");
        before.Json.GetProperty("data").GetArrayLength().ShouldBe(30);
    }

    [Theory]
    [InlineData("/v1/usage?from=yesterday", "from")]
    [InlineData("/v1/usage?from=1969-12-31", "from")]
    [InlineData("/v1/usage?from=2026-12-01T25:00:00Z", "from")]
    [InlineData("/v1/usage?to=2026-13-01", "to")]
    [InlineData("/v1/usage?to=12/01/2026", "to")]
    [InlineData("/v1/usage?from=2026-12-05&to=2026-12-01", "from")]
    [InlineData("/v1/usage?from=2026-12-01&to=2026-12-01", "from")]
    [InlineData("/v1/usage?from=2024-01-01&to=2026-01-01", "to")]
    [InlineData("/v1/usage?group_by=week", "group_by")]
    [InlineData("/v1/usage?group_by=account", "group_by")]
    [InlineData("/v1/usage?group_by=MODEL", "group_by")]
    [InlineData("/v1/usage?account_id=acct_someone", "account_id")]
    [InlineData("/v1/admin/usage?group_by=key", "group_by")]
    [InlineData("/v1/admin/usage?from=2020-01-01", "to")]
    public async Task A_bad_usage_query_is_a_400_naming_its_field(string path, string field)
    {
        using var account = await _gateway.CreateAccountAsync("0");
        using var admin = _gateway.Admin();

        var response = await (path.StartsWith("/v1/admin", StringComparison.Ordinal) ? admin : account.Client).GetApiAsync(path);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe(field);
    }

    [Fact]
    public async Task Usage_is_read_from_the_totals_alone_and_outlives_the_executions_it_counts()
    {
        using var account = await _gateway.CreateAccountAsync();
        await EndedAsync(account.Client);
        await EndedAsync(account.Client);
        var before = (await account.Client.GetApiAsync("/v1/usage?group_by=model")).Body;

        await using (var store = _gateway.OpenStoreConnection())
        {
            (await store.ExecuteAsync("DELETE FROM executions WHERE account_id = @Id", new { account.Id })).ShouldBe(2);
        }

        (await account.Client.GetApiAsync("/v1/usage?group_by=model")).Body.ShouldBe(before);
    }
}
