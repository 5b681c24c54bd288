namespace ModelRoute.Tests.Operations;

/// <summary>
/// docs/observability.md#traces on PostgreSQL: a node killed mid-attempt (SIGKILL) leaves its execution to another node,
/// whose run (with its settlement) and attempt are spans of the trace the execution was submitted in.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class TracingCrashTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("trace-crash");

    [Fact]
    public async Task Work_resumed_on_another_node_after_a_crash_mid_attempt_stays_in_the_submitters_trace()
    {
        var cluster = await PostgresCluster.SharedAsync();
        var database = await cluster.CreateDatabaseAsync("tracecrash");
        try
        {
            var settings = new Dictionary<string, string>
            {
                ["ModelRoute:AdminKey"] = GatewayFactory.AdminKey,
                ["ModelRoute:Store:Kind"] = "postgres",
                ["ModelRoute:Store:ConnectionString"] = cluster.ConnectionString(database),
                ["ModelRoute:Dispatch:LeaseDuration"] = "00:00:02",
                ["ModelRoute:Dispatch:SweepInterval"] = "00:00:00.100",
                ["ModelRoute:Dispatch:PollInterval"] = "00:00:00.050",
                ["ModelRoute:Dispatch:RetryBaseDelay"] = "00:00:00.050",
            };
            var (traceParent, traceId, _) = TracingCapture.NewSubmitterContext();
            string key, id;
            await using (var first = await GatewayProcess.StartAsync(Directory.CreateDirectory(Path.Combine(_directory, "first")).FullName, settings))
            {
                key = await first.CreateFundedKeyAsync();
                using var client = first.Client(key);
                id = await TracingCapture.SubmitTextAsync(client, traceParent, """{"latency_ms":4000}""");
                await client.WaitForStatusAsync(id, "PROCESSING");
                first.Kill();
            }

            var spans = new TracingCapture();
            await using var second = new GatewayFactory(settings.ToDictionary(s => s.Key, s => (string?)s.Value), spans.Services);
            using var survivor = second.WithBearer(key);
            var done = await survivor.WaitForTerminalAsync(id, seconds: 60);
            await Eventually.HoldsAsync(() => TracingCapture.Settlements(spans.Of(id)).Count > 0, "the survivor's settling run span ended");

            done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
            done.GetProperty("attempts").GetInt32().ShouldBe(2, "the killed node's attempt, and the survivor's");
            done.GetProperty("trace_id").GetString().ShouldBe(traceId);
            var resumed = spans.Of(id);
            resumed.Select(s => s.OperationName).Distinct().Order().ShouldBe(["modelroute.execution.run", "modelroute.provider.attempt"]);
            TracingCapture.Settlements(resumed).ShouldHaveSingleItem().GetTagItem("modelroute.execution.status").ShouldBe("COMPLETED");
            resumed.ShouldAllBe(s => s.TraceId.ToHexString() == traceId, "the survivor's spans are in the submitter's trace");
            var run = resumed.First(s => s.OperationName == "modelroute.execution.run");
            run.ParentSpanId.ShouldNotBe(default, "parented on the context stored at submission");
            resumed.Single(s => s.OperationName == "modelroute.provider.attempt").GetTagItem("modelroute.attempt").ShouldBe(2);
        }
        finally
        {
            await cluster.DropDatabaseAsync(database);
        }
    }

    public void Dispose() => TestPaths.TryDelete(_directory);
}
