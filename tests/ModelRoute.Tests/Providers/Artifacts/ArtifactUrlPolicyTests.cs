using Microsoft.Extensions.Options;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Storage.Artifacts;

namespace ModelRoute.Tests.Providers.Artifacts;

/// <summary>Which output URLs the operator trusts on private addresses (docs/artifacts.md), and what stays refused.</summary>
public sealed class ArtifactUrlPolicyTests
{
    private static ArtifactUrlPolicy Policy(params string[] trustedHosts)
    {
        var options = new ModelRouteOptions
        {
            Providers = new(StringComparer.Ordinal)
            {
                ["local"] = new ProviderOptions { Kind = "openai", BaseUrl = "http://127.0.0.1:8000/v1" },
                ["remote"] = new ProviderOptions { Kind = "openai", BaseUrl = "https://api.example.com/v1" },
            },
            Artifacts = new ArtifactOptions { TrustedHosts = [.. trustedHosts] },
        };
        return new ArtifactUrlPolicy(FakeHostResolver.Always("127.0.0.1"), Options.Create(options));
    }

    [Theory]
    [InlineData("http://127.0.0.1:8000/files/a.png", "local", true)]
    [InlineData("http://127.0.0.1:8001/files/a.png", "local", false)]   // another port of the same host
    [InlineData("http://127.0.0.1:8000/files/a.png", "remote", false)]  // another provider's host
    [InlineData("http://localhost:8000/files/a.png", "local", false)]   // another spelling is another host
    [InlineData("https://api.example.com/files/a.png", "remote", true)]
    [InlineData("http://files.internal:9000/a.png", "local", true)]     // TrustedHosts, any port
    [InlineData("http://minio.internal:9000/a.png", "remote", true)]    // TrustedHosts, that port
    [InlineData("http://minio.internal:9001/a.png", "remote", false)]
    public void Only_the_providers_own_host_and_port_and_the_trusted_hosts_are_trusted(string url, string provider, bool trusted)
    {
        Policy("files.internal", "minio.internal:9000").IsTrusted(new Uri(url), provider).ShouldBe(trusted);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/x")]
    [InlineData("http://2130706433:9/x")]
    [InlineData("http://[::ffff:127.0.0.1]:9/x")]
    [InlineData("http://169.254.169.254/latest/meta-data")]
    [InlineData("http://cdn.example/x")] // resolves to 127.0.0.1 here
    public async Task An_untrusted_url_at_a_private_address_is_refused(string url)
    {
        (await Policy().RefusalAsync(new Uri(url), trusted: false, CancellationToken.None)).ShouldNotBeNull(url);
    }

    [Theory]
    [InlineData("https://user:pass@127.0.0.1:8000/x")]
    [InlineData("ftp://127.0.0.1:8000/x")]
    public async Task Credentials_and_other_schemes_are_refused_even_on_a_trusted_host(string url)
    {
        (await Policy().RefusalAsync(new Uri(url), trusted: true, CancellationToken.None)).ShouldNotBeNull(url);
    }

    [Fact]
    public async Task A_trusted_host_may_use_plain_http_on_a_private_address()
    {
        (await Policy().RefusalAsync(new Uri("http://127.0.0.1:8000/files/a.png"), trusted: true, CancellationToken.None)).ShouldBeNull();
    }
}
