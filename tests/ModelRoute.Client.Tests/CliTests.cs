using System.Diagnostics;
using System.Text.Json;
using ModelRoute.Client.Tests.Infrastructure;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Client.Tests;

/// <summary>The modelroute tool run as a process (<c>dotnet modelroute.dll</c>) against the gateway on a real socket.</summary>
public sealed class CliTests(ClientGatewayFixture fixture) : IClassFixture<ClientGatewayFixture>
{
    private ClientGateway Gateway => fixture.Gateway;

    private async Task<Dictionary<string, string>> EnvironmentAsync()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        return new Dictionary<string, string> { ["MODELROUTE_URL"] = Gateway.BaseAddress.ToString(), ["MODELROUTE_API_KEY"] = key };
    }

    [Fact]
    public async Task Submit_wait_prints_a_completed_execution_and_exits_0()
    {
        var environment = await EnvironmentAsync();
        var run = await Cli.RunAsync(["submit", "sim/text", "--message", "Say hello", "--wait"], environment);
        run.ExitCode.ShouldBe(0, run.ToString());
        run.Stdout.ShouldContain("status: COMPLETED", customMessage: run.ToString());
        run.Stdout.ShouldContain("Simulated reply from text: Say hello", customMessage: run.ToString());
        run.Stdout.ShouldMatch(@"exe_\w+\s+COMPLETED\s+sim/text");

        var json = await Cli.RunAsync(["submit", "sim/text", "--input", """{"messages":[{"role":"user","content":"json"}]}""", "--wait", "--json", "-k", "cli-json-1"], environment);
        json.ExitCode.ShouldBe(0, json.ToString());
        var execution = JsonDocument.Parse(json.Stdout).RootElement;
        execution.GetProperty("status").GetString().ShouldBe("COMPLETED");
        execution.GetProperty("idempotency_key").GetString().ShouldBe("cli-json-1");

        var id = execution.GetProperty("id").GetString()!;
        var get = await Cli.RunAsync(["get", id, "--json"], environment);
        get.ExitCode.ShouldBe(0, get.ToString());
        JsonDocument.Parse(get.Stdout).RootElement.GetProperty("id").GetString().ShouldBe(id);
        var wait = await Cli.RunAsync(["wait", id], environment);
        wait.ExitCode.ShouldBe(0, wait.ToString());
        wait.Stdout.ShouldContain("COMPLETED");
    }

    [Fact]
    public async Task An_execution_that_fails_exits_1_and_cancel_then_wait_exits_1()
    {
        var environment = await EnvironmentAsync();
        var failed = await Cli.RunAsync(["submit", "sim/text", "-m", "x", "--input-unused"], environment);
        failed.ExitCode.ShouldBe(2, failed.ToString());

        var run = await Cli.RunAsync(["submit", "sim/text", "--input", """{"messages":[{"role":"user","content":"x"}],"simulate":{"fail":"content_policy"}}""", "--wait"], environment);
        run.ExitCode.ShouldBe(1, run.ToString());
        run.Stdout.ShouldContain("FAILED");
        run.Stdout.ShouldContain("CONTENT_POLICY_VIOLATION");

        var slow = await Cli.RunAsync(["submit", "sim/text", "--input", """{"messages":[{"role":"user","content":"x"}],"simulate":{"latency_ms":20000}}""", "--json"], environment);
        slow.ExitCode.ShouldBe(0, slow.ToString());
        var id = JsonDocument.Parse(slow.Stdout).RootElement.GetProperty("id").GetString()!;
        var timedOut = await Cli.RunAsync(["wait", id, "--timeout", "1"], environment);
        timedOut.ExitCode.ShouldBe(5, timedOut.ToString());
        (await Cli.RunAsync(["cancel", id], environment)).ExitCode.ShouldBe(0);
        var cancelled = await Cli.RunAsync(["wait", id], environment);
        cancelled.ExitCode.ShouldBe(1, cancelled.ToString());
        cancelled.Stdout.ShouldContain("CANCELLED");

        var again = await Cli.RunAsync(["cancel", id], environment);
        again.ExitCode.ShouldBe(3, again.ToString());
        again.Stderr.ShouldContain("INVALID_STATE");
    }

    [Fact]
    public async Task Batch_of_200_lines_run_twice_creates_200_executions_not_400()
    {
        var environment = await EnvironmentAsync();
        var folder = TestPaths.NewTempDirectory("cli-batch");
        try
        {
            var file = Path.Combine(folder, "prompts.jsonl");
            await File.WriteAllLinesAsync(file, Enumerable.Range(1, 200).Select(i =>
                $$$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"line {{{i % 7}}}"}]},"metadata":{"n":{{{i % 3}}}}}"""));

            var first = await Cli.RunAsync(["batch", file, "--chunk-size", "64"], environment);
            first.ExitCode.ShouldBe(0, first.ToString());
            first.Stdout.ShouldContain("200 created, 0 already submitted, 0 rejected");
            var results = Path.Combine(folder, "prompts.results.jsonl");
            var lines = (await File.ReadAllLinesAsync(results)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            lines.Count.ShouldBe(200);
            lines.Select(l => l.GetProperty("line").GetInt32()).ShouldBe(Enumerable.Range(1, 200));
            lines.ShouldAllBe(l => l.GetProperty("status").GetInt32() == 202);
            var ids = lines.Select(l => l.GetProperty("execution").GetProperty("id").GetString()).ToHashSet();
            ids.Count.ShouldBe(200);

            var second = await Cli.RunAsync(["batch", file, "--wait", "--json"], environment);
            second.ExitCode.ShouldBe(0, second.ToString());
            var summary = JsonDocument.Parse(second.Stdout).RootElement;
            summary.GetProperty("created").GetInt32().ShouldBe(0);
            summary.GetProperty("replayed").GetInt32().ShouldBe(200);
            summary.GetProperty("completed").GetInt32().ShouldBe(200);
            var again = (await File.ReadAllLinesAsync(results)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("execution")).ToList();
            again.Select(e => e.GetProperty("id").GetString()).ToHashSet().SetEquals(ids).ShouldBeTrue();
            again.ShouldAllBe(e => e.GetProperty("status").GetString() == "COMPLETED");

            using var client = Gateway.Client(environment["MODELROUTE_API_KEY"]);
            var all = new List<Execution>();
            await foreach (var e in client.ListAsync(new ListExecutionsOptions { PageSize = 100 }))
            {
                all.Add(e);
            }

            all.Count.ShouldBe(200);

            var list = await Cli.RunAsync(["list", "--limit", "5"], environment);
            list.ExitCode.ShouldBe(0, list.ToString());
            list.Stdout.ShouldContain("STATUS");
            list.Stdout.ShouldContain("COMPLETED");
            list.Stdout.ShouldContain("5 execution(s); more with --limit or --all");
            var listed = await Cli.RunAsync(["list", "--all", "--json", "--status", "completed"], environment);
            JsonDocument.Parse(listed.Stdout).RootElement.GetArrayLength().ShouldBe(200);
        }
        finally
        {
            TestPaths.TryDelete(folder);
        }
    }

    [Fact]
    public async Task A_batch_with_bad_lines_writes_their_errors_and_exits_3()
    {
        var environment = await EnvironmentAsync();
        var folder = TestPaths.NewTempDirectory("cli-batch-bad");
        try
        {
            var file = Path.Combine(folder, "mixed.jsonl");
            await File.WriteAllLinesAsync(file,
            [
                """{"model":"sim/text","input":{"messages":[{"role":"user","content":"ok"}]}}""",
                "not json",
                """{"model":"no/such","input":{}}""",
            ]);
            var run = await Cli.RunAsync(["batch", file, "-o", Path.Combine(folder, "out.jsonl")], environment);
            run.ExitCode.ShouldBe(3, run.ToString());
            var lines = (await File.ReadAllLinesAsync(Path.Combine(folder, "out.jsonl"))).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            lines.Count.ShouldBe(3);
            lines[0].GetProperty("status").GetInt32().ShouldBe(202);
            lines[1].GetProperty("error").GetProperty("code").GetString().ShouldBe("INVALID_LINE");
            lines[2].GetProperty("error").GetProperty("code").GetString().ShouldBe("MODEL_NOT_FOUND");
        }
        finally
        {
            TestPaths.TryDelete(folder);
        }
    }

    [Fact]
    public async Task Bad_flags_give_a_usage_message_and_exit_2()
    {
        var unknown = await Cli.RunAsync(["submit", "sim/text", "--no-such-flag"]);
        unknown.ExitCode.ShouldBe(2, unknown.ToString());
        unknown.Stderr.ShouldContain("--no-such-flag");
        unknown.Stderr.ShouldContain("Usage:");

        var missing = await Cli.RunAsync(["get"]);
        missing.ExitCode.ShouldBe(2, missing.ToString());
        missing.Stderr.ShouldContain("Usage:");

        var nothing = await Cli.RunAsync([]);
        nothing.ExitCode.ShouldBe(2, nothing.ToString());

        var badType = await Cli.RunAsync(["list", "--limit", "many"]);
        badType.ExitCode.ShouldBe(2, badType.ToString());

        var badInput = await Cli.RunAsync(["submit", "sim/text", "--input", "{not json"]);
        badInput.ExitCode.ShouldBe(2, badInput.ToString());
        badInput.Stderr.ShouldContain("--input is not valid JSON");

        var badUrl = await Cli.RunAsync(["balance", "--url", "ftp://x"]);
        badUrl.ExitCode.ShouldBe(2, badUrl.ToString());
    }

    [Fact]
    public async Task Api_errors_exit_3_and_connection_errors_exit_4()
    {
        var environment = await EnvironmentAsync();
        var notFound = await Cli.RunAsync(["get", "exe_nope", "--json"], environment);
        notFound.ExitCode.ShouldBe(3, notFound.ToString());
        JsonDocument.Parse(notFound.Stderr).RootElement.GetProperty("code").GetString().ShouldBe("NOT_FOUND");

        var unauthenticated = await Cli.RunAsync(["balance", "--api-key", "mr_wrong"], environment);
        unauthenticated.ExitCode.ShouldBe(3, unauthenticated.ToString());
        unauthenticated.Stderr.ShouldContain("UNAUTHENTICATED");

        var closed = await Cli.RunAsync(["balance", "--url", "http://127.0.0.1:9"], environment);
        closed.ExitCode.ShouldBe(4, closed.ToString());
        closed.Stderr.ShouldContain("cannot reach the gateway");
    }

    [Fact]
    public async Task Admin_commands_create_an_account_a_key_and_credit_it()
    {
        var admin = new Dictionary<string, string> { ["MODELROUTE_URL"] = Gateway.BaseAddress.ToString(), ["MODELROUTE_ADMIN_KEY"] = ClientGateway.AdminKey };
        var account = await Cli.RunAsync(["admin", "create-account", "--name", "cli", "--json"], admin);
        account.ExitCode.ShouldBe(0, account.ToString());
        var accountId = JsonDocument.Parse(account.Stdout).RootElement.GetProperty("id").GetString()!;

        var key = await Cli.RunAsync(["admin", "create-key", accountId], admin);
        key.ExitCode.ShouldBe(0, key.ToString());
        var apiKey = key.Stdout.Trim();
        apiKey.ShouldStartWith("mr_");

        var credit = await Cli.RunAsync(["admin", "add-credit", accountId, "7.25", "--reference", "inv-1"], admin);
        credit.ExitCode.ShouldBe(0, credit.ToString());
        credit.Stdout.ShouldContain("credit 7.250000");

        var user = new Dictionary<string, string> { ["MODELROUTE_URL"] = Gateway.BaseAddress.ToString(), ["MODELROUTE_API_KEY"] = apiKey };
        var balance = await Cli.RunAsync(["balance", "--json"], user);
        balance.ExitCode.ShouldBe(0, balance.ToString());
        JsonDocument.Parse(balance.Stdout).RootElement.GetProperty("available").GetDecimal().ShouldBe(7.25m);
        (await Cli.RunAsync(["balance"], user)).Stdout.ShouldContain("available  7.250000 usd");

        var forbidden = await Cli.RunAsync(["admin", "create-account"], user);
        forbidden.ExitCode.ShouldBe(3, forbidden.ToString());
        forbidden.Stderr.ShouldContain("FORBIDDEN");
    }

    [Fact]
    public async Task Webhooks_listen_registers_an_endpoint_verifies_and_prints_events()
    {
        var environment = await EnvironmentAsync();
        using var process = Process.Start(Cli.StartInfo(["webhooks", "listen", "--max-events", "1", "--json"], environment))!;
        var stderr = new System.Text.StringBuilder();
        var ready = new TaskCompletionSource();
        process.ErrorDataReceived += (_, e) =>
        {
            lock (stderr)
            {
                stderr.AppendLine(e.Data);
            }

            if (e.Data?.Contains("ready", StringComparison.Ordinal) == true)
            {
                ready.TrySetResult();
            }
        };
        process.BeginErrorReadLine();
        var stdout = process.StandardOutput.ReadToEndAsync();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
            using var client = Gateway.Client(environment["MODELROUTE_API_KEY"]);
            var submitted = await client.SubmitAsync(new SubmitExecutionRequest
            {
                Model = "sim/text",
                Input = JsonDocument.Parse("""{"messages":[{"role":"user","content":"listen"}]}""").RootElement,
            });
            await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            process.ExitCode.ShouldBe(0, stderr.ToString());
            var e = JsonDocument.Parse(await stdout).RootElement;
            e.GetProperty("type").GetString().ShouldBe("execution.completed");
            e.GetProperty("data").GetProperty("id").GetString().ShouldBe(submitted.Id);
            stderr.ToString().ShouldContain("deleted endpoint we_");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }
}
