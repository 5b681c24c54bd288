namespace ModelRoute.Tests.Accounts;

/// <summary>The operator's cap on an account's executions in flight: <c>PATCH /v1/admin/accounts/{id}</c>.</summary>
public sealed class AccountLimitTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Fact]
    public async Task Setting_and_removing_a_cap_shows_on_the_account()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();

        (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("max_concurrency").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
        var set = await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":7}""");
        set.Status.ShouldBe(200, set.Body);
        set.Json.GetProperty("max_concurrency").GetInt32().ShouldBe(7);
        set.Json.GetProperty("id").GetString().ShouldBe(account.Id);
        (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("max_concurrency").GetInt32().ShouldBe(7);

        var removed = await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":null}""");
        removed.Status.ShouldBe(200, removed.Body);
        removed.Json.GetProperty("max_concurrency").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
    }

    [Theory]
    [InlineData("""{}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":0}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":-1}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":1.5}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":2.0}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":1e2}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":"3"}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":true}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":1000001}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":99999999999999999999}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":3,"max_concurrency":null}""", "max_concurrency")]
    [InlineData("""{"max_concurrency":3,"name":"x"}""", "name")]
    [InlineData("""[3]""", "body")]
    [InlineData("""3""", "body")]
    public async Task A_bad_body_is_refused_with_a_problem_and_changes_nothing(string body, string field)
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();
        (await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":5}""")).Status.ShouldBe(200);

        var refused = await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", body);

        refused.Status.ShouldBe(400, refused.Body);
        refused.ProblemCode.ShouldBe("VALIDATION_ERROR");
        refused.ProblemField().ShouldBe(field);
        (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("max_concurrency").GetInt32().ShouldBe(5);
    }

    [Fact]
    public async Task Malformed_JSON_and_an_empty_body_are_refused_with_400()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();

        (await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":""")).Status.ShouldBe(400);
        (await admin.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", "")).Status.ShouldBe(400);
    }

    [Fact]
    public async Task An_unknown_account_is_404()
    {
        using var admin = _gateway.Admin();

        var missing = await admin.SendJsonAsync(HttpMethod.Patch, "/v1/admin/accounts/acct_nope", """{"max_concurrency":3}""");

        missing.Status.ShouldBe(404, missing.Body);
        missing.ProblemCode.ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task Only_the_operator_may_set_a_cap()
    {
        using var account = await _gateway.CreateAccountAsync();

        var refused = await account.Client.SendJsonAsync(HttpMethod.Patch, $"/v1/admin/accounts/{account.Id}", """{"max_concurrency":1000}""");

        refused.Status.ShouldBeOneOf(401, 403);
        using var admin = _gateway.Admin();
        (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("max_concurrency").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
    }
}
