using System.Diagnostics;

namespace ModelRoute.Tests.Hosting;

/// <summary>
/// The deploy recipe (docs/deploy.md#the-recipe): the archive deploy/publish.sh makes runs on a fresh folder the way the
/// systemd unit starts it and serves an execution; the unit passes <c>systemd-analyze verify</c>. Publishing is slow
/// (self-contained, ReadyToRun), so it happens once per test run.
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class DeployRecipeTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static string? _archive;

    [Fact]
    public async Task The_published_archive_runs_on_a_fresh_folder_as_the_unit_starts_it_and_serves_an_execution()
    {
        var archive = await PublishOnceAsync();
        var root = TestPaths.NewTempDirectory("deploy-run");
        try
        {
            await RunAsync("tar", $"-xzf {archive} -C {root}", root);
            var install = Path.Combine(root, "modelroute");
            File.Exists(Path.Combine(install, "modelroute.service")).ShouldBeTrue("the unit travels in the archive");
            var state = Directory.CreateDirectory(Path.Combine(root, "state")).FullName;
            var port = GatewayProcess.FreePort();
            // As the unit does: its Environment= lines, the EnvironmentFile's settings, WorkingDirectory, ExecStart.
            var start = new ProcessStartInfo(Path.Combine(install, "ModelRoute.Server")) { WorkingDirectory = state, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
            start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
            foreach (var (key, value) in EnvironmentFile(Path.Combine(install, "modelroute.env.example"), port, state))
            {
                start.Environment[key] = value;
            }

            using var process = Process.Start(start)!;
            var logs = new StringBuilder();
            process.OutputDataReceived += (_, e) => { lock (logs) { logs.AppendLine(e.Data); } };
            process.ErrorDataReceived += (_, e) => { lock (logs) { logs.AppendLine(e.Data); } };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await SubmitThroughAsync($"http://127.0.0.1:{port}", () => { lock (logs) { return logs.ToString(); } });
            }
            finally
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            File.Exists(Path.Combine(state, "modelroute.db")).ShouldBeTrue("the SQLite store is in the data directory");
        }
        finally
        {
            TestPaths.TryDelete(root);
        }
    }

    [Fact]
    public async Task The_systemd_unit_passes_systemd_analyze_verify()
    {
        if (!File.Exists("/usr/bin/systemd-analyze") && !File.Exists("/bin/systemd-analyze"))
        {
            output.WriteLine("systemd-analyze is not installed here: the unit was not verified.");
            Environment.GetEnvironmentVariable("CI").ShouldNotBe("true", "CI has systemd-analyze (the systemd package)");
            return;
        }

        var directory = TestPaths.NewTempDirectory("deploy-unit");
        try
        {
            // The unit's ExecStart is /opt/modelroute/…, not installed here: verify checks that it is executable.
            var unit = (await File.ReadAllTextAsync(Path.Combine(TestPaths.RepositoryRoot(), "deploy", "modelroute.service")))
                .Replace("ExecStart=/opt/modelroute/ModelRoute.Server", "ExecStart=/bin/true", StringComparison.Ordinal);
            unit.ShouldContain("ExecStart=/bin/true");
            var path = Path.Combine(directory, "modelroute.service");
            await File.WriteAllTextAsync(path, unit);

            var (exitCode, all) = await RunAsync("systemd-analyze", $"verify {path}", directory, check: false);

            exitCode.ShouldBe(0, all);
            all.Trim().ShouldBeEmpty("a setting systemd does not understand is only a warning, so none is allowed");
            foreach (var setting in new[] { "User=modelroute", "EnvironmentFile=/etc/modelroute/modelroute.env", "NoNewPrivileges=true", "ProtectSystem=strict", "ReadWritePaths=/var/lib/modelroute", "Restart=on-failure" })
            {
                unit.ShouldContain(setting);
            }
        }
        finally
        {
            TestPaths.TryDelete(directory);
        }
    }

    /// <summary>The example environment file's active lines, with this test's address, data folder and admin key.</summary>
    private static Dictionary<string, string> EnvironmentFile(string path, int port, string state)
    {
        var settings = File.ReadAllLines(path)
            .Where(l => l.Length > 0 && !l.StartsWith('#') && l.Contains('=', StringComparison.Ordinal))
            .ToDictionary(l => l[..l.IndexOf('=', StringComparison.Ordinal)], l => l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..]);
        settings.ShouldContainKey("ModelRoute__AdminKey");
        settings["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        settings["ModelRoute__PublicBaseUrl"] = $"http://127.0.0.1:{port}";
        settings["ModelRoute__DataDirectory"] = state;
        settings["ModelRoute__AdminKey"] = GatewayFactory.AdminKey;
        return settings;
    }

    private static async Task SubmitThroughAsync(string baseUrl, Func<string> logs)
    {
        using var probe = new HttpClient { BaseAddress = new Uri(baseUrl) };
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    return (await probe.GetAsync("/readyz")).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            },
            "the published gateway is ready",
            seconds: 60);
        using var admin = new HttpClient { BaseAddress = new Uri(baseUrl) };
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", GatewayFactory.AdminKey);
        var id = (await admin.PostJsonAsync("/v1/admin/accounts", "{}")).Json.GetProperty("id").GetString()!;
        var key = (await admin.PostJsonAsync($"/v1/admin/accounts/{id}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        (await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", """{"amount_usd":"1.00"}""")).Status.ShouldBe(201);
        using var client = new HttpClient { BaseAddress = new Uri(baseUrl) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);

        var submitted = await client.SubmitTextAsync();
        submitted.Status.ShouldBe(202, submitted.Body + logs());
        var done = await client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!, seconds: 60);
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done + logs());
    }

    private async Task<string> PublishOnceAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_archive is null)
            {
                var repository = TestPaths.RepositoryRoot();
                var outputDirectory = TestPaths.NewTempDirectory("deploy-publish");
                var clock = Stopwatch.StartNew();
                var (_, all) = await RunAsync(Path.Combine(repository, "deploy", "publish.sh"), outputDirectory, repository);
                output.WriteLine($"Published in {clock.Elapsed.TotalSeconds:F0} s");
                _archive = Directory.GetFiles(outputDirectory, "*.tar.gz").Single();
                Path.GetFileName(_archive).ShouldEndWith("-linux-x64.tar.gz");
                File.Exists(_archive).ShouldBeTrue(all);
            }

            return _archive;
        }
        finally
        {
            Gate.Release();
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string command, string arguments, string directory, bool check = true)
    {
        var start = new ProcessStartInfo(command, arguments) { WorkingDirectory = directory, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        await process.WaitForExitAsync(timeout.Token);
        var all = await stdout + await stderr;
        if (check)
        {
            process.ExitCode.ShouldBe(0, all);
        }

        return (process.ExitCode, all);
    }
}
