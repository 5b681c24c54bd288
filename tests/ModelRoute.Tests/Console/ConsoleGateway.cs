namespace ModelRoute.Tests.Console;

/// <summary>A gateway for the console tests: the simulator's models, a model that fails over, and a provider whose circuit opens quickly.</summary>
public static class ConsoleGateway
{
    public static GatewayFactory Start(IDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["ModelRoute:Providers:primary:Kind"] = "simulator",
            ["ModelRoute:Providers:backup:Kind"] = "simulator",
            ["ModelRoute:Models:sim/failover:Modality"] = "text",
            ["ModelRoute:Models:sim/failover:Pricing:InputPerMTok"] = "1.00",
            ["ModelRoute:Models:sim/failover:Pricing:OutputPerMTok"] = "2.00",
            ["ModelRoute:Models:sim/failover:Routes:0:Provider"] = "primary",
            ["ModelRoute:Models:sim/failover:Routes:0:Model"] = "text-a",
            ["ModelRoute:Models:sim/failover:Routes:0:Priority"] = "0",
            ["ModelRoute:Models:sim/failover:Routes:1:Provider"] = "backup",
            ["ModelRoute:Models:sim/failover:Routes:1:Model"] = "text-b",
            ["ModelRoute:Models:sim/failover:Routes:1:Priority"] = "1",
            ["ModelRoute:Providers:flaky:Kind"] = "simulator",
            ["ModelRoute:Providers:flaky:CircuitBreaker:MinimumThroughput"] = "2",
            ["ModelRoute:Providers:flaky:CircuitBreaker:BreakDuration"] = "00:10:00",
            ["ModelRoute:Models:sim/flaky:Modality"] = "text",
            ["ModelRoute:Models:sim/flaky:Pricing:InputPerMTok"] = "1.00",
            ["ModelRoute:Models:sim/flaky:Routes:0:Provider"] = "flaky",
            ["ModelRoute:Models:sim/flaky:Routes:0:Model"] = "text",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new GatewayFactory(settings);
    }

    /// <summary>Submits a text execution whose prompt (echoed as its output) is <paramref name="prompt"/>; answers its id.</summary>
    public static async Task<string> SubmitAsync(this TestAccount account, string model, string prompt, string simulate = "{}", string? key = null, string extra = "")
    {
        var input = $$"""{"messages":[{"role":"user","content":{{JsonSerializer.Serialize(prompt)}}}],"simulate":{{simulate}}}""";
        var submitted = await account.Client.SubmitAsync(model, input, key is null ? null : JsonSerializer.Serialize(key)[1..^1], extra);
        submitted.Status.ShouldBe(202, submitted.Body);
        return submitted.Json.GetProperty("id").GetString()!;
    }
}
