using ModelRoute.Tests.Providers.OpenAI;

namespace ModelRoute.Tests.Providers.Artifacts;

/// <summary>
/// The OpenAI fake as an image provider, an internal "secret" service on another loopback port, and a gateway that
/// refuses private networks (http allowed, so that the address is what is judged). The fake's own host and port are
/// the provider's BaseUrl, which the gateway trusts for that provider's outputs (docs/artifacts.md).
/// </summary>
public sealed class ArtifactGateway : IAsyncLifetime
{
    public const string Image = "openai/dall-e-3";

    public OpenAIFake Fake { get; private set; } = null!;

    /// <summary>Must never be reached by an artifact copy.</summary>
    public WebhookReceiver Secret { get; private set; } = null!;

    /// <summary><c>localhost</c> is loopback; <c>rebind.test</c> answers a public address once, then loopback (DNS rebinding).</summary>
    public FakeHostResolver Resolver { get; } = new((host, n) => host switch
    {
        "localhost" => ["127.0.0.1", "::1"],
        "rebind.test" => n == 0 ? ["93.184.216.34"] : ["127.0.0.1"],
        _ => null,
    });

    public GatewayFactory Gateway { get; private set; } = null!;

    public int SecretPort => new Uri(Secret.BaseUrl).Port;

    public async Task InitializeAsync()
    {
        Fake = await OpenAIFake.StartAsync();
        Secret = await WebhookReceiver.StartAsync();
        Gateway = Start();
    }

    /// <summary>A gateway on the fake with these settings on top of the class's (a separate one for a control).</summary>
    public GatewayFactory Start(IDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "false",
            ["ModelRoute:Webhooks:AllowHttp"] = "true",
            ["ModelRoute:Artifacts:RetrySchedule:0"] = "00:00:00.200",
            ["ModelRoute:Artifacts:RetrySchedule:1"] = "00:00:00.400",
            ["ModelRoute:Dispatch:MaxAttempts"] = "2",
            ["ModelRoute:Providers:oai:Kind"] = "openai",
            ["ModelRoute:Providers:oai:BaseUrl"] = Fake.V1,
            ["ModelRoute:Providers:oai:ApiKey"] = OpenAIGateway.ApiKey,
            ["ModelRoute:Providers:oai:Timeout"] = "00:00:10",
            [$"ModelRoute:Models:{Image}:Modality"] = "image",
            [$"ModelRoute:Models:{Image}:Pricing:PerImage"] = "0.04",
            [$"ModelRoute:Models:{Image}:Routes:0:Provider"] = "oai",
            [$"ModelRoute:Models:{Image}:Routes:0:Model"] = "dall-e-3",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new GatewayFactory(settings, services => services.AddSingleton<ModelRoute.Server.Webhooks.IHostResolver>(Resolver));
    }

    /// <summary>The fake's next image answer gives this URL as the image.</summary>
    public void AnswerImageUrl(string url) =>
        Fake.AnswerNext(new OpenAIFakeAnswer(200, $$"""{"created":1733400000,"data":[{"url":"{{url}}"}]}"""));

    public int ProviderCalls => Fake.Requests.Count(r => r.Path == "/v1/images/generations");

    public static async Task<JsonElement> RunImageAsync(TestAccount account, string extra = "")
    {
        var submitted = await account.Client.SubmitAsync(Image, """{"prompt":"a lighthouse"}""", extra: extra);
        submitted.Status.ShouldBe(202, submitted.Body);
        return await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!, seconds: 60);
    }

    /// <summary>Nothing charged, the hold released, the ledger balanced.</summary>
    public static async Task AssertUnchargedAsync(TestAccount account)
    {
        var (balance, held, _) = await account.Client.BalanceAsync();
        held.ShouldBe(0, "the hold was released");
        balance.ShouldBe(10_000_000, "nothing was charged");
        (await account.Client.LedgerAsync()).ShouldNotContain(e => e.GetProperty("kind").GetString() == "charge");
        await Ledger.AssertBalancedAsync(account.Client);
    }

    public static List<string> Outcomes(JsonElement execution) =>
        [.. execution.GetProperty("attempt_log").EnumerateArray().Select(a => a.GetProperty("outcome").GetString()!)];

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        await Secret.DisposeAsync();
        await Fake.DisposeAsync();
    }
}
