using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>The gateway as a real operating-system process, to kill it (SIGKILL) and start it again.</summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private GatewayProcess(Process process, string baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public string BaseUrl { get; }

    /// <summary>The operating system's process id, e.g. to read its memory from /proc.</summary>
    public int ProcessId => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static Process Launch(string workingDirectory, IEnumerable<string> arguments, IDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ModelRoute.Server.dll"));
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start");
    }

    /// <summary>
    /// Starts the gateway in <paramref name="workingDirectory"/> where it is expected to stop on a configuration error
    /// (docs/configuration.md#start-up-checks), and waits for it to exit: its exit code and its stderr, trimmed. Whatever
    /// it wrote to stdout must hold no stack trace.
    /// </summary>
    public static async Task<(int ExitCode, string Errors)> LaunchExpectingConfigurationErrorAsync(
        string workingDirectory, IEnumerable<string> arguments, IDictionary<string, string>? environment = null)
    {
        using var process = Launch(workingDirectory, arguments, environment ?? new Dictionary<string, string>());
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);

        (await stdout).ShouldNotContain("   at ");
        return (process.ExitCode, (await stderr).Trim());
    }

    /// <summary>Starts the gateway in <paramref name="dataDirectory"/> and waits until it answers /healthz.</summary>
    public static async Task<GatewayProcess> StartAsync(string dataDirectory, IDictionary<string, string> settings)
    {
        var url = $"http://127.0.0.1:{FreePort()}";
        var environment = settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value);
        var gateway = new GatewayProcess(Launch(dataDirectory, ["--urls", url], environment), url);
        gateway._process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        gateway._process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        gateway._process.BeginOutputReadLine();
        gateway._process.BeginErrorReadLine();

        using var probe = new HttpClient { BaseAddress = new Uri(url) };
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            if (gateway._process.HasExited)
            {
                throw new InvalidOperationException($"The gateway exited with {gateway._process.ExitCode}: {gateway.Output}");
            }

            try
            {
                if ((await probe.GetAsync("/readyz")).IsSuccessStatusCode)
                {
                    return gateway;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                gateway.Kill();
                throw new TimeoutException($"The gateway did not become ready: {gateway.Output}");
            }

            await Task.Delay(100);
        }
    }

    public HttpClient Client(string? bearer = null)
    {
        var client = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        if (bearer is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearer);
        }

        return client;
    }

    /// <summary>A new account with <paramref name="creditUsd"/> credited, made with the admin key; its API key.</summary>
    public async Task<string> CreateFundedKeyAsync(string creditUsd = "10.00")
    {
        using var admin = Client(GatewayFactory.AdminKey);
        var id = (await admin.PostJsonAsync("/v1/admin/accounts", "{}")).Json.GetProperty("id").GetString()!;
        var key = (await admin.PostJsonAsync($"/v1/admin/accounts/{id}/api-keys", "{}")).Json.GetProperty("key").GetString()!;
        (await admin.PostJsonAsync($"/v1/admin/accounts/{id}/credits", $$"""{"amount_usd":"{{creditUsd}}"}""")).Status.ShouldBe(201);
        return key;
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing, exactly like a crash.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }
}
