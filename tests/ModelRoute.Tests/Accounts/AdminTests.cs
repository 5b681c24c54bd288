using System.Text.RegularExpressions;

namespace ModelRoute.Tests.Accounts;

/// <summary>docs/api.md#endpoints: the operator's endpoints — accounts, API keys and credits.</summary>
public sealed partial class AdminTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    private readonly GatewayFactory _gateway = shared.Gateway;

    [Fact]
    public async Task Create_account_answers_201_with_location_and_an_empty_balance()
    {
        using var admin = _gateway.Admin();

        var created = await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"acme"}""");

        created.Status.ShouldBe(201, created.Body);
        var id = created.Json.GetProperty("id").GetString()!;
        id.ShouldStartWith("acct_");
        created.Header("Location").ShouldBe($"/v1/admin/accounts/{id}");
        created.Json.GetProperty("object").GetString().ShouldBe("account");
        created.Json.GetProperty("name").GetString().ShouldBe("acme");
        created.Json.GetProperty("balance").GetString().ShouldBe("0.000000");
        created.Json.GetProperty("held").GetString().ShouldBe("0.000000");
        created.Json.GetProperty("available").GetString().ShouldBe("0.000000");
    }

    [Fact]
    public async Task Create_account_without_a_body_or_with_an_empty_object_works_and_ids_differ()
    {
        using var admin = _gateway.Admin();

        var noBody = await admin.SendRawAsync(HttpMethod.Post, "/v1/admin/accounts");
        var emptyObject = await admin.PostJsonAsync("/v1/admin/accounts", "{}");

        noBody.Status.ShouldBe(201, noBody.Body);
        emptyObject.Status.ShouldBe(201, emptyObject.Body);
        noBody.Json.GetProperty("id").GetString().ShouldNotBe(emptyObject.Json.GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("""{"nmae":"acme"}""", "nmae")]
    [InlineData("""{"name":"acme","balance":"100.00"}""", "balance")]
    [InlineData("""{"name":42}""", "name")]
    [InlineData("""{"name":""}""", "name")]
    [InlineData("""{"name":"a\u0000b"}""", "name")]
    [InlineData("""{"name":"acme\u202e"}""", "name")]
    [InlineData("""["acme"]""", "body")]
    [InlineData("""{"name":"acme""", "body")]
    public async Task Create_account_with_a_bad_body_is_a_400_naming_the_field_and_creates_nothing(string body, string field)
    {
        using var admin = _gateway.Admin();
        var before = await _gateway.CountRowsAsync("accounts");

        var response = await admin.PostJsonAsync("/v1/admin/accounts", body);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe(field);
        (await _gateway.CountRowsAsync("accounts")).ShouldBe(before);
    }

    [Fact]
    public async Task Get_account_shows_balance_held_and_available_as_six_decimal_strings()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submitted = await account.Client.SubmitTextAsync(simulate: """{"latency_ms":20000}""");
        submitted.Status.ShouldBe(202);
        using var admin = _gateway.Admin();

        var shown = await admin.GetApiAsync($"/v1/admin/accounts/{account.Id}");

        shown.Status.ShouldBe(200, shown.Body);
        shown.Json.GetProperty("id").GetString().ShouldBe(account.Id);
        shown.Json.GetProperty("object").GetString().ShouldBe("account");
        foreach (var name in new[] { "balance", "held", "available" })
        {
            shown.Json.GetProperty(name).GetString()!.ShouldMatch(SixDecimals().ToString());
        }

        shown.Json.GetProperty("balance").GetString().ShouldBe("10.000000");
        shown.Json.GetProperty("held").GetString().ShouldBe("0.010000");
        shown.Json.GetProperty("available").GetString().ShouldBe("9.990000");
    }

    [Theory]
    [InlineData("acct_0000000000000000000000")]
    [InlineData("nope")]
    [InlineData("..%2F..%2Fetc")]
    public async Task Get_a_missing_account_is_404(string id)
    {
        using var admin = _gateway.Admin();

        var response = await admin.GetApiAsync($"/v1/admin/accounts/{id}");

        response.Status.ShouldBe(404, response.Body);
        response.ProblemCode.ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task Create_a_key_for_a_missing_account_is_404_and_stores_no_key()
    {
        using var admin = _gateway.Admin();
        var before = await _gateway.CountRowsAsync("api_keys");

        var response = await admin.PostJsonAsync("/v1/admin/accounts/acct_0000000000000000000000/api-keys", "{}");

        response.Status.ShouldBe(404, response.Body);
        response.ProblemCode.ShouldBe("NOT_FOUND");
        (await _gateway.CountRowsAsync("api_keys")).ShouldBe(before);
    }

    [Fact]
    public async Task Credit_answers_201_with_the_ledger_entry_and_the_new_balance()
    {
        var (admin, id, client) = await NewAccountAsync();

        var credit = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"10.00","reference":"invoice-1"}""");

        credit.Status.ShouldBe(201, credit.Body);
        credit.Json.GetProperty("object").GetString().ShouldBe("ledger_entry");
        credit.Json.GetProperty("kind").GetString().ShouldBe("credit");
        credit.Json.GetProperty("amount").GetString().ShouldBe("10.000000");
        credit.Json.GetProperty("balance").GetString().ShouldBe("10.000000");
        credit.Json.GetProperty("held").GetString().ShouldBe("0.000000");
        credit.Json.GetProperty("reference").GetString().ShouldBe("invoice-1");
        credit.Header("Location").ShouldNotBeNull();
        (await admin.GetApiAsync($"/v1/admin/accounts/{id}")).Json.GetProperty("balance").GetString().ShouldBe("10.000000");
        var ledger = await client.LedgerAsync();
        ledger.Count.ShouldBe(1);
        ledger[0].GetProperty("id").GetString().ShouldBe(credit.Json.GetProperty("id").GetString());
        ledger[0].GetProperty("reference").GetString().ShouldBe("invoice-1");
    }

    [Fact]
    public async Task Credit_amount_may_be_a_json_number_with_up_to_six_decimals()
    {
        var (admin, id, client) = await NewAccountAsync();

        var credit = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":0.000001}""");

        credit.Status.ShouldBe(201, credit.Body);
        credit.Json.GetProperty("amount").GetString().ShouldBe("0.000001");
        (await client.BalanceAsync()).Balance.ShouldBe(1);
    }

    [Fact]
    public async Task The_same_reference_again_replays_with_200_and_does_not_credit_twice()
    {
        var (admin, id, client) = await NewAccountAsync();
        var first = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"10.00","reference":"invoice-7"}""");
        first.Status.ShouldBe(201);

        var again = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"10.000000","reference":"invoice-7"}""");

        again.Status.ShouldBe(200, again.Body);
        again.Json.GetProperty("id").GetString().ShouldBe(first.Json.GetProperty("id").GetString());
        again.Json.GetProperty("amount").GetString().ShouldBe("10.000000");
        (await client.BalanceAsync()).Balance.ShouldBe(10_000_000);
        (await client.LedgerAsync()).Count.ShouldBe(1);
    }

    [Fact]
    public async Task The_same_reference_with_another_amount_is_a_422_and_changes_nothing()
    {
        var (admin, id, client) = await NewAccountAsync();
        (await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"10.00","reference":"invoice-9"}""")).Status.ShouldBe(201);

        var other = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"20.00","reference":"invoice-9"}""");

        other.Status.ShouldBe(422, other.Body);
        other.ProblemCode.ShouldBe("IDEMPOTENCY_KEY_REUSED");
        (await client.BalanceAsync()).Balance.ShouldBe(10_000_000);
        (await client.LedgerAsync()).Count.ShouldBe(1);
    }

    [Fact]
    public async Task A_reference_is_per_account_and_credits_without_one_all_count()
    {
        var (admin, first, firstClient) = await NewAccountAsync();
        var (_, second, secondClient) = await NewAccountAsync();

        (await admin.PostJsonAsync($"/v1/admin/accounts/{first}/credits", """{"amount_usd":"1.00","reference":"shared"}""")).Status.ShouldBe(201);
        (await admin.PostJsonAsync($"/v1/admin/accounts/{second}/credits", """{"amount_usd":"2.00","reference":"shared"}""")).Status.ShouldBe(201);
        (await admin.PostJsonAsync($"/v1/admin/accounts/{first}/credits", """{"amount_usd":"1.00"}""")).Status.ShouldBe(201);
        (await admin.PostJsonAsync($"/v1/admin/accounts/{first}/credits", """{"amount_usd":"1.00"}""")).Status.ShouldBe(201);

        (await firstClient.BalanceAsync()).Balance.ShouldBe(3_000_000);
        (await secondClient.BalanceAsync()).Balance.ShouldBe(2_000_000);
    }

    [Fact]
    public async Task Credit_to_a_missing_account_is_404()
    {
        using var admin = _gateway.Admin();
        var before = await _gateway.CountRowsAsync("ledger_entries");

        var response = await admin.PostJsonAsync("/v1/admin/accounts/acct_0000000000000000000000/credits", """{"amount_usd":"10.00","reference":"x"}""");

        response.Status.ShouldBe(404, response.Body);
        response.ProblemCode.ShouldBe("NOT_FOUND");
        (await _gateway.CountRowsAsync("ledger_entries")).ShouldBe(before);
    }

    [Theory]
    [InlineData("\"-1\"")]
    [InlineData("-1")]
    [InlineData("\"abc\"")]
    [InlineData("\"0\"")]
    [InlineData("0")]
    [InlineData("\"0.000000\"")]
    [InlineData("\"1.1234567\"")]
    [InlineData("1.1234567")]
    [InlineData("\"\"")]
    [InlineData("\" 1\"")]
    [InlineData("\"1.\"")]
    [InlineData("\".5\"")]
    [InlineData("\"1e3\"")]
    [InlineData("1e3")]
    [InlineData("\"0x10\"")]
    [InlineData("\"1,00\"")]
    [InlineData("\"+1\"")]
    [InlineData("\"NaN\"")]
    [InlineData("\"1000000.000001\"")]
    [InlineData("\"99999999999999999999\"")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("[\"10.00\"]")]
    [InlineData("{\"usd\":\"10.00\"}")]
    public async Task A_bad_amount_is_a_400_on_amount_usd_and_credits_nothing(string amountJson)
    {
        var (admin, id, client) = await NewAccountAsync();

        var response = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":{{amountJson}},"reference":"bad"}""");

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe("amount_usd");
        (await client.BalanceAsync()).Balance.ShouldBe(0);
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_missing_amount_is_a_400_on_amount_usd()
    {
        var (admin, id, client) = await NewAccountAsync();

        var response = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"reference":"x"}""");

        response.Status.ShouldBe(400, response.Body);
        response.ProblemField().ShouldBe("amount_usd");
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_10_MB_amount_is_refused_with_413_or_400_and_not_echoed()
    {
        var (admin, id, client) = await NewAccountAsync();
        var huge = new string('9', 10 * 1024 * 1024);

        var response = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":"{{huge}}","reference":"big"}""");

        response.Status.ShouldBeOneOf(400, 413);
        response.ProblemCode.ShouldBeOneOf("VALIDATION_ERROR", "PAYLOAD_TOO_LARGE");
        response.Body.Length.ShouldBeLessThan(2000);
        (await client.BalanceAsync()).Balance.ShouldBe(0);
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("""{"amount_usd":"10.00","reference":"r","currency":"eur"}""", "currency")]
    [InlineData("""{"amount":"10.00"}""", "amount")]
    [InlineData("""{"amount_usd":"10.00","account_id":"acct_x"}""", "account_id")]
    public async Task An_unknown_credit_field_is_a_400_naming_it(string body, string field)
    {
        var (admin, id, client) = await NewAccountAsync();

        var response = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", body);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        response.ProblemField().ShouldBe(field);
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("42")]
    [InlineData("\"\"")]
    [InlineData("\"inv\\u0000oice\"")]
    [InlineData("\"inv\\u202eoice\"")]
    public async Task A_bad_reference_is_a_400_on_reference(string referenceJson)
    {
        var (admin, id, client) = await NewAccountAsync();

        var response = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":"1.00","reference":{{referenceJson}}}""");

        response.Status.ShouldBe(400, response.Body);
        response.ProblemField().ShouldBe("reference");
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Theory]
    [InlineData("text/plain", 415)]
    [InlineData("application/json", 400)]
    public async Task A_credit_body_that_is_not_json_is_refused(string contentType, int status)
    {
        var (admin, id, client) = await NewAccountAsync();

        var response = await admin.SendJsonAsync(HttpMethod.Post, $"/v1/admin/accounts/{id}/credits", "amount_usd=10", contentType);

        response.Status.ShouldBe(status, response.Body);
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    [Fact]
    public async Task Unpaired_surrogate_escapes_in_admin_bodies_are_a_400_not_a_500()
    {
        var (admin, id, client) = await NewAccountAsync();
        var accountsBefore = await _gateway.CountRowsAsync("accounts");

        var responses = new[]
        {
            await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"\ud800"}"""),
            await admin.PostJsonAsync("/v1/admin/accounts", """{"\ud800":"acme"}"""),
            await admin.PostJsonAsync($"/v1/admin/accounts/{id}/api-keys", """{"name":"ci\udc00"}"""),
            await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"\ud800"}"""),
            await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"1.00","reference":"\ud800"}"""),
            await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"1.00","\ud800":1}"""),
        };

        foreach (var response in responses)
        {
            response.Status.ShouldBe(400, response.Body);
            response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        }

        (await _gateway.CountRowsAsync("accounts")).ShouldBe(accountsBefore);
        (await client.LedgerAsync()).ShouldBeEmpty();
    }

    /// <summary>A fresh account with no credit, an admin client and a client on the account's own key.</summary>
    private async Task<(HttpClient Admin, string Id, HttpClient Client)> NewAccountAsync()
    {
        var account = await _gateway.CreateAccountAsync("0");
        return (_gateway.Admin(), account.Id, account.Client);
    }

    [GeneratedRegex(@"^\d+\.\d{6}$")]
    private static partial Regex SixDecimals();
}
