using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// The gateway as <see cref="GatewayFactory"/> runs it (same test settings, real loopback socket,
/// its own SQLite file), with the <see cref="IHostResolver"/> singleton replaced, so that a test
/// decides what every DNS lookup of the URL policy and of the webhook connections answers.
/// </summary>
public sealed class ResolverGatewayFactory : WebApplicationFactory<Program>
{
    private readonly IHostResolver _resolver;
    private readonly Dictionary<string, string?> _settings;

    public ResolverGatewayFactory(IHostResolver resolver, IDictionary<string, string?>? settings = null)
    {
        _resolver = resolver;
        DataDirectory = TestPaths.NewTempDirectory("gateway");
        _settings = new Dictionary<string, string?>
        {
            ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
            ["ModelRoute:DataDirectory"] = DataDirectory,
            ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.020",
            ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.050",
            ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:00.010",
            ["ModelRoute:Dispatch:RetryMaxDelay"] = "00:00:00.100",
            ["ModelRoute:Dispatch:CallbackPollInterval"] = "00:00:05",
            ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:03",
            ["ModelRoute:Polling:PermitsPerSecond"] = "100000",
            ["ModelRoute:Polling:Burst"] = "100000",
            ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "true",
            ["ModelRoute:Webhooks:AllowHttp"] = "true",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }

        UseKestrel(0);
    }

    public string DataDirectory { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        builder.ConfigureTestServices(services =>
        {
            services.RemoveAll<IHostResolver>();
            services.AddSingleton(_resolver);
        });
    }

    public HttpClient Admin()
    {
        StartServer();
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", GatewayFactory.AdminKey);
        return client;
    }

    /// <summary>Creates an account through the admin API, gives it a key and credits it.</summary>
    public async Task<TestAccount> CreateAccountAsync(string creditUsd = "10.00")
    {
        using var admin = Admin();
        var account = await admin.PostJsonAsync("/v1/admin/accounts", """{"name":"test"}""");
        account.Status.ShouldBe(201, account.Body);
        var id = account.Json.GetProperty("id").GetString()!;
        var key = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/api-keys", "{}");
        key.Status.ShouldBe(201, key.Body);
        var credit = await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":"{{creditUsd}}","reference":"setup"}""");
        credit.Status.ShouldBe(201, credit.Body);
        var secret = key.Json.GetProperty("key").GetString()!;
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        return new TestAccount(id, secret, client);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        TestPaths.TryDelete(DataDirectory);
    }
}
