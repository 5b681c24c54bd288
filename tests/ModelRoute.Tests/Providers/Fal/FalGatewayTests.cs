using System.Text.Json.Nodes;

namespace ModelRoute.Tests.Providers.Fal;

public sealed class FalWorld : IAsyncLifetime
{
    public const string VideoModel = "fal-ai/kling-video/v1/standard/text-to-video";

    public FakeFal Fake { get; private set; } = null!;

    public GatewayFactory Gateway { get; private set; } = null!;

    public static Dictionary<string, string?> Settings(string fakeUrl, string pollInterval = "00:00:05") => new()
    {
        ["ModelRoute:Dispatch:CallbackPollInterval"] = pollInterval,
        ["ModelRoute:Providers:falq:Kind"] = "fal",
        ["ModelRoute:Providers:falq:BaseUrl"] = fakeUrl,
        ["ModelRoute:Providers:falq:ApiKey"] = FakeFal.ApiKey,
        ["ModelRoute:Providers:falq:WebhookJwksUrl"] = fakeUrl + FakeFal.JwksPath,
        ["ModelRoute:Models:fal/kling:Modality"] = "video",
        ["ModelRoute:Models:fal/kling:Pricing:PerSecond"] = "0.07",
        ["ModelRoute:Models:fal/kling:Routes:0:Provider"] = "falq",
        ["ModelRoute:Models:fal/kling:Routes:0:Model"] = VideoModel,
        ["ModelRoute:Models:fal/flux:Modality"] = "image",
        ["ModelRoute:Models:fal/flux:Pricing:PerImage"] = "0.025",
        ["ModelRoute:Models:fal/flux:Routes:0:Provider"] = "falq",
        ["ModelRoute:Models:fal/flux:Routes:0:Model"] = "fal-ai/flux/dev",
    };

