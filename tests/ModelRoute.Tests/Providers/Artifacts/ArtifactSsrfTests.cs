using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Providers.Artifacts;

/// <summary>
/// A provider's output URL pointing into the gateway's own network is never fetched, however it is spelled or
/// reached: the execution fails with PROVIDER_ERROR, its hold released, nothing charged, the provider called once.
/// </summary>
public sealed class ArtifactSsrfTests(ArtifactGateway fixture) : IClassFixture<ArtifactGateway>
{
    private readonly ArtifactGateway _fixture = Reset(fixture);

    public static TheoryData<string> InternalUrls =>
    [
        "http://127.0.0.1:{port}/secret",
        "http://localhost:{port}/secret",
        "http://2130706433:{port}/secret",
        "http://[::ffff:127.0.0.1]:{port}/secret",
        "http://rebind.test:{port}/secret", // public at the check before the request, loopback when connecting
    ];

    [Theory]
    [MemberData(nameof(InternalUrls))]
    public async Task An_output_url_at_an_internal_service_is_never_fetched_and_the_execution_fails_uncharged(string url)
    {
        using var account = await _fixture.Gateway.CreateAccountAsync();
        _fixture.AnswerImageUrl(url.Replace("{port}", _fixture.SecretPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        var done = await ArtifactGateway.RunImageAsync(account);

        await AssertRefusedAsync(account, done);
    }

    [Theory]
    [InlineData(302, "http://127.0.0.1:{port}/secret")]
    [InlineData(307, "http://localhost:{port}/secret")]
    [InlineData(301, "http://[::ffff:127.0.0.1]:{port}/secret")]
    public async Task A_redirect_from_the_providers_own_host_to_an_internal_service_is_not_followed(int status, string location)
    {
        using var account = await _fixture.Gateway.CreateAccountAsync();
        _fixture.Fake.ServeImageUrls = true;
        _fixture.Fake.RedirectDownloads = (status, location.Replace("{port}", _fixture.SecretPort.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

        var done = await ArtifactGateway.RunImageAsync(account);

        _fixture.Fake.Downloads.Count.ShouldBe(1, "the provider's own URL was fetched once and its redirect refused");
        await AssertRefusedAsync(account, done);
    }

    [Fact]
    public async Task A_redirect_loop_on_an_allowed_host_stops_after_five_and_fails_uncharged()
    {
        using var account = await _fixture.Gateway.CreateAccountAsync();
        _fixture.Fake.ServeImageUrls = true;
        _fixture.Fake.RedirectDownloads = (302, _fixture.Fake.BaseUrl + "/files/again.png");

        var done = await ArtifactGateway.RunImageAsync(account);

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        done.GetProperty("error").GetProperty("message").GetString()!.ShouldContain("redirected more than 5 times");
        _fixture.Fake.Downloads.Count.ShouldBe(6, "the first request and five redirects");
        _fixture.ProviderCalls.ShouldBe(1);
        await ArtifactGateway.AssertUnchargedAsync(account);
    }

    [Fact]
    public async Task Control_with_private_networks_allowed_the_same_answer_does_reach_the_internal_service()
    {
        // Proves the tests above can fail: this provider answer, unrefused, makes the gateway fetch the secret.
        await using var open = _fixture.Start(new Dictionary<string, string?> { ["ModelRoute:Artifacts:AllowPrivateNetworks"] = "true" });
        using var account = await open.CreateAccountAsync();
        _fixture.AnswerImageUrl($"http://localhost:{_fixture.SecretPort}/secret");

        var done = await ArtifactGateway.RunImageAsync(account);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        _fixture.Secret.Received.ShouldContain(r => r.Path == "/secret");
    }

    private async Task AssertRefusedAsync(TestAccount account, System.Text.Json.JsonElement done)
    {
        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        var error = done.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        error.GetProperty("retryable").GetBoolean().ShouldBeFalse();
        var message = error.GetProperty("message").GetString()!;
        message.ShouldContain("image-0.png");
        message.ShouldNotContain("/secret", Case.Insensitive, "the message names the output and its host, not the internal path");
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        ArtifactGateway.Outcomes(done).ShouldBe(["completed", "copy_refused"]);
        _fixture.ProviderCalls.ShouldBe(1, "the provider is not called again");
        _fixture.Secret.Received.ShouldBeEmpty("nothing may reach the internal service");
        await ArtifactGateway.AssertUnchargedAsync(account);
    }

    private static ArtifactGateway Reset(ArtifactGateway fixture)
    {
        fixture.Fake.Reset();
        fixture.Secret.Received.Clear();
        return fixture;
    }
}
