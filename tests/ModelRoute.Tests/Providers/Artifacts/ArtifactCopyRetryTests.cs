using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Providers.Artifacts;

/// <summary>
/// A copy that fails for a passing reason is tried again by itself and never calls the provider again: the provider
/// is paid once for one result. Copies are not provider attempts (the class allows two provider attempts, and three
/// copies fail before one succeeds).
/// </summary>
public sealed class ArtifactCopyRetryTests(ArtifactGateway fixture) : IClassFixture<ArtifactGateway>
{
    private readonly ArtifactGateway _fixture = Reset(fixture);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failing_copy_is_retried_until_it_succeeds_with_exactly_one_provider_call_and_one_charge(bool dropConnections)
    {
        using var account = await _fixture.Gateway.CreateAccountAsync();
        _fixture.Fake.ServeImageUrls = true;
        _fixture.Fake.DropFailedDownloads = dropConnections;
        _fixture.Fake.FailDownloads = 3;

        var done = await ArtifactGateway.RunImageAsync(account);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        _fixture.ProviderCalls.ShouldBe(1, "the provider is never called again for a failed copy");
        _fixture.Fake.Downloads.Count.ShouldBe(4);
        done.GetProperty("attempts").GetInt32().ShouldBe(1, "copies are not provider attempts");
        ArtifactGateway.Outcomes(done).ShouldBe(["completed", "copy_failed", "copy_failed", "copy_failed", "copied"]);
        var copyError = done.GetProperty("attempt_log")[1].GetProperty("error");
        copyError.GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        copyError.GetProperty("message").GetString()!.ShouldContain("image-0.png");

        using var download = await account.Client.GetAsync(done.GetProperty("output").GetProperty("images")[0].GetProperty("url").GetString());
        ((int)download.StatusCode).ShouldBe(200);
        (await download.Content.ReadAsByteArrayAsync()).ShouldBe(OpenAIFake.Png("a lighthouse", 0));
        var charges = (await account.Client.LedgerAsync()).Where(e => e.GetProperty("kind").GetString() == "charge").ToList();
        charges.Count.ShouldBe(1);
        HttpExtensions.Micros(charges[0].GetProperty("amount")).ShouldBe(40_000);
        (await account.Client.BalanceAsync()).ShouldBe((9_960_000, 0, 9_960_000));
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_copy_that_keeps_failing_until_the_deadline_expires_with_one_provider_call_and_nothing_charged()
    {
        using var account = await _fixture.Gateway.CreateAccountAsync();
        _fixture.Fake.ServeImageUrls = true;
        _fixture.Fake.FailDownloads = int.MaxValue;

        var done = await ArtifactGateway.RunImageAsync(account, extra: ""","timeout_seconds":4""");

        done.GetProperty("status").GetString().ShouldBe("EXPIRED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("DEADLINE_EXCEEDED");
        _fixture.ProviderCalls.ShouldBe(1);
        // Retried until the deadline: how many times depends on the machine's load, at least once.
        _fixture.Fake.Downloads.Count.ShouldBeGreaterThanOrEqualTo(1);
        ArtifactGateway.Outcomes(done).Count(o => o == "copy_failed").ShouldBeGreaterThanOrEqualTo(1);
        await ArtifactGateway.AssertUnchargedAsync(account);
    }

    [Fact]
    public async Task An_output_over_the_size_cap_fails_the_execution_at_once_uncharged_and_is_not_fetched_again()
    {
        await using var capped = _fixture.Start(new Dictionary<string, string?> { ["ModelRoute:Limits:MaxArtifactBytes"] = "64" });
        using var account = await capped.CreateAccountAsync();
        _fixture.Fake.ServeImageUrls = true;

        var done = await ArtifactGateway.RunImageAsync(account);

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        var error = done.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("PROVIDER_ERROR");
        error.GetProperty("retryable").GetBoolean().ShouldBeFalse();
        error.GetProperty("message").GetString()!.ShouldContain("larger than 64 bytes");
        ArtifactGateway.Outcomes(done).ShouldBe(["completed", "copy_failed"]);
        _fixture.ProviderCalls.ShouldBe(1);
        _fixture.Fake.Downloads.Count.ShouldBe(1);
        await ArtifactGateway.AssertUnchargedAsync(account);
    }

    private static ArtifactGateway Reset(ArtifactGateway fixture)
    {
        fixture.Fake.Reset();
        fixture.Secret.Received.Clear();
        return fixture;
    }
}
