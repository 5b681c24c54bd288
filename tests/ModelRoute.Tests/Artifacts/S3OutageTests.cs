using ModelRoute.Tests.Providers.Artifacts;
using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// The bucket unreachable while a provider's output is copied: the copy waits and is tried again by itself, and the
/// provider is not called again (docs/artifacts.md#what-happens-when-a-copy-does-not-succeed).
/// </summary>
public sealed class S3OutageTests : IAsyncLifetime
{
    private MotoServer _moto = null!;
    private OpenAIFake _fake = null!;

    public async Task InitializeAsync()
    {
        _moto = await MotoServer.StartPrivateAsync();
        _fake = await OpenAIFake.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _fake.DisposeAsync();
        await _moto.DisposeAsync();
    }

    [Fact]
    public async Task S3_down_during_a_copy_is_retried_by_itself_without_calling_the_provider_again()
    {
        var bucket = await _moto.CreateBucketAsync("outage");
        var settings = _moto.Settings(bucket);
        settings["ModelRoute:Webhooks:AllowPrivateNetworks"] = "false";
        settings["ModelRoute:Artifacts:RetrySchedule:0"] = "00:00:00.300";
        settings["ModelRoute:Providers:oai:Kind"] = "openai";
        settings["ModelRoute:Providers:oai:BaseUrl"] = _fake.V1;
        settings["ModelRoute:Providers:oai:ApiKey"] = OpenAIGateway.ApiKey;
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Modality"] = "image";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Pricing:PerImage"] = "0.04";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Provider"] = "oai";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Model"] = "dall-e-3";
        _fake.ServeImageUrls = true;
        await using var gateway = new GatewayFactory(settings);
        using var account = await gateway.CreateAccountAsync();
        gateway.StartServer();
        _moto.Stop();

        var submitted = await account.Client.SubmitAsync(ArtifactGateway.Image, """{"prompt":"a lighthouse"}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        await Eventually.HoldsAsync(
            async () => ArtifactGateway.Outcomes((await account.Client.GetApiAsync($"/v1/executions/{id}")).Json).Count(o => o == "copy_failed") >= 2,
            "the copy failed twice while the bucket was down",
            seconds: 60);
        var waiting = (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json;
        await _moto.RestartAsync(bucket);
        var done = await account.Client.WaitForTerminalAsync(id, seconds: 60);

        waiting.GetProperty("status").GetString().ShouldBe("PENDING");
        waiting.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_UNAVAILABLE");
        waiting.GetProperty("error").GetProperty("message").GetString()!.ShouldStartWith("Copying the output 'image-0.png' failed");
        _fake.Downloads.Count.ShouldBeGreaterThanOrEqualTo(2, "the provider's URL was fetched each time: the bucket failed");
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        _fake.ProviderCallsShouldBe(1);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
        ArtifactGateway.Outcomes(done).Last().ShouldBe("copied");
        (await _moto.KeysAsync(bucket)).ShouldContain($"{id}/image-0.png");
        var bytes = await account.Client.GetByteArrayAsync(done.GetProperty("artifacts")[0].GetProperty("url").GetString());
        bytes.ShouldBe(OpenAIFake.Png("a lighthouse", 0));
        (await account.Client.LedgerAsync()).Count(e => e.GetProperty("kind").GetString() == "charge").ShouldBe(1);
    }
}
