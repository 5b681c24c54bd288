using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Providers;

/// <summary>Provider credentials come from configuration only and never leave it: not in logs, errors, records or responses.</summary>
public sealed class CredentialTests : IAsyncLifetime
{
    private const string Key = "sk-live-do-not-leak-0123456789";
    private OpenAIFake _fake = null!;
    private GatewayFactory _gateway = null!;

    public async Task InitializeAsync()
    {
        _fake = await OpenAIFake.StartAsync();
        _fake.ApiKey = "sk-some-other-key"; // every call is refused: 401 bodies and failure paths get logged
        _gateway = new GatewayFactory(new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:oai:Kind"] = "openai",
            ["ModelRoute:Providers:oai:BaseUrl"] = _fake.V1,
            ["ModelRoute:Providers:oai:ApiKey"] = Key,
            ["ModelRoute:Models:openai/gpt-4o-mini:Modality"] = "text",
            ["ModelRoute:Models:openai/gpt-4o-mini:Pricing:InputPerMTok"] = "0.15",
            ["ModelRoute:Models:openai/gpt-4o-mini:Routes:0:Provider"] = "oai",
            ["ModelRoute:Models:openai/gpt-4o-mini:Routes:0:Model"] = "gpt-4o-mini",
        });
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _fake.DisposeAsync();
    }

    [Fact]
    public async Task A_providers_api_key_appears_in_no_log_line_response_or_record_even_when_the_provider_rejects_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        using var admin = _gateway.Admin();

        var id = (await account.Client.SubmitAsync("openai/gpt-4o-mini", """{"messages":[{"role":"user","content":"hi"}]}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);
        var events = await account.Client.GetStringAsync($"/v1/executions/{id}/events");
        var providers = await admin.GetStringAsync("/v1/admin/providers");
        var list = await account.Client.GetStringAsync("/v1/executions");

        done.GetProperty("status").GetString().ShouldBe("FAILED");
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_AUTH_FAILED");
        _fake.Requests.ShouldContain(r => r.Authorization == $"Bearer {Key}", "the key was really used");
        foreach (var text in new[] { done.ToString(), events, providers, list, _gateway.Logs.All })
        {
            text.ShouldNotContain(Key);
        }

        foreach (var table in new[] { "executions", "execution_events", "ledger_entries", "webhook_deliveries", "accounts", "api_keys" })
        {
            (await _gateway.DumpTableAsync(table)).ShouldAllBe(v => !v.Contains(Key), $"the {table} table holds the key");
        }

        if (!TestStore.IsPostgres)
        {
            // On SQLite also the raw files, free pages and write-ahead log included.
            var files = Directory.GetFiles(_gateway.DataDirectory, "modelroute.db*");
            files.ShouldNotBeEmpty();
            foreach (var file in files)
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                (await reader.ReadToEndAsync()).ShouldNotContain(Key, customMessage: $"{file} holds the key");
            }
        }
    }
}
