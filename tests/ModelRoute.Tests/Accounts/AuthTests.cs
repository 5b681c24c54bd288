namespace ModelRoute.Tests.Accounts;

/// <summary>docs/api.md#concepts, docs/api.md#endpoints: bearer API keys, the operator's admin key, and tenants that never see each other.</summary>
public sealed class AuthTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Theory]
    [InlineData("GET", "/v1/balance")]
    [InlineData("GET", "/v1/ledger")]
    [InlineData("GET", "/v1/models")]
    [InlineData("GET", "/v1/executions")]
    [InlineData("POST", "/v1/executions")]
    [InlineData("POST", "/v1/executions/batch")]
    [InlineData("GET", "/v1/executions/exe_0000000000000000000000")]
    [InlineData("POST", "/v1/executions/exe_0000000000000000000000/cancel")]
    [InlineData("GET", "/v1/executions/exe_0000000000000000000000/events")]
    [InlineData("GET", "/v1/executions/exe_0000000000000000000000/artifacts/output-0.png")]
    [InlineData("POST", "/v1/admin/accounts")]
    [InlineData("GET", "/v1/admin/accounts/acct_0000000000000000000000")]
    [InlineData("POST", "/v1/admin/accounts/acct_0000000000000000000000/api-keys")]
    [InlineData("POST", "/v1/admin/accounts/acct_0000000000000000000000/credits")]
    public async Task No_authorization_header_is_a_401_unauthenticated_with_a_bearer_challenge(string method, string path)
    {
        using var client = _gateway.Anonymous();
        var accountsBefore = await _gateway.CountRowsAsync("accounts");
        var executionsBefore = await _gateway.CountRowsAsync("executions");

        var response = await client.SendRawAsync(
            new HttpMethod(method), path, method == "POST" ? RequestExtensions.Json(ValidSubmission()) : null);

        response.Status.ShouldBe(401, response.Body);
        response.ProblemCode.ShouldBe("UNAUTHENTICATED");
        response.Message.Headers.WwwAuthenticate.ToString().ShouldBe("Bearer");
        (await _gateway.CountRowsAsync("accounts")).ShouldBe(accountsBefore);
        (await _gateway.CountRowsAsync("executions")).ShouldBe(executionsBefore);
    }

    [Theory]
    [InlineData("Bearer mr_xxx")]
    [InlineData("Bearer mr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("Bearer sk-0123456789abcdef")]
    [InlineData("Bearer 7f3c9a0e-2b1d-4c55-9d1e-8a6b2f4e0c11")]
    [InlineData("Bearer ")]
    [InlineData("Bearer")]
    [InlineData("Basic abc")]
    [InlineData("Basic dGVzdC1hZG1pbi1rZXktMDEyMzQ1Njc4OTo=")]
    [InlineData("Token mr_xxx")]
    [InlineData("mr_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("Bearer test-admin-key-012345678")]
    [InlineData("Bearer TEST-ADMIN-KEY-0123456789")]
    [InlineData("Bearer test-admin-key-0123456789abcdefghij extra")]
    public async Task A_malformed_or_unknown_key_is_a_401(string authorization)
    {
        using var client = _gateway.Anonymous();

        foreach (var path in new[] { "/v1/balance", "/v1/admin/accounts/acct_0000000000000000000000" })
        {
            var response = await client.SendRawAsync(HttpMethod.Get, path, authorization: authorization);

            response.Status.ShouldBe(401, $"{path}: {response.Body}");
            response.ProblemCode.ShouldBe("UNAUTHENTICATED");
            response.Message.Headers.WwwAuthenticate.ToString().ShouldBe("Bearer");
        }
    }

    [Fact]
    public async Task A_near_miss_of_a_real_key_is_a_401_and_the_token_is_never_echoed()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var client = _gateway.Anonymous();
        string[] nearMisses =
        [
            "Bearer " + account.Key + "x",
            "Bearer " + account.Key[..^1],
            "Bearer " + account.Key.ToUpperInvariant(),
            "Bearer " + account.Key.Replace("mr_", "MR_", StringComparison.Ordinal),
            "Basic " + account.Key,
            account.Key,
        ];

        foreach (var authorization in nearMisses)
        {
            var response = await client.SendRawAsync(HttpMethod.Get, "/v1/balance", authorization: authorization);

            response.Status.ShouldBe(401, authorization);
            response.ProblemCode.ShouldBe("UNAUTHENTICATED");
            response.Body.ShouldNotContain(account.Key[3..12]);
        }

        // The real key, with the scheme in any case, works.
        (await client.SendRawAsync(HttpMethod.Get, "/v1/balance", authorization: "Bearer " + account.Key)).Status.ShouldBe(200);
        (await client.SendRawAsync(HttpMethod.Get, "/v1/balance", authorization: "bearer " + account.Key)).Status.ShouldBe(200);
    }

    [Fact]
    public async Task An_account_key_on_admin_endpoints_is_a_403_forbidden_and_changes_nothing()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var accountsBefore = await _gateway.CountRowsAsync("accounts");
        var keysBefore = await _gateway.CountRowsAsync("api_keys");

        var responses = new[]
        {
            await account.Client.PostJsonAsync("/v1/admin/accounts", """{"name":"sneaky"}"""),
            await account.Client.GetApiAsync($"/v1/admin/accounts/{account.Id}"),
            await account.Client.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", "{}"),
            await account.Client.PostJsonAsync($"/v1/admin/accounts/{account.Id}/credits", """{"amount_usd":"1000.00","reference":"free-money"}"""),
        };

        foreach (var response in responses)
        {
            response.Status.ShouldBe(403, response.Body);
            response.ProblemCode.ShouldBe("FORBIDDEN");
        }

        (await _gateway.CountRowsAsync("accounts")).ShouldBe(accountsBefore);
        (await _gateway.CountRowsAsync("api_keys")).ShouldBe(keysBefore);
        (await account.Client.BalanceAsync()).Balance.ShouldBe(10_000_000);
        (await account.Client.LedgerAsync()).Count.ShouldBe(1);
    }

    [Theory]
    [InlineData("GET", "/v1/balance")]
    [InlineData("GET", "/v1/ledger")]
    [InlineData("GET", "/v1/executions")]
    [InlineData("POST", "/v1/executions")]
    [InlineData("GET", "/v1/executions/exe_0000000000000000000000")]
    public async Task The_admin_key_is_not_an_account_and_gets_403_on_account_endpoints(string method, string path)
    {
        using var admin = _gateway.Admin();
        var executionsBefore = await _gateway.CountRowsAsync("executions");

        var response = await admin.SendRawAsync(new HttpMethod(method), path, method == "POST" ? RequestExtensions.Json(ValidSubmission()) : null);

        response.Status.ShouldBe(403, response.Body);
        response.ProblemCode.ShouldBe("FORBIDDEN");
        (await _gateway.CountRowsAsync("executions")).ShouldBe(executionsBefore);
    }

    [Fact]
    public async Task The_403_for_the_admin_key_on_an_account_endpoint_does_not_claim_the_admin_key_is_needed()
    {
        using var admin = _gateway.Admin();

        var response = await admin.GetApiAsync("/v1/balance");

        response.Status.ShouldBe(403, response.Body);
        // The caller already holds the admin key; what this endpoint needs is an account's API key.
        response.Json.GetProperty("detail").GetString()!.ShouldNotContain("needs the admin key");
    }

    [Fact]
    public async Task Another_accounts_execution_is_404_not_found_on_get_cancel_events_and_wait_never_403()
    {
        using var owner = await _gateway.CreateAccountAsync();
        using var other = await _gateway.CreateAccountAsync();
        var id = (await owner.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""")).Json.GetProperty("id").GetString()!;
        var missing = await other.Client.GetApiAsync("/v1/executions/exe_0000000000000000000000");
        missing.Status.ShouldBe(404);

        var responses = new[]
        {
            await other.Client.GetApiAsync($"/v1/executions/{id}"),
            await other.Client.GetApiAsync($"/v1/executions/{id}?wait=1"),
            await other.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}"),
            await other.Client.SendRawAsync(HttpMethod.Post, $"/v1/executions/{id}/cancel"),
            await other.Client.GetApiAsync($"/v1/executions/{id}/events"),
            await other.Client.GetApiAsync($"/v1/executions/{id}/artifacts/output-0.png"),
        };

        foreach (var response in responses)
        {
            response.Status.ShouldBe(404, response.Body);
            response.ProblemCode.ShouldBe("NOT_FOUND");
            response.Body.ShouldNotContain(id);
        }

        // Indistinguishable from an id that does not exist.
        responses[0].Json.GetProperty("detail").GetString().ShouldBe(missing.Json.GetProperty("detail").GetString());
        (await other.Client.ExecutionsAsync()).ShouldBeEmpty();

        // The other account's cancel changed nothing; the owner can still cancel it.
        var mine = await owner.Client.GetApiAsync($"/v1/executions/{id}");
        mine.Json.GetProperty("status").GetString().ShouldBeOneOf("PENDING", "PROCESSING");
        (await owner.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);
        (await other.Client.BalanceAsync()).Held.ShouldBe(0);
    }

    [Fact]
    public async Task Another_accounts_artifact_is_404_while_the_owner_downloads_it()
    {
        using var owner = await _gateway.CreateAccountAsync();
        using var other = await _gateway.CreateAccountAsync();
        var id = (await owner.Client.SubmitAsync("sim/image", """{"prompt":"a lighthouse","simulate":{"latency_ms":10}}""")).Json.GetProperty("id").GetString()!;
        var done = await owner.Client.WaitForTerminalAsync(id);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var url = done.GetProperty("artifacts")[0].GetProperty("url").GetString()!;

        (await owner.Client.GetAsync(url)).StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        var stolen = await other.Client.GetApiAsync(url);

        stolen.Status.ShouldBe(404, stolen.Body);
        stolen.ProblemCode.ShouldBe("NOT_FOUND");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public async Task With_no_admin_key_configured_admin_endpoints_answer_401_or_403_and_create_nothing(string? adminKey)
    {
        var directory = TestPaths.NewTempDirectory("shared-store");
        var (store, dropStore) = await TestStore.SharedAsync(directory);
        try
        {
            string accountId, accountKey;
            await using (var setup = new GatewayFactory(store))
            {
                using var account = await setup.CreateAccountAsync("10.00");
                (accountId, accountKey) = (account.Id, account.Key);
            }

            await using var gateway = new GatewayFactory(new Dictionary<string, string?>(store) { ["ModelRoute:AdminKey"] = adminKey });
            using var formerAdmin = gateway.Admin();
            using var emptyBearer = gateway.WithBearer("");
            using var anonymous = gateway.Anonymous();
            using var accountClient = gateway.WithBearer(accountKey);

            foreach (var client in new[] { formerAdmin, emptyBearer, anonymous })
            {
                var create = await client.PostJsonAsync("/v1/admin/accounts", """{"name":"x"}""");
                create.Status.ShouldBe(401, create.Body);
                create.ProblemCode.ShouldBe("UNAUTHENTICATED");
                var credit = await client.PostJsonAsync($"/v1/admin/accounts/{accountId}/credits", """{"amount_usd":"5.00"}""");
                credit.Status.ShouldBe(401, credit.Body);
                var key = await client.PostJsonAsync($"/v1/admin/accounts/{accountId}/api-keys", "{}");
                key.Status.ShouldBe(401, key.Body);
                (await client.GetApiAsync($"/v1/admin/accounts/{accountId}")).Status.ShouldBe(401);
            }

            foreach (var response in new[]
            {
                await accountClient.PostJsonAsync("/v1/admin/accounts", """{"name":"x"}"""),
                await accountClient.PostJsonAsync($"/v1/admin/accounts/{accountId}/credits", """{"amount_usd":"5.00"}"""),
                await accountClient.PostJsonAsync($"/v1/admin/accounts/{accountId}/api-keys", "{}"),
                await accountClient.GetApiAsync($"/v1/admin/accounts/{accountId}"),
            })
            {
                response.Status.ShouldBe(403, response.Body);
                response.ProblemCode.ShouldBe("FORBIDDEN");
            }

            (await gateway.CountRowsAsync("accounts")).ShouldBe(1);
            (await gateway.CountRowsAsync("api_keys")).ShouldBe(1);
            (await gateway.CountRowsAsync("ledger_entries")).ShouldBe(1);
            (await accountClient.BalanceAsync()).Balance.ShouldBe(10_000_000);
        }
        finally
        {
            await dropStore();
            TestPaths.TryDelete(directory);
        }
    }

    [Fact]
    public async Task An_api_key_is_shown_once_at_creation_and_stored_only_as_a_hash()
    {
        using var admin = _gateway.Admin();
        var account = await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"acme"}""");
        var accountId = account.Json.GetProperty("id").GetString()!;

        var created = await admin.PostJsonAsync($"/v1/admin/accounts/{accountId}/api-keys", """{"name":"ci"}""");

        created.Status.ShouldBe(201, created.Body);
        var key = created.Json.GetProperty("key").GetString()!;
        key.ShouldStartWith("mr_");
        key.Length.ShouldBeGreaterThanOrEqualTo(3 + 32);
        created.Json.GetProperty("object").GetString().ShouldBe("api_key");
        created.Json.GetProperty("account_id").GetString().ShouldBe(accountId);
        created.Json.GetProperty("name").GetString().ShouldBe("ci");
        var keyId = created.Json.GetProperty("id").GetString()!;
        created.Header("Location").ShouldBe($"/v1/admin/accounts/{accountId}/api-keys/{keyId}");
        var prefix = created.Json.GetProperty("prefix").GetString()!;
        key.ShouldStartWith(prefix.TrimEnd('…'));
        prefix.Length.ShouldBeLessThan(key.Length / 2);

        var secretPart = key[prefix.TrimEnd('…').Length..];
        var shown = await admin.GetApiAsync($"/v1/admin/accounts/{accountId}");
        shown.Status.ShouldBe(200);
        shown.Body.ShouldNotContain(key);
        shown.Body.ShouldNotContain(secretPart);

        var stored = await _gateway.DumpTableAsync("api_keys");
        stored.ShouldNotBeEmpty();
        stored.ShouldAllBe(value => !value.Contains(secretPart));

        using var client = _gateway.WithBearer(key);
        (await client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
    }

    [Fact]
    public async Task Each_key_is_new_and_every_key_of_an_account_sees_the_same_account()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();
        var second = (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        second.ShouldNotBe(account.Key);
        var id = (await account.Client.SubmitTextAsync()).Json.GetProperty("id").GetString()!;
        (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");

        using var client = _gateway.WithBearer(second);
        var seen = await client.GetApiAsync($"/v1/executions/{id}");

        seen.Status.ShouldBe(200, seen.Body);
        (await client.BalanceAsync()).ShouldBe(await account.Client.BalanceAsync());
    }

    private static string ValidSubmission() =>
        $$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"hello"}]},"idempotency_key":"{{Guid.NewGuid()}}"}""";
}
