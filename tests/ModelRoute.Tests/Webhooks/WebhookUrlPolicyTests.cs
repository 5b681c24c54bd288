using System.Net;
using Microsoft.Extensions.Options;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>docs/api.md#webhooks, last bullet: which webhook URLs and addresses the gateway refuses.</summary>
public sealed class WebhookUrlPolicyTests
{
    [Theory]
    // IPv4: this network, loopback, RFC 1918, link-local and cloud metadata, carrier-grade NAT,
    // documentation and benchmarking ranges, multicast, reserved and broadcast.
    [InlineData("0.0.0.0")]
    [InlineData("0.1.2.3")]
    [InlineData("127.0.0.1")]
    [InlineData("127.255.255.254")]
    [InlineData("10.0.0.1")]
    [InlineData("10.255.255.255")]
    [InlineData("172.16.0.1")]
    [InlineData("172.31.255.254")]
    [InlineData("192.168.0.1")]
    [InlineData("192.168.255.255")]
    [InlineData("169.254.169.254")]
    [InlineData("169.254.0.1")]
    [InlineData("100.64.0.1")]
    [InlineData("100.127.255.254")]
    [InlineData("192.0.0.1")]
    [InlineData("192.0.2.1")]
    [InlineData("198.18.0.1")]
    [InlineData("198.51.100.1")]
    [InlineData("203.0.113.1")]
    [InlineData("224.0.0.1")]
    [InlineData("239.255.255.250")]
    [InlineData("240.0.0.1")]
    [InlineData("255.255.255.255")]
    // IPv6: loopback, unspecified, link-local, site-local, unique-local (AWS metadata is
    // fd00:ec2::254), multicast, documentation.
    [InlineData("::1")]
    [InlineData("::")]
    [InlineData("fe80::1")]
    [InlineData("febf::1")]
    [InlineData("fec0::1")]
    [InlineData("fc00::1")]
    [InlineData("fd00::1")]
    [InlineData("fd00:ec2::254")]
    [InlineData("ff02::1")]
    [InlineData("2001:db8::1")]
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::/96) judged by the IPv4 address.
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("::ffff:0.0.0.0")]
    [InlineData("64:ff9b::a9fe:a9fe")]
    [InlineData("64:ff9b::7f00:1")]
    public void Private_loopback_link_local_and_metadata_addresses_are_private(string address)
    {
        WebhookUrlPolicy.IsPrivate(IPAddress.Parse(address)).ShouldBeTrue(address);
    }

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("93.184.216.34")]
    [InlineData("1.0.0.1")]
    [InlineData("9.255.255.255")]
    [InlineData("11.0.0.1")]
    [InlineData("126.255.255.255")]
    [InlineData("128.0.0.1")]
    [InlineData("172.15.255.255")]
    [InlineData("172.32.0.1")]
    [InlineData("100.63.255.255")]
    [InlineData("100.128.0.1")]
    [InlineData("169.253.255.255")]
    [InlineData("169.255.0.1")]
    [InlineData("192.167.255.255")]
    [InlineData("192.169.0.1")]
    [InlineData("223.255.255.254")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("2001:4860:4860::8888")]
    [InlineData("::ffff:8.8.8.8")]
    [InlineData("64:ff9b::808:808")]
    public void Public_addresses_are_not_private(string address)
    {
        WebhookUrlPolicy.IsPrivate(IPAddress.Parse(address)).ShouldBeFalse(address);
    }

    [Theory]
    [InlineData("http://hooks.example/x")]
    [InlineData("http://93.184.216.34/x")]
    public async Task Http_is_refused_unless_allowed(string url)
    {
        var resolver = FakeHostResolver.Always("93.184.216.34");

        var refusal = await Policy(resolver, allowHttp: false).RefusalAsync(new Uri(url), CancellationToken.None);

        refusal.ShouldNotBeNull();
        refusal.ShouldContain("https");
        (await Policy(resolver, allowHttp: true).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldBeNull("the same URL once http is allowed");
        (await Policy(resolver, allowHttp: false).RefusalAsync(new Uri(url.Replace("http://", "https://", StringComparison.Ordinal)), CancellationToken.None))
            .ShouldBeNull("the same URL over https");
    }

    [Theory]
    [InlineData("ftp://hooks.example/x")]
    [InlineData("file:///etc/passwd")]
    [InlineData("gopher://hooks.example:70/_x")]
    [InlineData("ws://hooks.example/x")]
    public async Task Schemes_other_than_http_and_https_are_refused_even_with_everything_allowed(string url)
    {
        var resolver = FakeHostResolver.Always("93.184.216.34");

        (await Policy(resolver, allowHttp: true, allowPrivateNetworks: true).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldNotBeNull(url);
        (await Policy(resolver, allowHttp: false).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldNotBeNull(url);
    }

    [Theory]
    [InlineData("https://user:secret@hooks.example/x", false)]
    [InlineData("https://user@hooks.example/x", false)]
    [InlineData("https://user:secret@hooks.example/x", true)]
    public async Task Credentials_in_the_url_are_refused(string url, bool allowPrivateNetworks)
    {
        var resolver = FakeHostResolver.Always("93.184.216.34");

        var refusal = await Policy(resolver, allowPrivateNetworks: allowPrivateNetworks).RefusalAsync(new Uri(url), CancellationToken.None);

        refusal.ShouldNotBeNull();
        refusal.ShouldContain("credentials");
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("10.1.2.3")]
    [InlineData("169.254.169.254")]
    [InlineData("::1")]
    [InlineData("fd00:ec2::254")]
    [InlineData("::ffff:127.0.0.1")]
    public async Task A_host_name_that_resolves_to_a_private_address_is_refused(string address)
    {
        var resolver = FakeHostResolver.Always(address);

        var refusal = await Policy(resolver).RefusalAsync(new Uri("https://hooks.example/x"), CancellationToken.None);

        refusal.ShouldNotBeNull(address);
        resolver.LookupsOf("hooks.example").ShouldBe(1);
    }

    [Fact]
    public async Task A_host_that_does_not_resolve_is_refused()
    {
        var failing = new FakeHostResolver((_, _) => null);
        var empty = new FakeHostResolver((_, _) => []);

        var refusal = await Policy(failing).RefusalAsync(new Uri("https://nowhere.example/x"), CancellationToken.None);
        var emptyRefusal = await Policy(empty).RefusalAsync(new Uri("https://nowhere.example/x"), CancellationToken.None);

        refusal.ShouldNotBeNull();
        refusal.ShouldContain("does not resolve");
        emptyRefusal.ShouldNotBeNull();
        emptyRefusal.ShouldContain("does not resolve");
    }

    [Fact]
    public async Task A_host_name_the_real_resolver_rejects_outright_is_refused_rather_than_thrown()
    {
        // A valid URL whose host name is longer than DNS's 255 characters: Dns.GetHostAddressesAsync
        // throws ArgumentOutOfRangeException (not SocketException) before any lookup is made.
        var host = string.Join(".", Enumerable.Range(0, 5).Select(i => new string((char)('a' + i), 60))) + ".example";

        var refusal = await Policy(new DnsHostResolver()).RefusalAsync(new Uri($"https://{host}/hook"), CancellationToken.None);

        refusal.ShouldNotBeNull();
    }

    [Theory]
    [InlineData("93.184.216.34", "127.0.0.1")]
    [InlineData("127.0.0.1", "93.184.216.34")]
    [InlineData("93.184.216.34", "2606:4700:4700::1111", "fd00::1")]
    [InlineData("8.8.8.8", "169.254.169.254")]
    public async Task A_host_that_resolves_to_public_and_private_addresses_is_refused(params string[] addresses)
    {
        var refusal = await Policy(FakeHostResolver.Always(addresses)).RefusalAsync(new Uri("https://hooks.example/x"), CancellationToken.None);

        refusal.ShouldNotBeNull(string.Join(", ", addresses));
    }

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("8.8.8.8", "2001:4860:4860::8888")]
    public async Task A_host_that_resolves_only_to_public_addresses_is_accepted(params string[] addresses)
    {
        var resolver = FakeHostResolver.Always(addresses);

        var refusal = await Policy(resolver).RefusalAsync(new Uri("https://hooks.example:8443/x?y=1"), CancellationToken.None);

        refusal.ShouldBeNull();
        resolver.LookupsOf("hooks.example").ShouldBe(1);
    }

    [Theory]
    [InlineData("https://10.0.0.1/x")]
    [InlineData("https://127.0.0.1:8443/x")]
    [InlineData("https://[::1]/x")]
    [InlineData("https://[fd00::1]:443/x")]
    [InlineData("https://[::ffff:169.254.169.254]/x")]
    [InlineData("https://0.0.0.0/x")]
    [InlineData("https://2130706433/x")]
    [InlineData("https://0x7f.0.0.1/x")]
    [InlineData("https://127.1/x")]
    public async Task A_private_ip_literal_is_refused_without_asking_dns(string url)
    {
        // A resolver that would answer "public" for anything, so only the literal itself can refuse.
        var resolver = FakeHostResolver.Always("93.184.216.34");

        var refusal = await Policy(resolver).RefusalAsync(new Uri(url), CancellationToken.None);

        refusal.ShouldNotBeNull(url);
        resolver.Lookups.ShouldBeEmpty();
    }

    [Theory]
    [InlineData("https://93.184.216.34/x")]
    [InlineData("https://[2606:4700:4700::1111]/x")]
    public async Task A_public_ip_literal_is_accepted(string url)
    {
        (await Policy(FakeHostResolver.Always("127.0.0.1")).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldBeNull(url);
    }

    [Theory]
    [InlineData("http://localhost.test:8080/hook", "127.0.0.1")]
    [InlineData("http://hooks.internal/hook", "10.0.0.5")]
    [InlineData("http://127.0.0.1:5000/hook", "127.0.0.1")]
    [InlineData("http://[::1]:5000/hook", "::1")]
    public async Task With_private_networks_allowed_loopback_and_private_are_accepted(string url, string address)
    {
        var resolver = FakeHostResolver.Always(address);

        (await Policy(resolver, allowHttp: true, allowPrivateNetworks: true).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldBeNull(url);
        (await Policy(resolver, allowHttp: true, allowPrivateNetworks: false).RefusalAsync(new Uri(url), CancellationToken.None)).ShouldNotBeNull(url);
    }

    [Theory]
    [InlineData("127.0.0.1", false, false)]
    [InlineData("10.0.0.1", false, false)]
    [InlineData("::1", false, false)]
    [InlineData("::ffff:127.0.0.1", false, false)]
    [InlineData("169.254.169.254", false, false)]
    [InlineData("93.184.216.34", false, true)]
    [InlineData("2606:4700:4700::1111", false, true)]
    [InlineData("127.0.0.1", true, true)]
    [InlineData("169.254.169.254", true, true)]
    public void MayConnect_is_the_connect_time_check(string address, bool allowPrivateNetworks, bool expected)
    {
        Policy(FakeHostResolver.Always(), allowPrivateNetworks: allowPrivateNetworks).MayConnect(IPAddress.Parse(address)).ShouldBe(expected, address);
    }

    private static WebhookUrlPolicy Policy(IHostResolver resolver, bool allowHttp = false, bool allowPrivateNetworks = false) =>
        new(resolver, Options.Create(new ModelRouteOptions
        {
            Webhooks = new WebhookOptions { AllowHttp = allowHttp, AllowPrivateNetworks = allowPrivateNetworks },
        }));
}

public sealed class EmbeddedIPv4PolicyTests
{
    [Theory]
    [InlineData("::127.0.0.1")]
    [InlineData("::10.0.0.1")]
    [InlineData("2002:7f00:1::1")]
    [InlineData("2002:a9fe:a9fe::1")]
    [InlineData("64:ff9b:1::7f00:1")]
    // IPv4-translated (::ffff:0:a.b.c.d), the form that once slipped through.
    [InlineData("::ffff:0:127.0.0.1")]
    [InlineData("::ffff:0:169.254.169.254")]
    [InlineData("::ffff:0:10.0.0.1")]
    [InlineData("::ffff:0:0.0.0.0")]
    [InlineData("::ffff:0:7f00:1")]
    // IPv4-mapped and -compatible, NAT64 (well-known and local-use), 6to4.
    [InlineData("::ffff:192.168.1.1")]
    [InlineData("::169.254.169.254")]
    [InlineData("64:ff9b::10.0.0.1")]
    [InlineData("64:ff9b:1:0:0:0:808:808")]
    [InlineData("2002:c0a8:101::")]
    [InlineData("2002:6440:1::1")]
    // Teredo: the server IPv4 in bits 32-63, the client IPv4 inverted in the last 32 bits.
    [InlineData("2001:0:7f00:1::808:808")]
    [InlineData("2001:0:808:808::80ff:fffe")]
    [InlineData("2001:0:808:808:8000:ffff:5601:5601")]
    [InlineData("2001:0:a9fe:a9fe::f7f7:f7f7")]
    // ISATAP: an interface id of 0:5efe:a.b.c.d or 200:5efe:a.b.c.d under any prefix.
    [InlineData("2606:4700::5efe:127.0.0.1")]
    [InlineData("2606:4700::200:5efe:169.254.169.254")]
    [InlineData("2a00:1450::5efe:a00:1")]
    public void IPv6_forms_that_carry_a_private_IPv4_address_are_private(string address) =>
        ModelRoute.Server.Webhooks.WebhookUrlPolicy.IsPrivate(System.Net.IPAddress.Parse(address)).ShouldBeTrue();

    [Theory]
    [InlineData("2002:808:808::1")]
    [InlineData("::8.8.8.8")]
    [InlineData("::ffff:0:8.8.8.8")]
    [InlineData("64:ff9b::1.1.1.1")]
    [InlineData("2001:0:808:808::f7f7:f7f7")]
    [InlineData("2606:4700::5efe:8.8.8.8")]
    [InlineData("2606:4700::200:5efe:1.1.1.1")]
    public void IPv6_forms_that_carry_a_public_IPv4_address_are_public(string address) =>
        ModelRoute.Server.Webhooks.WebhookUrlPolicy.IsPrivate(System.Net.IPAddress.Parse(address)).ShouldBeFalse();
}