    public async Task InitializeAsync()
    {
        Fake = await FakeFal.StartAsync();
        Gateway = new GatewayFactory(Settings(Fake.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class FalGatewayTests(FalWorld world) : IClassFixture<FalWorld>
{
    private FakeFal Fake => world.Fake;

    [Fact]
    public async Task Video_completes_through_the_webhook_and_is_charged_per_second()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "waves-" + Guid.NewGuid().ToString("N");

        var submitted = await account.Client.SubmitAsync("fal/kling", $$$"""{"prompt":"{{{marker}}}","duration_seconds":4,"provider_options":{"aspect_ratio":"16:9"}}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.280000"); // 4 s × $0.07
        done.GetProperty("output").GetProperty("video").GetProperty("artifact").GetString().ShouldBe("video.mp4");
        done.GetProperty("output").GetProperty("duration_seconds").GetInt32().ShouldBe(4);

        var requestId = Fake.RequestFor(marker);
        var submit = Fake.Submitted.Single(s => s.Id == requestId);
        submit.Path.ShouldBe("/" + FalWorld.VideoModel);
        var webhook = System.Web.HttpUtility.ParseQueryString(submit.Query)["fal_webhook"]!;
        webhook.ShouldContain($"/v1/provider-callbacks/falq/{id}?token=");
        var input = System.Text.Json.JsonDocument.Parse(submit.Body).RootElement;
        input.GetProperty("prompt").GetString().ShouldBe(marker);
        input.GetProperty("duration").GetString().ShouldBe("4");
        input.GetProperty("aspect_ratio").GetString().ShouldBe("16:9");
        Fake.Requests.ShouldContain(r => r.Method == "POST" && r.Authorization == "Key " + FakeFal.ApiKey && r.Body.Contains(marker, StringComparison.Ordinal));
        await Eventually.HoldsAsync(() => Fake.Webhooks.Any(w => w.Url.Contains(id, StringComparison.Ordinal) && w.Status == 200), "the webhook was answered 200");
        Fake.Requests.ShouldNotContain(r => r.Path.Contains($"/requests/{requestId}", StringComparison.Ordinal)); // No poll was needed.

        Fake.FilesAvailable = false;
        try
        {
            var download = await account.Client.GetAsync($"/v1/executions/{id}/artifacts/video.mp4");
            download.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
            download.Content.Headers.ContentType!.MediaType.ShouldBe("video/mp4");
            (await download.Content.ReadAsByteArrayAsync()).ShouldBe(Replicate.FakeReplicate.FileBytes(requestId, "output.mp4"));
        }
        finally
        {
            Fake.FilesAvailable = true;
        }

        done.ToString().ShouldNotContain(FakeFal.ApiKey);
        done.ToString().ShouldNotContain("fal_test_key_secret");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task Images_complete_through_the_webhook_and_are_charged_per_image()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "cat-" + Guid.NewGuid().ToString("N");

        var submitted = await account.Client.SubmitAsync("fal/flux", $$"""{"prompt":"{{marker}}","n":2,"size":"1024x768"}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.050000");
        done.GetProperty("output").GetProperty("images").EnumerateArray().Select(i => i.GetProperty("artifact").GetString()).ShouldBe(["image-0.png", "image-1.png"]);
        var submit = Fake.Submitted.Single(s => s.Body.Contains(marker, StringComparison.Ordinal));
        submit.Path.ShouldBe("/fal-ai/flux/dev");
        var input = System.Text.Json.JsonDocument.Parse(submit.Body).RootElement;
        input.GetProperty("num_images").GetInt32().ShouldBe(2);
        input.GetProperty("image_size").GetProperty("width").GetInt32().ShouldBe(1024);
        var download = await account.Client.GetAsync($"/v1/executions/{id}/artifacts/image-1.png");
        download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
    }

    [Fact]
    public async Task Cancelling_an_execution_awaiting_the_webhook_cancels_the_fal_request()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "slow-" + Guid.NewGuid().ToString("N");
        Fake.Script = input => input["prompt"]?.GetValue<string>() == marker ? new FalScript(TimeSpan.FromSeconds(60)) : new FalScript(TimeSpan.FromMilliseconds(300));
        try
        {
            var submitted = await account.Client.SubmitAsync("fal/kling", $$"""{"prompt":"{{marker}}","duration_seconds":5}""");
            var id = submitted.Json.GetProperty("id").GetString()!;
            await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
            var requestId = Fake.RequestFor(marker);

            (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);

            await Eventually.HoldsAsync(() => Fake.Cancels.Contains(requestId), "the request was cancelled at fal");
            Fake.Requests.ShouldContain(r => r.Method == "PUT" && r.Path == $"/fal-ai/kling-video/requests/{requestId}/cancel" && r.Authorization == "Key " + FakeFal.ApiKey);
            (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        }
        finally
        {
            Fake.Script = _ => new FalScript(TimeSpan.FromMilliseconds(300));
        }
    }

    [Fact]
    public async Task A_422_at_submit_fails_with_invalid_input_and_is_not_retried()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "empty-" + Guid.NewGuid().ToString("N");

        // An empty prompt passes the gateway's checks; the fake app requires one (fal validates with 422).
        var submitted = await account.Client.SubmitAsync("fal/flux", $$$"""{"prompt":"x","provider_options":{"prompt":"","marker":"{{{marker}}}"}}""");
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("INVALID_INPUT");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        done.GetProperty("error").GetProperty("provider_status").GetInt32().ShouldBe(422);
        done.GetProperty("error").GetProperty("message").GetString()!.ShouldContain("body.prompt: field required");
        Fake.Requests.Count(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal)).ShouldBe(1);
        done.GetProperty("attempts").GetInt32().ShouldBe(1);
    }

    [Fact]
    public async Task A_webhook_with_status_error_and_content_policy_wording_fails_as_content_policy_violation()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "refused-" + Guid.NewGuid().ToString("N");
        var errorPayload = new JsonObject
        {
            ["detail"] = new JsonArray(new JsonObject { ["loc"] = new JsonArray("body", "prompt"), ["msg"] = "The content could not be processed because it contained material flagged by a content checker.", ["type"] = "content_policy_violation" }),
        };
        Fake.Script = input => input["prompt"]?.GetValue<string>() == marker
            ? new FalScript(TimeSpan.FromMilliseconds(200), Error: "Invalid status code: 422", ErrorPayload: errorPayload)
            : new FalScript(TimeSpan.FromMilliseconds(300));
        try
        {
            var submitted = await account.Client.SubmitAsync("fal/flux", $$"""{"prompt":"{{marker}}"}""");
            var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

            done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
            done.GetProperty("error").GetProperty("code").GetString().ShouldBe("CONTENT_POLICY_VIOLATION");
            done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
            await Ledger.AssertBalancedAsync(account.Client);
        }
        finally
        {
            Fake.Script = _ => new FalScript(TimeSpan.FromMilliseconds(300));
        }
    }
}

public sealed class FalPollingTests
{
    [Fact]
    public async Task A_dropped_webhook_is_recovered_by_polling_status_then_result()
    {
        await using var fake = await FakeFal.StartAsync();
        fake.Script = _ => new FalScript(TimeSpan.FromMilliseconds(200), DropWebhook: true);
        await using var gateway = new GatewayFactory(FalWorld.Settings(fake.BaseUrl, pollInterval: "00:00:01"));
        using var account = await gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("fal/kling", """{"prompt":"no webhook","duration_seconds":4}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var requestId = fake.Submitted.Single().Id;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.280000");
        fake.Webhooks.ShouldBeEmpty();
        fake.Requests.ShouldContain(r => r.Method == "GET" && r.Path == $"/fal-ai/kling-video/requests/{requestId}/status" && r.Authorization == "Key " + FakeFal.ApiKey);
        fake.Requests.ShouldContain(r => r.Method == "GET" && r.Path == $"/fal-ai/kling-video/requests/{requestId}");
        done.GetProperty("artifacts").GetArrayLength().ShouldBe(1);
    }
}
