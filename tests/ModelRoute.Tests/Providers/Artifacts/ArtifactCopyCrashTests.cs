using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Providers.Artifacts;

/// <summary>
/// kill -9 while a provider's result is being copied: after a restart the copy resumes from the kept result and the
/// provider is still called once (docs/artifacts.md).
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class ArtifactCopyCrashTests : IAsyncLifetime
{
    private readonly string _dataDirectory = TestPaths.NewTempDirectory("artifact-crash");
    private OpenAIFake _fake = null!;

    public async Task InitializeAsync() => _fake = await OpenAIFake.StartAsync();

    public async Task DisposeAsync()
    {
        await _fake.DisposeAsync();
        TestPaths.TryDelete(_dataDirectory);
    }

    [Fact]
    public async Task A_gateway_killed_while_a_copy_keeps_failing_resumes_the_copy_after_restart_without_calling_the_provider_again()
    {
        var settings = new Dictionary<string, string>
        {
            ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
            ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:02",
            ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.100",
            ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.050",
            ["ModelRoute:Artifacts:RetrySchedule:0"] = "00:00:00.300",
            ["ModelRoute:Providers:oai:Kind"] = "openai",
            ["ModelRoute:Providers:oai:BaseUrl"] = _fake.V1,
            ["ModelRoute:Providers:oai:ApiKey"] = OpenAIGateway.ApiKey,
            [$"ModelRoute:Models:{ArtifactGateway.Image}:Modality"] = "image",
            [$"ModelRoute:Models:{ArtifactGateway.Image}:Pricing:PerImage"] = "0.04",
            [$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Model"] = "dall-e-3",
        };
        _fake.ServeImageUrls = true;
        _fake.FailDownloads = int.MaxValue;
        string key;
        string id;
        await using (var first = await GatewayProcess.StartAsync(_dataDirectory, settings))
        {
            key = await first.CreateFundedKeyAsync();
            using var client = first.Client(key);
            var submitted = await client.SubmitAsync(ArtifactGateway.Image, """{"prompt":"a lighthouse"}""");
            submitted.Status.ShouldBe(202, submitted.Body);
            id = submitted.Json.GetProperty("id").GetString()!;
            await Eventually.HoldsAsync(() => _fake.Downloads.Count >= 3, "the copy failed a few times", seconds: 30);
            first.Kill();
        }

        var failedBeforeKill = _fake.Downloads.Count;
        _fake.ProviderCallsShouldBe(1);
        _fake.FailDownloads = 0;
        await using var second = await GatewayProcess.StartAsync(_dataDirectory, settings);
        using var restarted = second.Client(key);

        var done = await restarted.WaitForTerminalAsync(id, seconds: 60);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        _fake.ProviderCallsShouldBe(1);
        _fake.Downloads.Count.ShouldBeGreaterThan(failedBeforeKill);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        ArtifactGateway.Outcomes(done)[0].ShouldBe("completed");
        ArtifactGateway.Outcomes(done).Last().ShouldBe("copied");
        using var download = await restarted.GetAsync(done.GetProperty("output").GetProperty("images")[0].GetProperty("url").GetString());
        (await download.Content.ReadAsByteArrayAsync()).ShouldBe(OpenAIFake.Png("a lighthouse", 0));
        (await restarted.LedgerAsync()).Count(e => e.GetProperty("kind").GetString() == "charge").ShouldBe(1);
        await Ledger.AssertBalancedAsync(restarted);
    }

}

internal static class OpenAIFakeCalls
{
    public static void ProviderCallsShouldBe(this OpenAIFake fake, int expected) =>
        fake.Requests.Count(r => r.Path == "/v1/images/generations").ShouldBe(expected, "the provider is called once for one result");
}
