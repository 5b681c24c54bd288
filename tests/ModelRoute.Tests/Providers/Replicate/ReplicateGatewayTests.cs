using System.Text.Json.Nodes;

namespace ModelRoute.Tests.Providers.Replicate;

/// <summary>The fake Replicate and a gateway routed to it.</summary>
public sealed class ReplicateWorld : IAsyncLifetime
{
    public FakeReplicate Fake { get; private set; } = null!;

    public GatewayFactory Gateway { get; private set; } = null!;

    public static Dictionary<string, string?> Settings(string fakeUrl, string pollInterval = "00:00:05") => new()
    {
        ["ModelRoute:Dispatch:CallbackPollInterval"] = pollInterval,
        ["ModelRoute:Providers:rep:Kind"] = "replicate",
        ["ModelRoute:Providers:rep:BaseUrl"] = fakeUrl,
        ["ModelRoute:Providers:rep:ApiKey"] = FakeReplicate.ApiKey,
        ["ModelRoute:Providers:rep:WebhookSecret"] = FakeReplicate.WebhookSecret,
        ["ModelRoute:Providers:rep-badkey:Kind"] = "replicate",
        ["ModelRoute:Providers:rep-badkey:BaseUrl"] = fakeUrl,
        ["ModelRoute:Providers:rep-badkey:ApiKey"] = "r8_wrong_key",
        ["ModelRoute:Models:replicate/flux:Modality"] = "image",
        ["ModelRoute:Models:replicate/flux:Pricing:PerImage"] = "0.003",
        ["ModelRoute:Models:replicate/flux:Routes:0:Provider"] = "rep",
        ["ModelRoute:Models:replicate/flux:Routes:0:Model"] = "black-forest-labs/flux-schnell",
        ["ModelRoute:Models:replicate/sdxl:Modality"] = "image",
        ["ModelRoute:Models:replicate/sdxl:Pricing:PerImage"] = "0.005",
        ["ModelRoute:Models:replicate/sdxl:Routes:0:Provider"] = "rep",
        ["ModelRoute:Models:replicate/sdxl:Routes:0:Model"] = "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc",
        ["ModelRoute:Models:replicate/video:Modality"] = "video",
        ["ModelRoute:Models:replicate/video:Pricing:PerSecond"] = "0.1",
        ["ModelRoute:Models:replicate/video:Routes:0:Provider"] = "rep",
        ["ModelRoute:Models:replicate/video:Routes:0:Model"] = "wan-video/wan-2.1",
        ["ModelRoute:Models:replicate/badkey:Modality"] = "image",
        ["ModelRoute:Models:replicate/badkey:Pricing:PerImage"] = "0.003",
        ["ModelRoute:Models:replicate/badkey:Routes:0:Provider"] = "rep-badkey",
        ["ModelRoute:Models:replicate/badkey:Routes:0:Model"] = "black-forest-labs/flux-schnell",
    };

