namespace ModelRoute.Tests.Infrastructure;

/// <summary>The configuration every test gateway starts from (shared by ModelRoute.Tests and ModelRoute.Client.Tests).</summary>
public static class TestGatewaySettings
{
    /// <summary>The admin key, a data directory of the test's own, and background workers tuned to test speed.</summary>
    public static Dictionary<string, string?> Defaults(string adminKey, string dataDirectory) => new()
    {
        ["ModelRoute:AdminKey"] = adminKey,
        ["ModelRoute:DataDirectory"] = dataDirectory,
        ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.020",
        ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.050",
        ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:00.010",
        ["ModelRoute:Dispatch:RetryMaxDelay"] = "00:00:00.100",
        ["ModelRoute:Dispatch:CallbackPollInterval"] = "00:00:05",
        ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:03",
        ["ModelRoute:Polling:PermitsPerSecond"] = "100000",
        ["ModelRoute:Polling:Burst"] = "100000",
        // Test receivers listen on loopback over plain http; the SSRF tests turn these off.
        ["ModelRoute:Webhooks:AllowPrivateNetworks"] = "true",
        ["ModelRoute:Webhooks:AllowHttp"] = "true",
    };
}
