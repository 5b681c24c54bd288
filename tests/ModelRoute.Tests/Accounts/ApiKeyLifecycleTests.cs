using Dapper;
using ModelRoute.Server.Accounts;

namespace ModelRoute.Tests.Accounts;

/// <summary>docs/tenancy.md: API keys are listed, created with an expiry and a spending limit, and revoked.</summary>
public sealed class ApiKeyLifecycleTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Fact]
    public async Task A_key_made_by_an_account_shows_its_secret_once_and_works_at_once()
    {
        using var account = await _gateway.CreateAccountAsync();

        var created = await account.Client.PostJsonAsync("/v1/api-keys", """{"name":"ci","max_spend_usd":"25.50"}""");

        created.Status.ShouldBe(201, created.Body);
        var keyId = created.Json.GetProperty("id").GetString()!;
        keyId.ShouldStartWith("key_");
        created.Header("Location").ShouldBe($"/v1/api-keys/{keyId}");
        created.Json.GetProperty("object").GetString().ShouldBe("api_key");
        created.Json.GetProperty("name").GetString().ShouldBe("ci");
        created.Json.GetProperty("max_spend_usd").GetString().ShouldBe("25.500000");
        created.Json.GetProperty("spent").GetString().ShouldBe("0.000000");
        created.Json.GetProperty("held").GetString().ShouldBe("0.000000");
        created.Json.GetProperty("last_used_at").ValueKind.ShouldBe(JsonValueKind.Null);
        created.Json.GetProperty("revoked_at").ValueKind.ShouldBe(JsonValueKind.Null);
        var secret = created.Json.GetProperty("key").GetString()!;
        secret.ShouldStartWith("mr_");
        secret.ShouldStartWith(created.Json.GetProperty("prefix").GetString()!.TrimEnd('…'));
        using var withNew = _gateway.WithBearer(secret);
        (await withNew.GetApiAsync("/v1/balance")).Status.ShouldBe(200);

        var listed = await account.Client.GetApiAsync("/v1/api-keys");
        listed.Status.ShouldBe(200, listed.Body);
        listed.Body.ShouldNotContain(secret);
        listed.Body.ShouldNotContain(ApiKeys.Hash(secret));
        var keys = listed.Json.GetProperty("data").EnumerateArray().ToList();
        keys.Count.ShouldBe(2);
        keys[0].GetProperty("id").GetString().ShouldBe(keyId);
        keys.Any(k => k.TryGetProperty("key", out _)).ShouldBeFalse();
        keys[1].GetProperty("max_spend_usd").ValueKind.ShouldBe(JsonValueKind.Null);
        keys[1].GetProperty("held").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task The_operator_lists_and_creates_an_accounts_keys_with_the_same_body()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();

        var created = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", """{"name":"ops","expires_at":"2099-01-01T00:00:00Z"}""");
        var listed = await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}/api-keys?limit=1");

        created.Status.ShouldBe(201, created.Body);
        created.Json.GetProperty("expires_at").GetString().ShouldBe("2099-01-01T00:00:00.000Z");
        created.Json.GetProperty("account_id").GetString().ShouldBe(account.Id);
        listed.Status.ShouldBe(200, listed.Body);
        listed.Json.GetProperty("has_more").GetBoolean().ShouldBeTrue();
        listed.Json.GetProperty("data")[0].GetProperty("id").GetString().ShouldBe(created.Json.GetProperty("id").GetString());
    }

    [Fact]
    public async Task A_revoked_key_is_refused_with_401_and_revoking_again_answers_the_same_key()
    {
        using var account = await _gateway.CreateAccountAsync();
        var other = await account.Client.PostJsonAsync("/v1/api-keys", """{"name":"to-revoke"}""");
        var keyId = other.Json.GetProperty("id").GetString()!;
        using var withOther = _gateway.WithBearer(other.Json.GetProperty("key").GetString()!);
        (await withOther.GetApiAsync("/v1/balance")).Status.ShouldBe(200); // Cached now.

        var revoked = await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{keyId}", null);
        var again = await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{keyId}", null);

        revoked.Status.ShouldBe(200, revoked.Body);
        revoked.Json.GetProperty("revoked_at").GetString().ShouldNotBeNull();
        again.Status.ShouldBe(200, again.Body);
        again.Json.GetProperty("revoked_at").GetString().ShouldBe(revoked.Json.GetProperty("revoked_at").GetString());
        var refused = await withOther.GetApiAsync("/v1/balance");
        refused.Status.ShouldBe(401, refused.Body);
        refused.ProblemCode.ShouldBe("UNAUTHENTICATED");
        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
    }

    [Fact]
    public async Task A_key_may_revoke_itself_and_is_refused_from_the_next_request()
    {
        using var account = await _gateway.CreateAccountAsync();
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;

        (await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{keyId}", null)).Status.ShouldBe(200);

        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(401);
    }

    [Fact]
    public async Task Another_accounts_key_id_is_a_404_and_stays_usable()
    {
        using var mine = await _gateway.CreateAccountAsync();
        using var theirs = await _gateway.CreateAccountAsync();
        var theirKey = (await theirs.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        using var admin = _gateway.Admin();

        var own = await mine.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{theirKey}", null);
        var viaAdmin = await admin.SendJsonAsync(HttpMethod.Delete, $"/v1/admin/accounts/{mine.Id}/api-keys/{theirKey}", null);

        own.Status.ShouldBe(404, own.Body);
        own.ProblemCode.ShouldBe("NOT_FOUND");
        viaAdmin.Status.ShouldBe(404, viaAdmin.Body);
        (await theirs.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
    }

    [Fact]
    public async Task The_operator_revokes_an_accounts_key()
    {
        using var account = await _gateway.CreateAccountAsync();
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        using var admin = _gateway.Admin();

        var revoked = await admin.SendJsonAsync(HttpMethod.Delete, $"/v1/admin/accounts/{account.Id}/api-keys/{keyId}", null);

        revoked.Status.ShouldBe(200, revoked.Body);
        (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(401);
    }

    [Fact]
    public async Task A_key_past_its_expiry_is_refused_with_401()
    {
        using var account = await _gateway.CreateAccountAsync();
        var expiresAt = DateTimeOffset.UtcNow.AddSeconds(2);
        var created = await account.Client.PostJsonAsync("/v1/api-keys", $$"""{"expires_at":"{{expiresAt:yyyy-MM-ddTHH:mm:ss.fffZ}}"}""");
        created.Status.ShouldBe(201, created.Body);
        using var expiring = _gateway.WithBearer(created.Json.GetProperty("key").GetString()!);
        (await expiring.GetApiAsync("/v1/balance")).Status.ShouldBe(200);

        await Task.Delay(expiresAt - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(100));

        var refused = await expiring.GetApiAsync("/v1/balance");
        refused.Status.ShouldBe(401, refused.Body);
        refused.Json.GetProperty("detail").GetString()!.ShouldContain("expired");
    }

    [Theory]
    [InlineData("""{"name":"a","nmae":"b"}""", "nmae")]
    [InlineData("""{"name":"a","name":"b"}""", "name")]
    [InlineData("""{"max_spend_usd":"1.00","max_spend_usd":"999999"}""", "max_spend_usd")]
    [InlineData("""{"name":42}""", "name")]
    [InlineData("""{"expires_at":"2001-01-01T00:00:00Z"}""", "expires_at")]
    [InlineData("""{"expires_at":"next tuesday"}""", "expires_at")]
    [InlineData("""{"expires_at":1893456000}""", "expires_at")]
    [InlineData("""{"max_spend_usd":"-1"}""", "max_spend_usd")]
    [InlineData("""{"max_spend_usd":"0"}""", "max_spend_usd")]
    [InlineData("""{"max_spend_usd":"1.0000001"}""", "max_spend_usd")]
    [InlineData("""{"max_spend_usd":"1e3"}""", "max_spend_usd")]
    [InlineData("""{"max_spend_usd":true}""", "max_spend_usd")]
    [InlineData("""{"max_spend_usd":"1000000.01"}""", "max_spend_usd")]
    [InlineData("""["ci"]""", "body")]
    [InlineData("""{"name":"ci""", "body")]
    public async Task A_bad_key_body_is_a_400_naming_the_field_and_creates_no_key(string body, string field)
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();
        var before = await _gateway.CountRowsAsync("api_keys");

        var own = await account.Client.PostJsonAsync("/v1/api-keys", body);
        var viaAdmin = await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/api-keys", body);

        foreach (var response in new[] { own, viaAdmin })
        {
            response.Status.ShouldBe(400, response.Body);
            response.ProblemCode.ShouldBe("VALIDATION_ERROR");
            response.ProblemField().ShouldBe(field);
        }

        (await _gateway.CountRowsAsync("api_keys")).ShouldBe(before);
    }

    [Fact]
    public async Task Last_use_is_kept_in_memory_and_written_in_one_batch_not_per_request()
    {
        using var account = await _gateway.CreateAccountAsync();
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;
        var usage = _gateway.Services.GetRequiredService<ApiKeyUsage>();
        await usage.FlushAsync(CancellationToken.None); // What the setup's requests noted.
        await using (var connection = _gateway.OpenStoreConnection())
        {
            await connection.ExecuteAsync("UPDATE api_keys SET last_used_at = NULL WHERE id = @keyId", new { keyId });
        }

        for (var i = 0; i < 20; i++)
        {
            (await account.Client.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
        }

        await using (var connection = _gateway.OpenStoreConnection())
        {
            (await connection.ExecuteScalarAsync<long?>("SELECT last_used_at FROM api_keys WHERE id = @keyId", new { keyId })).ShouldBeNull();
        }

        await usage.FlushAsync(CancellationToken.None);

        var shown = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0];
        var lastUsed = DateTimeOffset.Parse(shown.GetProperty("last_used_at").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        lastUsed.ShouldBeInRange(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
    }
}
