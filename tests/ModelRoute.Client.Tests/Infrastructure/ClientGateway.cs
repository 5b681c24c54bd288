using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using ModelRoute.Client;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Client.Tests.Infrastructure;

/// <summary>
/// The real gateway on a loopback socket (Kestrel), as tests/ModelRoute.Tests' GatewayFactory runs it. The server's
/// <c>Program</c> is internal to ModelRoute.Tests, so the factory is anchored on a public type of the server assembly.
/// </summary>
public sealed class ClientGateway : WebApplicationFactory<ModelRoute.Server.Hosting.ModelRouteOptions>
{
    public const string AdminKey = "test-admin-key-0123456789abcdefghij";

    private readonly Dictionary<string, string?> _settings;

    public ClientGateway() : this(null)
    {
    }

    public ClientGateway(IDictionary<string, string?>? settings)
    {
        DataDirectory = TestPaths.NewTempDirectory("client-gateway");
        _settings = TestGatewaySettings.Defaults(AdminKey, DataDirectory);
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            _settings[key] = value;
        }

        UseKestrel(0);
    }

    public string DataDirectory { get; }

    public CapturedLogs Logs { get; } = new();

    /// <summary>The gateway's real address (http://127.0.0.1:port/).</summary>
    public Uri BaseAddress
    {
        get
        {
            StartServer();
            using var client = CreateClient();
            return client.BaseAddress!;
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(configuration => configuration.AddInMemoryCollection(_settings));
        builder.ConfigureLogging(logging => logging.AddProvider(Logs).SetMinimumLevel(LogLevel.Information));
    }

    public ModelRouteClient Client(string? key, Action<ModelRouteClientOptions>? configure = null, DelegatingHandler? handler = null)
    {
        var options = new ModelRouteClientOptions { BaseAddress = BaseAddress, ApiKey = key };
        configure?.Invoke(options);
        var http = handler is null ? new HttpClient() : new HttpClient(handler) { };
        if (handler is not null)
        {
            handler.InnerHandler ??= new HttpClientHandler();
        }

        http.BaseAddress = BaseAddress;
        return new ModelRouteClient(http, options);
    }

    public ModelRouteClient Admin() => Client(AdminKey);

    public HttpClient Http(string key)
    {
        StartServer();
        var client = CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    /// <summary>A new account with a key and credit, made through the SDK's admin calls.</summary>
    public async Task<(string AccountId, string Key)> NewAccountAsync(decimal credit = 10m)
    {
        using var admin = Admin();
        var account = await admin.CreateAccountAsync("test");
        var key = await admin.CreateApiKeyAsync(account.Id, "test key");
        await admin.AddCreditAsync(account.Id, credit, "setup-" + account.Id);
        return (account.Id, key.Key);
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        TestPaths.TryDelete(DataDirectory);
    }
}

/// <summary>Counts requests (and their paths) that go through a client.</summary>
public sealed class CountingHandler : DelegatingHandler
{
    private int _count;

    public int Count => _count;

    public System.Collections.Concurrent.ConcurrentQueue<(string Path, int Status)> Log { get; } = new();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _count);
        var response = await base.SendAsync(request, cancellationToken);
        Log.Enqueue((request.RequestUri!.PathAndQuery, (int)response.StatusCode));
        return response;
    }
}

/// <summary>The CLI run as a process: <c>dotnet modelroute.dll …</c>.</summary>
public static class Cli
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    /// <summary>modelroute.dll in the CLI's bin folder, same configuration as these tests.</summary>
    public static string DllPath()
    {
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var path = Path.Combine(TestPaths.RepositoryRoot(), "src", "ModelRoute.Cli", "bin", configuration, "net10.0", "modelroute.dll");
        File.Exists(path).ShouldBeTrue($"{path} is missing; build src/ModelRoute.Cli");
        return path;
    }

    public static ProcessStartInfo StartInfo(IEnumerable<string> args, IDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(DllPath());
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("MODELROUTE_URL");
        start.Environment.Remove("MODELROUTE_API_KEY");
        start.Environment.Remove("MODELROUTE_ADMIN_KEY");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        return start;
    }

    public static async Task<Result> RunAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null, int timeoutSeconds = 120)
    {
        using var process = Process.Start(StartInfo(args, environment)) ?? throw new InvalidOperationException("dotnet did not start");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(timeoutSeconds));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"modelroute {string.Join(' ', args)} did not exit: {await stdout} {await stderr}");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }
}
