using System.Diagnostics;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// A real S3-compatible server for the test run: moto's <c>moto_server</c> (pip <c>moto[server]</c>, which .ci/run
/// installs), on a private loopback port, watched so that it ends with the test process. The shared one accepts any
/// credentials; a private one may check them (moto's IAM, with a user of its own), so that wrong keys are refused as by
/// S3 (moto then refuses some valid requests too, such as a listing by prefix, so only start-up checks use it).
/// There is no skipping: a machine without moto fails these tests.
/// </summary>
public sealed class MotoServer : IAsyncDisposable
{
    private const string Region = "us-east-1";
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static MotoServer? _shared;

    private readonly bool _authenticated;
    private Process? _process;

    private MotoServer(int port, bool authenticated)
    {
        Port = port;
        _authenticated = authenticated;
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    public string AccessKeyId { get; private set; } = "test-access-key";

    public string SecretAccessKey { get; private set; } = "test-secret-key";

    /// <summary>The server of this test process, started on first use.</summary>
    public static async Task<MotoServer> SharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (_shared is null)
            {
                var server = new MotoServer(GatewayProcess.FreePort(), authenticated: false);
                await server.StartAsync();
                AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
                _shared = server;
            }

            return _shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>A server of the calling test's own, checking credentials or not; stopped by <see cref="DisposeAsync"/>.</summary>
    public static async Task<MotoServer> StartPrivateAsync(bool checkCredentials = false)
    {
        var server = new MotoServer(GatewayProcess.FreePort(), checkCredentials);
        await server.StartAsync();
        return server;
    }

    public IAmazonS3 Client() => new AmazonS3Client(
        new BasicAWSCredentials(AccessKeyId, SecretAccessKey),
        new AmazonS3Config { ServiceURL = Url, ForcePathStyle = true, AuthenticationRegion = Region, MaxErrorRetry = 0 });

    /// <summary>A new, empty bucket; its name.</summary>
    public async Task<string> CreateBucketAsync(string purpose)
    {
        var name = $"{purpose}-{Guid.NewGuid():N}"[..Math.Min(63, purpose.Length + 33)].ToLowerInvariant();
        using var client = Client();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>The gateway settings that keep new artifacts in <paramref name="bucket"/> here.</summary>
    public Dictionary<string, string?> Settings(string bucket, string keyPrefix = "") => new()
    {
        ["ModelRoute:Artifacts:Kind"] = "s3",
        ["ModelRoute:Artifacts:ServiceUrl"] = Url,
        ["ModelRoute:Artifacts:Bucket"] = bucket,
        ["ModelRoute:Artifacts:Region"] = Region,
        ["ModelRoute:Artifacts:AccessKeyId"] = AccessKeyId,
        ["ModelRoute:Artifacts:SecretAccessKey"] = SecretAccessKey,
        ["ModelRoute:Artifacts:ForcePathStyle"] = "true",
        ["ModelRoute:Artifacts:KeyPrefix"] = keyPrefix,
    };

    /// <summary>The keys in <paramref name="bucket"/>.</summary>
    public async Task<List<string>> KeysAsync(string bucket)
    {
        using var client = Client();
        var listed = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = bucket });
        return [.. (listed.S3Objects ?? []).Select(o => o.Key)];
    }

    /// <summary>
    /// Starts moto's request recorder afresh (its <c>/moto-api/recorder</c>), so that a test can count what the gateway
    /// asks of the bucket. Use a private server: the recorder sees every request to the server, bodies included.
    /// </summary>
    public async Task StartRecordingAsync()
    {
        using var http = new HttpClient();
        (await http.PostAsync($"{Url}/moto-api/recorder/reset-recording", null)).EnsureSuccessStatusCode();
        (await http.PostAsync($"{Url}/moto-api/recorder/start-recording", null)).EnsureSuccessStatusCode();
    }

    /// <summary>Stops the recorder; the method and URL of every request made since <see cref="StartRecordingAsync"/>.</summary>
    public async Task<List<(string Method, string Url)>> StopRecordingAsync()
    {
        using var http = new HttpClient();
        (await http.PostAsync($"{Url}/moto-api/recorder/stop-recording", null)).EnsureSuccessStatusCode();
        var lines = (await http.GetStringAsync($"{Url}/moto-api/recorder/download-recording")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return [.. lines.Select(line =>
        {
            using var entry = JsonDocument.Parse(line);
            return (entry.RootElement.GetProperty("method").GetString()!, entry.RootElement.GetProperty("url").GetString()!);
        })];
    }

    /// <summary>Stops the server (its objects are lost: moto keeps them in memory).</summary>
    public void Stop()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
    }

    /// <summary>Starts a stopped private server again on the same port, with <paramref name="bucket"/> made again.</summary>
    public async Task RestartAsync(string bucket)
    {
        await StartAsync();
        using var client = Client();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = bucket });
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _process?.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task StartAsync()
    {
        _process?.Dispose();
        // A shell watches this test process and ends the server with it, even when the test process is killed.
        var command = $"moto_server -H 127.0.0.1 -p {Port} >/dev/null 2>&1 & m=$!; trap 'kill $m 2>/dev/null' EXIT; "
            + $"while kill -0 {Environment.ProcessId} 2>/dev/null && kill -0 $m 2>/dev/null; do sleep 1; done";
        var start = new ProcessStartInfo("bash") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        // The recorder's log, when a test starts it: one file per server, not moto's default in the working directory.
        start.Environment["MOTO_RECORDER_FILEPATH"] = Path.Combine(Path.GetTempPath(), $"modelroute-moto-{Port}.jsonl");
        if (_authenticated)
        {
            // Moto checks credentials after this many requests: the three that make the test user below.
            start.Environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3";
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        await WaitUntilListeningAsync();
        if (_authenticated)
        {
            (AccessKeyId, SecretAccessKey) = await CreateUserAsync();
        }
    }

    private async Task WaitUntilListeningAsync()
    {
        // A TCP connect, not a request: with credentials checked, moto counts requests before it checks them.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                using var socket = new System.Net.Sockets.TcpClient();
                await socket.ConnectAsync(System.Net.IPAddress.Loopback, Port);
                return;
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                if (_process!.HasExited || DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException(
                        "moto_server did not start: install it with pip install 'moto[server]' (.ci/run does)", ex);
                }

                await Task.Delay(200);
            }
        }
    }

    /// <summary>A moto IAM user allowed everything, made with boto3 (moto's own dependency); its key and secret.</summary>
    private async Task<(string, string)> CreateUserAsync()
    {
        const string script = """
            import boto3, json, sys
            iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
            iam.create_user(UserName="gateway")
            key = iam.create_access_key(UserName="gateway")["AccessKey"]
            iam.put_user_policy(UserName="gateway", PolicyName="all", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
            print(key["AccessKeyId"], key["SecretAccessKey"])
            """;
        var start = new ProcessStartInfo("python3") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(Url);
        using var python = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start");
        var output = await python.StandardOutput.ReadToEndAsync();
        var errors = await python.StandardError.ReadToEndAsync();
        await python.WaitForExitAsync();
        var parts = output.Trim().Split(' ');
        return python.ExitCode == 0 && parts.Length == 2
            ? (parts[0], parts[1])
            : throw new InvalidOperationException($"Making moto's test user failed: {errors}");
    }
}