    public async Task InitializeAsync()
    {
        Fake = await FakeReplicate.StartAsync();
        Gateway = new GatewayFactory(Settings(Fake.BaseUrl));
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class ReplicateGatewayTests(ReplicateWorld world) : IClassFixture<ReplicateWorld>
{
    private FakeReplicate Fake => world.Fake;

    /// <summary>Scripts how the prediction whose prompt is <paramref name="marker"/> ends; the others succeed at once.</summary>
    private void ScriptFor(string marker, PredictionScript script) =>
        Fake.Script = input => input["prompt"]?.GetValue<string>() == marker ? script : new PredictionScript(TimeSpan.FromMilliseconds(300));

    private void ResetScript() => Fake.Script = _ => new PredictionScript(TimeSpan.FromMilliseconds(300));

    /// <summary>Submits an image whose prediction runs a minute; its execution id once it awaits the webhook.</summary>
    private async Task<string> SubmitSlowAsync(TestAccount account, string marker)
    {
        ScriptFor(marker, new PredictionScript(TimeSpan.FromSeconds(60)));
        var submitted = await account.Client.SubmitAsync("replicate/flux", $$"""{"prompt":"{{marker}}"}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        return id;
    }

    [Fact]
    public async Task Image_completes_through_the_signed_webhook_and_its_artifacts_outlive_the_provider_urls()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "lighthouse-" + Guid.NewGuid().ToString("N");

        var submitted = await account.Client.SubmitAsync("replicate/flux", $$$"""{"prompt":"{{{marker}}}","n":2,"size":"1024x768","provider_options":{"go_fast":true}}""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;

        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var done = await account.Client.WaitForTerminalAsync(id);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.006000"); // 2 images × $0.003

        // What Replicate received: the official-model endpoint, translated input, the callback URL.
        var create = Fake.Requests.Single(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal));
        create.Path.ShouldBe("/v1/models/black-forest-labs/flux-schnell/predictions");
        create.Authorization.ShouldBe("Bearer " + FakeReplicate.ApiKey);
        var input = create.Json.GetProperty("input");
        input.GetProperty("prompt").GetString().ShouldBe(marker);
        input.GetProperty("num_outputs").GetInt32().ShouldBe(2);
        input.GetProperty("aspect_ratio").GetString().ShouldBe("4:3");
        input.GetProperty("go_fast").GetBoolean().ShouldBeTrue();
        create.Json.GetProperty("webhook").GetString()!.ShouldContain($"/v1/provider-callbacks/rep/{id}?token=");
        create.Json.GetProperty("webhook_events_filter").EnumerateArray().Select(e => e.GetString()).ShouldBe(["completed"]);
        await Eventually.HoldsAsync(() => Fake.Webhooks.Any(w => w.Url.Contains(id, StringComparison.Ordinal) && w.Status == 200), "the webhook was answered 200");
        var predictionId = Fake.PredictionFor(marker);
        Fake.Requests.ShouldNotContain(r => r.Method == "GET" && r.Path == $"/v1/predictions/{predictionId}"); // The webhook, not a poll.

        // The output in canonical form, and files that stay downloadable after Replicate's URLs expire.
        var images = done.GetProperty("output").GetProperty("images").EnumerateArray().ToList();
        images.Select(i => i.GetProperty("artifact").GetString()).ShouldBe(["image-0.png", "image-1.png"]);
        Fake.FilesAvailable = false;
        try
        {
            foreach (var (image, index) in images.Select((image, index) => (image, index)))
            {
                var download = await account.Client.GetAsync(image.GetProperty("url").GetString());
                download.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
                download.Content.Headers.ContentType!.MediaType.ShouldBe("image/png");
                var bytes = await download.Content.ReadAsByteArrayAsync();
                bytes.Take(4).ShouldBe(new byte[] { 0x89, 0x50, 0x4E, 0x47 });
                bytes.ShouldBe(FakeReplicate.FileBytes(predictionId, $"out-{index}.png"));
            }
        }
        finally
        {
            Fake.FilesAvailable = true;
        }

        done.ToString().ShouldNotContain(FakeReplicate.ApiKey);
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Body.ShouldNotContain(FakeReplicate.ApiKey);
        await Ledger.AssertBalancedAsync(account.Client);
    }

    [Fact]
    public async Task A_versioned_model_goes_to_the_generic_predictions_endpoint_with_its_version()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "versioned-" + Guid.NewGuid().ToString("N");

        var submitted = await account.Client.SubmitAsync("replicate/sdxl", $$"""{"prompt":"{{marker}}"}""");
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.005000");
        var create = Fake.Requests.Single(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal));
        create.Path.ShouldBe("/v1/predictions");
        create.Json.GetProperty("version").GetString().ShouldBe("7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc");
    }

