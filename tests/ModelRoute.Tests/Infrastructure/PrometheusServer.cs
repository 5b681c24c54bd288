using System.Diagnostics;
using System.Globalization;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>One job Prometheus scrapes: <c>GET /metrics</c> at <paramref name="HostAndPort"/>, with a bearer token or none.</summary>
public sealed record ScrapeJob(string Name, string HostAndPort, string? BearerToken = null);

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c> package, as .ci/run installs it) on a private loopback port,
/// with a config and a TSDB directory of its own that are removed when it is disposed. It scrapes every second and
/// evaluates rules every second. There is no skipping: a machine without Prometheus fails these tests, saying so.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _log = new();
    private readonly HttpClient _http;

    private PrometheusServer(Process process, string directory, string baseUrl)
    {
        _process = process;
        _directory = directory;
        BaseUrl = baseUrl;
        _http = new HttpClient { BaseAddress = new Uri(baseUrl), Timeout = TimeSpan.FromSeconds(30) };
    }

    public string BaseUrl { get; }

    /// <summary>What Prometheus wrote (it logs to stderr), for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>The program to run: <c>PROMETHEUS</c> if set, else the one on the PATH (/usr/bin/prometheus here).</summary>
    public static string FindBinary(string name = "prometheus")
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable(name.ToUpperInvariant()) is { Length: > 0 } configured)
        {
            candidates.Add(configured);
        }

        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, name)));
        candidates.Add(Path.Combine("/usr/bin", name));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException(
                $"{name} was not found (looked at ${name.ToUpperInvariant()}, the PATH and /usr/bin): these tests need a real Prometheus; "
                + "install Debian's prometheus package (apt-get install prometheus; .ci/run does).");
    }

    /// <summary>Starts Prometheus scraping <paramref name="jobs"/> (and loading <paramref name="ruleFile"/>) and waits until it is ready.</summary>
    public static async Task<PrometheusServer> StartAsync(IReadOnlyList<ScrapeJob> jobs, string? ruleFile = null)
    {
        var binary = FindBinary();
        var directory = TestPaths.NewTempDirectory("prometheus");
        var config = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(config, Config(jobs, ruleFile));
        var url = $"http://127.0.0.1:{GatewayProcess.FreePort()}";
        var start = new ProcessStartInfo(binary) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(directory, "data")}",
                     $"--web.listen-address={new Uri(url).Authority}", "--log.level=warn",
                 })
        {
            start.ArgumentList.Add(argument);
        }

        var server = new PrometheusServer(Process.Start(start) ?? throw new InvalidOperationException($"{binary} did not start"), directory, url);
        server._process.OutputDataReceived += (_, e) => server.Append(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Kill();
        await server.WaitUntilReadyAsync();
        return server;
    }

    /// <summary>An instant query through <c>/api/v1/query</c>: each series' labels and value.</summary>
    public async Task<List<(Dictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var response = await _http.GetAsync($"/api/v1/query?query={Uri.EscapeDataString(promql)}");
        var body = await response.Content.ReadAsStringAsync();
        response.IsSuccessStatusCode.ShouldBeTrue($"{promql}: {(int)response.StatusCode} {body}");
        using var document = JsonDocument.Parse(body);
        var data = document.RootElement.GetProperty("data");
        data.GetProperty("resultType").GetString().ShouldBe("vector", promql);
        return [.. data.GetProperty("result").EnumerateArray().Select(series => (
            series.GetProperty("metric").EnumerateObject().ToDictionary(l => l.Name, l => l.Value.GetString()!),
            double.Parse(series.GetProperty("value")[1].GetString()!, NumberStyles.Float, CultureInfo.InvariantCulture)))];
    }

    /// <summary>Queries until <paramref name="promql"/> gives one series whose value satisfies <paramref name="expected"/>; that value.</summary>
    public async Task<double> WaitForValueAsync(string promql, Func<double, bool> expected, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        var last = new List<(Dictionary<string, string>, double Value)>();
        while (DateTime.UtcNow < deadline)
        {
            last = await QueryAsync(promql);
            if (last.Count == 1 && expected(last[0].Value))
            {
                return last[0].Value;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"{promql} gave [{string.Join(", ", last.Select(s => s.Value))}] for {seconds} s; targets: {await GetTextAsync("/api/v1/targets")}; log: {Log}");
    }

    /// <summary>The body of a GET on Prometheus's own API (e.g. <c>/api/v1/rules</c>).</summary>
    public async Task<string> GetTextAsync(string path)
    {
        using var response = await _http.GetAsync(path);
        return await response.Content.ReadAsStringAsync();
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        _http.Dispose();
        TestPaths.TryDelete(_directory);
        return ValueTask.CompletedTask;
    }

    private static string Config(IReadOnlyList<ScrapeJob> jobs, string? ruleFile)
    {
        var yaml = new StringBuilder("""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s

            """);
        if (ruleFile is not null)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"rule_files:\n  - '{ruleFile}'\n");
        }

        yaml.Append("scrape_configs:\n");
        foreach (var job in jobs)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"  - job_name: '{job.Name}'\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{job.HostAndPort}']\n");
            if (job.BearerToken is not null)
            {
                yaml.Append(CultureInfo.InvariantCulture, $"    authorization:\n      type: Bearer\n      credentials: '{job.BearerToken}'\n");
            }
        }

        return yaml.ToString();
    }

    private async Task WaitUntilReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Prometheus exited with {_process.ExitCode}: {Log}");
            }

            try
            {
                using var response = await _http.GetAsync("/-/ready");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                Kill();
                throw new TimeoutException($"Prometheus did not become ready in 60 s: {Log}");
            }

            await Task.Delay(100);
        }
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone (or disposed): nothing to end.
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }
}
