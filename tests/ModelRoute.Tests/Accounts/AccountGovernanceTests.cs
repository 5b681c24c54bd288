namespace ModelRoute.Tests.Accounts;

/// <summary>docs/tenancy.md: the operator lists accounts and disables or enables them.</summary>
public sealed class AccountGovernanceTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Fact]
    public async Task Accounts_are_listed_newest_first_page_by_page_with_a_cursor()
    {
        using var admin = _gateway.Admin();
        var made = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            made.Add((await admin.PostJsonAsync("/v1/admin/accounts", $$"""{"name":"list-{{i}}"}""")).Json.GetProperty("id").GetString()!);
        }

        var first = await admin.GetApiAsync("/v1/admin/accounts?limit=2");

        first.Status.ShouldBe(200, first.Body);
        first.Json.GetProperty("object").GetString().ShouldBe("list");
        first.Json.GetProperty("has_more").GetBoolean().ShouldBeTrue();
        var page = first.Json.GetProperty("data").EnumerateArray().ToList();
        page.Select(a => a.GetProperty("id").GetString()).ShouldBe([made[2], made[1]]);
        page[0].GetProperty("status").GetString().ShouldBe("active");
        page[0].GetProperty("disabled_at").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);

        var next = await admin.GetApiAsync($"/v1/admin/accounts?limit=2&cursor={first.Json.GetProperty("next_cursor").GetString()}");
        next.Status.ShouldBe(200, next.Body);
        next.Json.GetProperty("data")[0].GetProperty("id").GetString().ShouldBe(made[0]);
    }

    [Theory]
    [InlineData("limit=0", "limit")]
    [InlineData("limit=101", "limit")]
    [InlineData("cursor=%%%", "cursor")]
    public async Task A_bad_limit_or_cursor_on_the_account_list_is_a_400(string query, string field)
    {
        using var admin = _gateway.Admin();

        var response = await admin.GetApiAsync("/v1/admin/accounts?" + query);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemField().ShouldBe(field);
    }

    [Fact]
    public async Task A_disabled_account_gets_403_ACCOUNT_DISABLED_on_every_endpoint_until_it_is_enabled()
    {
        using var account = await _gateway.CreateAccountAsync();
        var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        using var admin = _gateway.Admin();

        var disabled = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/disable", "{}");
        var again = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/disable", "{}");

        disabled.Status.ShouldBe(200, disabled.Body);
        disabled.Json.GetProperty("status").GetString().ShouldBe("disabled");
        again.Json.GetProperty("disabled_at").GetString().ShouldBe(disabled.Json.GetProperty("disabled_at").GetString());
        foreach (var (method, path) in new[]
        {
            ("GET", "/v1/balance"), ("GET", "/v1/ledger"), ("GET", "/v1/executions"), ("GET", $"/v1/executions/{id}"),
            ("GET", $"/v1/executions/{id}?wait=5"), ("GET", $"/v1/executions/{id}/events"), ("POST", "/v1/executions"),
            ("POST", $"/v1/executions/{id}/cancel"), ("GET", "/v1/api-keys"), ("POST", "/v1/api-keys"), ("GET", "/v1/models"),
            ("GET", "/v1/webhook-endpoints"), ("GET", "/v1/admin/accounts"),
        })
        {
            var refused = await account.Client.SendJsonAsync(new HttpMethod(method), path, method == "POST" ? "{}" : null);
            refused.Status.ShouldBe(403, $"{method} {path}: {refused.Body}");
            refused.ProblemCode.ShouldBe("ACCOUNT_DISABLED");
        }

        var enabled = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/enable", "{}");
        enabled.Status.ShouldBe(200, enabled.Body);
        enabled.Json.GetProperty("status").GetString().ShouldBe("active");
        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/enable", "{}")).Status.ShouldBe(200);
        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
    }

    [Fact]
    public async Task An_execution_running_when_its_account_is_disabled_still_completes_and_settles()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":1500}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "PROCESSING");
        using var admin = _gateway.Admin();

        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/disable", "{}")).Status.ShouldBe(200);
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).ProblemCode.ShouldBe("ACCOUNT_DISABLED");

        // Settled while disabled: nothing held any more, and the charge taken from the balance.
        await Eventually.HoldsAsync(
            async () => (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json.GetProperty("held").GetString() == "0.000000",
            "the running execution settled while its account was disabled");
        var shown = (await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}")).Json;
        HttpExtensions.Micros(shown.GetProperty("balance")).ShouldBeLessThan(10_000_000);
        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/enable", "{}")).Status.ShouldBe(200);
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("COMPLETED");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Disabling_or_enabling_an_unknown_account_is_a_404()
    {
        using var admin = _gateway.Admin();

        (await admin.PostJsonAsync("/v1/admin/accounts/acct_nope/disable", "{}")).Status.ShouldBe(404);
        (await admin.PostJsonAsync("/v1/admin/accounts/acct_nope/enable", "{}")).Status.ShouldBe(404);
        (await admin.GetApiAsync("/v1/admin/accounts/acct_nope/api-keys")).Status.ShouldBe(404);
    }
}