    [Fact]
    public async Task Video_is_charged_by_the_requested_duration()
    {
        using var account = await world.Gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("replicate/video", """{"prompt":"waves","duration_seconds":4}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.400000"); // 4 s × $0.10
        done.GetProperty("output").GetProperty("video").GetProperty("artifact").GetString().ShouldBe("video.mp4");
        done.GetProperty("output").GetProperty("duration_seconds").GetInt32().ShouldBe(4);
        var download = await account.Client.GetAsync($"/v1/executions/{id}/artifacts/video.mp4");
        download.StatusCode.ShouldBe(System.Net.HttpStatusCode.OK);
        download.Content.Headers.ContentType!.MediaType.ShouldBe("video/mp4");
    }

    [Fact]
    public async Task A_webhook_with_a_bad_signature_is_refused_401_and_changes_nothing()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "forged-" + Guid.NewGuid().ToString("N");
        ScriptFor(marker, new PredictionScript(TimeSpan.FromMilliseconds(200)));
        Fake.SigningSecret = "whsec_" + Convert.ToBase64String("not-the-secret-you-know-01"u8.ToArray());
        string id;
        try
        {
            var submitted = await account.Client.SubmitAsync("replicate/flux", $$"""{"prompt":"{{marker}}"}""");
            id = submitted.Json.GetProperty("id").GetString()!;
            await Eventually.HoldsAsync(() => Fake.Webhooks.Any(w => w.Url.Contains(id, StringComparison.Ordinal)), "the webhook was sent");
        }
        finally
        {
            Fake.SigningSecret = FakeReplicate.WebhookSecret;
            ResetScript();
        }

        var webhook = Fake.Webhooks.Single(w => w.Url.Contains(id, StringComparison.Ordinal));
        webhook.Status.ShouldBe(401, webhook.Body);
        var execution = await account.Client.GetApiAsync($"/v1/executions/{id}");
        execution.Json.GetProperty("status").GetString().ShouldBe("AWAITING_WEBHOOK");
        execution.Json.GetProperty("output").ValueKind.ShouldBe(System.Text.Json.JsonValueKind.Null);
    }

    [Fact]
    public async Task A_stale_or_missing_signature_is_refused_even_with_the_right_token()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "replay-" + Guid.NewGuid().ToString("N");
        try
        {
            var id = await SubmitSlowAsync(account, marker);
            var create = Fake.Requests.Single(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal));
            var callback = new Uri(create.Json.GetProperty("webhook").GetString()!);
            var body = $$"""{"id":"x","status":"succeeded","output":["{{Fake.BaseUrl}}/files/x/out-0.png"]}""";

            using var anonymous = world.Gateway.Anonymous();
            var stale = DateTimeOffset.UtcNow.AddMinutes(-6).ToUnixTimeSeconds();
            foreach (var headers in new[]
            {
                new Dictionary<string, string>(), // unsigned
                new() { ["webhook-id"] = "msg_1", ["webhook-timestamp"] = stale.ToString(System.Globalization.CultureInfo.InvariantCulture), ["webhook-signature"] = ModelRoute.Server.Webhooks.WebhookSigner.Sign(FakeReplicate.WebhookSecret, "msg_1", stale, body) },
            })
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, callback.PathAndQuery) { Content = RequestExtensions.Json(body) };
                foreach (var (name, value) in headers)
                {
                    request.Headers.Add(name, value);
                }

                using var response = await anonymous.SendAsync(request);
                ((int)response.StatusCode).ShouldBe(401);
            }

            (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("AWAITING_WEBHOOK");
            (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);
        }
        finally
        {
            ResetScript();
        }
    }

    [Fact]
    public async Task Cancelling_an_execution_awaiting_the_webhook_cancels_the_prediction()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "slow-" + Guid.NewGuid().ToString("N");
        try
        {
            var id = await SubmitSlowAsync(account, marker);
            var predictionId = Fake.PredictionFor(marker);

            (await account.Client.PostJsonAsync($"/v1/executions/{id}/cancel", "{}")).Status.ShouldBe(202);

            await Eventually.HoldsAsync(() => Fake.Cancels.Contains(predictionId), "the prediction was cancelled at Replicate");
            Fake.Requests.ShouldContain(r => r.Method == "POST" && r.Path == $"/v1/predictions/{predictionId}/cancel" && r.Authorization == "Bearer " + FakeReplicate.ApiKey);
            (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("CANCELLED");
        }
        finally
        {
            ResetScript();
        }
    }

    [Theory]
    [InlineData("NSFW content detected. Try running it again, or try a different prompt.", "CONTENT_POLICY_VIOLATION", false)]
    [InlineData("ValueError: width must be a multiple of 8", "PROVIDER_ERROR", false)]
    public async Task A_failed_prediction_fails_the_execution_with_the_mapped_code(string error, string code, bool retryable)
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "fails-" + Guid.NewGuid().ToString("N");
        ScriptFor(marker, new PredictionScript(TimeSpan.FromMilliseconds(200), Error: error));
        try
        {
            var submitted = await account.Client.SubmitAsync("replicate/flux", $$"""{"prompt":"{{marker}}"}""");
            var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

            done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
            done.GetProperty("error").GetProperty("code").GetString().ShouldBe(code);
            done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBe(retryable);
            done.GetProperty("error").GetProperty("message").GetString()!.ShouldContain(error);
            Fake.Requests.Count(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal)).ShouldBe(1); // Not retried.
            await Ledger.AssertBalancedAsync(account.Client);
        }
        finally
        {
            ResetScript();
        }
    }

    [Fact]
    public async Task A_429_at_create_is_retried_after_its_retry_after_and_then_succeeds()
    {
        using var account = await world.Gateway.CreateAccountAsync();
        var marker = "throttled-" + Guid.NewGuid().ToString("N");
        Fake.CreateErrors.Enqueue((429, 1));

        var submitted = await account.Client.SubmitAsync("replicate/flux", $$"""{"prompt":"{{marker}}"}""");
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.003000");
        var creates = Fake.Requests.Where(r => r.Method == "POST" && r.Body.Contains(marker, StringComparison.Ordinal)).ToList();
        creates.Count.ShouldBe(2);
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        done.GetProperty("attempt_log").ToString().ShouldContain("PROVIDER_RATE_LIMITED");
    }

    [Fact]
    public async Task A_wrong_api_key_fails_with_provider_auth_failed_and_no_secret_in_the_execution()
    {
        using var account = await world.Gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("replicate/badkey", """{"prompt":"anything"}""");
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);

        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("error").GetProperty("code").GetString().ShouldBe("PROVIDER_AUTH_FAILED");
        done.GetProperty("error").GetProperty("retryable").GetBoolean().ShouldBeFalse();
        done.GetProperty("error").GetProperty("message").GetString()!.ShouldContain("valid authentication token");
        done.ToString().ShouldNotContain("r8_wrong_key");
    }
}

public sealed class ReplicatePollingTests
{
    [Fact]
    public async Task A_dropped_webhook_is_recovered_by_polling_the_prediction()
    {
        await using var fake = await FakeReplicate.StartAsync();
        fake.Script = _ => new PredictionScript(TimeSpan.FromMilliseconds(200), DropWebhook: true);
        await using var gateway = new GatewayFactory(ReplicateWorld.Settings(fake.BaseUrl, pollInterval: "00:00:01"));
        using var account = await gateway.CreateAccountAsync();

        var submitted = await account.Client.SubmitAsync("replicate/flux", """{"prompt":"no webhook","n":3}""");
        var id = submitted.Json.GetProperty("id").GetString()!;
        await account.Client.WaitForStatusAsync(id, "AWAITING_WEBHOOK");
        var predictionId = fake.Created.Single().Id;
        var done = await account.Client.WaitForTerminalAsync(id);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.009000");
        fake.Webhooks.ShouldBeEmpty();
        fake.Requests.ShouldContain(r => r.Method == "GET" && r.Path == $"/v1/predictions/{predictionId}" && r.Authorization == "Bearer " + FakeReplicate.ApiKey);
        done.GetProperty("artifacts").GetArrayLength().ShouldBe(3);
    }
}
