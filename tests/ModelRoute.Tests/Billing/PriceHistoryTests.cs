namespace ModelRoute.Tests.Billing;

/// <summary>The price used is kept on the execution, so a later price change never rewrites history.</summary>
public sealed class PriceHistoryTests : IDisposable
{
    private readonly string _dataDirectory = TestPaths.NewTempDirectory("prices");

    [Fact]
    public async Task An_execution_keeps_the_price_it_was_submitted_at_when_the_price_later_changes()
    {
        Dictionary<string, string> Settings(string inputPrice) => new()
        {
            ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
            ["ModelRoute:Models:sim/text:Pricing:InputPerMTok"] = inputPrice,
            ["ModelRoute:Models:sim/text:Pricing:OutputPerMTok"] = "0",
        };
        // 40 000 characters ≈ 10 000 tokens, so the hold covers the 5 000 tokens the simulator reports.
        var input = """{"messages":[{"role":"user","content":""" + $"\"{new string('x', 40_000)}\"" + """}],"simulate":{"latency_ms":0,"usage":{"input_tokens":5000,"output_tokens":0}}}""";

        string key, before;
        await using (var first = await GatewayProcess.StartAsync(_dataDirectory, Settings("1.00")))
        {
            using var admin = first.Client(GatewayFactory.AdminKey);
            var account = (await admin.PostJsonAsync("/v1/admin/accounts", "{}")).Json.GetProperty("id").GetString()!;
            key = (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
            (await admin.PostJsonAsync($"/v1/admin/accounts/{account}/credits", """{"amount_usd":"100"}""")).Status.ShouldBe(201);
            using var client = first.Client(key);
            before = (await client.SubmitAsync("sim/text", input)).Json.GetProperty("id").GetString()!;
            (await client.WaitForTerminalAsync(before)).GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.005000");
        }

        await using var second = await GatewayProcess.StartAsync(_dataDirectory, Settings("3.00"));
        using var restarted = second.Client(key);

        var old = (await restarted.GetApiAsync($"/v1/executions/{before}")).Json.GetProperty("cost");
        old.GetProperty("actual").GetString().ShouldBe("0.005000");
        old.GetProperty("pricing").GetProperty("input_per_mtok").GetString().ShouldBe("1.000000");
        var after = await restarted.WaitForTerminalAsync((await restarted.SubmitAsync("sim/text", input)).Json.GetProperty("id").GetString()!);
        after.GetProperty("cost").GetProperty("actual").GetString().ShouldBe("0.015000");
        after.GetProperty("cost").GetProperty("pricing").GetProperty("input_per_mtok").GetString().ShouldBe("3.000000");
    }

    public void Dispose() => TestPaths.TryDelete(_dataDirectory);
}
