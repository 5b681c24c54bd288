using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace ModelRoute.Bench;

/// <summary>The already-built Release gateway as its own process on a loopback port.</summary>
public sealed class GatewayHost : IAsyncDisposable
{
    public const string AdminKey = "bench-admin-key-0123456789abcdefghij";

    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();

    private GatewayHost(Process process, string baseUrl, string dataDirectory)
    {
        _process = process;
        BaseUrl = baseUrl;
        DataDirectory = dataDirectory;
    }

    public string BaseUrl { get; }

    public string DataDirectory { get; }

    public int Pid => _process.Id;

    public static async Task<GatewayHost> StartAsync(string serverDll, string storeKind, string? connectionString)
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"modelroute-bench-{storeKind}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dataDirectory);
        var url = $"http://127.0.0.1:{FreePort()}";
        var process = Process.Start(StartInfo(serverDll, url, dataDirectory, storeKind, connectionString)) ?? throw new InvalidOperationException("dotnet did not start");
        var host = new GatewayHost(process, url, dataDirectory);
        process.OutputDataReceived += (_, e) => host.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => host.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await host.WaitUntilReadyAsync();
        return host;
    }

    private static ProcessStartInfo StartInfo(string serverDll, string url, string dataDirectory, string storeKind, string? connectionString)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = dataDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(serverDll);
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(url);
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["ModelRoute__AdminKey"] = AdminKey;
        start.Environment["ModelRoute__DataDirectory"] = dataDirectory;
        start.Environment["ModelRoute__Store__Kind"] = storeKind;
        if (connectionString is not null)
        {
            start.Environment["ModelRoute__Store__ConnectionString"] = connectionString;
        }

        start.Environment["ModelRoute__Polling__PermitsPerSecond"] = "1000000";
        start.Environment["ModelRoute__Polling__Burst"] = "1000000";
        start.Environment["ModelRoute__Webhooks__AllowPrivateNetworks"] = "true";
        start.Environment["ModelRoute__Webhooks__AllowHttp"] = "true";
        return start;
    }

    /// <summary>Polls <c>/readyz</c> for up to a minute; a gateway that exits or stays unready is reported with its last output.</summary>
    private async Task WaitUntilReadyAsync()
    {
        using var probe = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The gateway exited with {_process.ExitCode}: {Output}");
            }

            try
            {
                if ((await probe.GetAsync("/readyz")).IsSuccessStatusCode)
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
                await DisposeAsync();
                throw new TimeoutException($"The gateway did not become ready: {Output}");
            }

            await Task.Delay(100);
        }
    }

    public string Output
    {
        get
        {
            lock (_lastLines)
            {
                return string.Join('\n', _lastLines);
            }
        }
    }

    /// <summary>Resident set size of the gateway process, in MiB (VmRSS from /proc).</summary>
    public double RssMiB() => StatusMiB("VmRSS");

    /// <summary>
    /// The anonymous part of the resident set (the GC heap, native allocations such as SQLite's page caches), in MiB;
    /// the rest is mapped files (code, the SQLite file's shared memory).
    /// </summary>
    public double AnonymousRssMiB() => StatusMiB("RssAnon");

    private double StatusMiB(string field)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                var kb = long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
                return Math.Round(kb / 1024.0, 1);
            }
        }

        throw new InvalidOperationException($"{field} not found in /proc/{Pid}/status");
    }

    /// <summary>CPU seconds (user + system) the gateway has used.</summary>
    public double CpuSeconds() => CpuMeter.ProcessTicks(Pid) / CpuMeter.TicksPerSecond;

    /// <summary>The node's execution counters from <c>GET /metrics</c>.</summary>
    public async Task<GatewayCounters> CountersAsync(HttpClient client, CancellationToken cancellationToken = default) =>
        GatewayCounters.Parse(await client.GetStringAsync("/metrics", cancellationToken));

    public HttpClient AdminClient() => Client(AdminKey, 64);

    public HttpClient Client(string bearer, int maxConnections)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = maxConnections,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(10),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        var client = new HttpClient(handler) { BaseAddress = new Uri(BaseUrl), Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return client;
    }

    /// <summary>An account with an API key and a large credit; the key and the account's default webhook secret.</summary>
    public async Task<(string ApiKey, string WebhookSecret)> CreateAccountAsync()
    {
        using var admin = AdminClient();
        var account = await PostJsonAsync(admin, "/v1/admin/accounts", """{"name":"bench"}""");
        var accountId = account.GetProperty("id").GetString()!;
        var key = (await PostJsonAsync(admin, $"/v1/admin/accounts/{accountId}/api-keys", """{"name":"bench"}""")).GetProperty("key").GetString()!;
        for (var i = 0; i < 3; i++)
        {
            await PostJsonAsync(admin, $"/v1/admin/accounts/{accountId}/credits", $$"""{"amount_usd":"1000000.00","reference":"bench-{{i}}"}""");
        }

        using var api = Client(key, 4);
        using var secret = JsonDocument.Parse(await api.GetStringAsync("/v1/webhooks/default-secret"));
        return (key, secret.RootElement.GetProperty("secret").GetString()!);
    }

    public static async Task<JsonElement> PostJsonAsync(HttpClient client, string path, string json)
    {
        using var response = await client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var body = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST {path} answered {(int)response.StatusCode}: {body}");
        }

        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.Clone();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }

        return ValueTask.CompletedTask;
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            while (_lastLines.Count > 100)
            {
                _lastLines.Dequeue();
            }
        }
    }
}

/// <summary>
/// The counters of <c>GET /metrics</c>: executions accepted, and status changes by the status entered (each counted
/// once per entry, so a retry enters PENDING again). Counters the gateway does not print read as zero.
/// </summary>
public sealed record GatewayCounters(long Submitted, IReadOnlyDictionary<string, long> Entered)
{
    public long EnteredCount(string status) => Entered.GetValueOrDefault(status);

    /// <summary>Accepted and not yet in a terminal state.</summary>
    public long Unfinished => Submitted - Terminal;

    public long Terminal => EnteredCount("COMPLETED") + EnteredCount("FAILED") + EnteredCount("CANCELLED") + EnteredCount("EXPIRED");

    /// <summary>Waiting in PENDING for (re)dispatch: entries into PENDING not yet followed by one into PROCESSING.</summary>
    public long Pending => Math.Max(0, EnteredCount("PENDING") - EnteredCount("PROCESSING"));

    public static GatewayCounters Parse(string text)
    {
        long submitted = 0;
        var entered = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var space = line.LastIndexOf(' ');
            if (line.StartsWith('#') || space < 0
                || !long.TryParse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture, out var value))
            {
                continue;
            }

            var name = line[..space];
            if (name.StartsWith("modelroute_executions_submitted_total", StringComparison.Ordinal))
            {
                submitted += value; // one series per model
            }
            else if (name.StartsWith("modelroute_execution_transitions_total{", StringComparison.Ordinal) && Label(name, "status") is { } status)
            {
                entered[status] = entered.GetValueOrDefault(status) + value;
            }
        }

        return new GatewayCounters(submitted, entered);
    }

    /// <summary>The value of label <paramref name="label"/> in a series name such as <c>name{a="x",b="y"}</c>.</summary>
    private static string? Label(string series, string label)
    {
        var start = series.IndexOf(label + "=\"", StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        start += label.Length + 2;
        var end = series.IndexOf('"', start);
        return end < 0 ? null : series[start..end];
    }
}
