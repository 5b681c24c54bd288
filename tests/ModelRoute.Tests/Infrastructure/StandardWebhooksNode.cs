using System.Diagnostics;
using System.Security.Cryptography;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>What the node receiver made of one request.</summary>
/// <param name="Valid">Every secret it holds verified the request (and it answered 204; otherwise 400).</param>
/// <param name="ValidEach">Whether each secret, in the order given, verified the request.</param>
/// <param name="Signatures">How many signatures the webhook-signature header carried.</param>
public sealed record NodeVerdict(bool Valid, string? Id, string? Type, string? Error, IReadOnlyList<bool> ValidEach, int Signatures, string? ExecutionId);

/// <summary>
/// A webhook receiver in a real node process that checks each request with the published
/// <c>standardwebhooks</c> npm library: <c>new Webhook(secret).verify(body, headers)</c>. The library
/// is installed on first use into a cached folder; if npm cannot install it, starting fails (never skips).
/// </summary>
public sealed class StandardWebhooksNode : IAsyncDisposable
{
    /// <summary>A published version (npm view standardwebhooks versions: 1.0.0, 1.1.0, 1.1.1).</summary>
    public const string LibraryVersion = "1.1.1";


    // CommonJS: the package's "main" is dist/index.js with "type": "commonjs".
    private const string Script = """
        'use strict';
        const http = require('http');
        const { Webhook } = require('standardwebhooks');

        const fs = require('fs');

        // Either the secrets themselves, or "@<file>": a file of whitespace-separated secrets read at each request.
        const args = process.argv.slice(2);
        if (args.length === 0) {
          process.stderr.write('usage: node receiver.cjs <secret> [<secret>…] | @<secrets file>\n');
          process.exit(2);
        }
        const currentSecrets = () => (args.length === 1 && args[0].startsWith('@')
          ? fs.readFileSync(args[0].slice(1), 'utf8').split(/\s+/).filter((s) => s !== '')
          : args);

        const server = http.createServer((req, res) => {
          const chunks = [];
          req.on('data', (c) => chunks.push(c));
          req.on('end', () => {
            if (req.method !== 'POST') {
              process.stderr.write('unexpected ' + req.method + ' ' + req.url + '\n');
              res.statusCode = 405;
              res.end();
              return;
            }
            const body = Buffer.concat(chunks).toString('utf8');
            const validEach = [];
            let error = null;
            for (const secret of currentSecrets()) {
              try {
                new Webhook(secret).verify(body, req.headers);
                validEach.push(true);
              } catch (e) {
                validEach.push(false);
                error = error || String((e && e.message) || e);
              }
            }
            let type = null;
            let executionId = null;
            try {
              const parsed = JSON.parse(body);
              type = parsed.type === undefined ? null : parsed.type;
              executionId = parsed.data && parsed.data.id !== undefined ? parsed.data.id : null;
            } catch (e) {
              error = error || 'body is not JSON';
            }
            const valid = validEach.length > 0 && validEach.every((v) => v);
            const signature = req.headers['webhook-signature'] || '';
            const line = {
              valid,
              id: req.headers['webhook-id'] || null,
              type,
              error: valid ? null : error,
              valid_each: validEach,
              signatures: signature === '' ? 0 : signature.split(' ').length,
              execution_id: executionId,
            };
            process.stdout.write(JSON.stringify(line) + '\n');
            res.statusCode = valid ? 204 : 400;
            res.end();
          });
        });

        server.listen(0, '127.0.0.1', () => {
          process.stdout.write(String(server.address().port) + '\n');
        });

        // The test holds stdin open; when it goes away, so does the receiver.
        process.stdin.on('end', () => process.exit(0));
        process.stdin.resume();
        """;

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private StandardWebhooksNode(Process process) => _process = process;

    /// <summary>Every request the receiver got, in order.</summary>
    public ConcurrentQueue<NodeVerdict> Verdicts { get; } = new();

    public string Url { get; private set; } = "";

    public string Errors
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>The cached folder holding node_modules/standardwebhooks and the receiver script.</summary>
    public static string CacheDirectory { get; private set; } = "";

    /// <summary>Starts a receiver that verifies with every one of <paramref name="secrets"/> (at least one).</summary>
    public static Task<StandardWebhooksNode> StartAsync(params string[] secrets)
    {
        secrets.Length.ShouldBeGreaterThan(0);
        secrets.ShouldAllBe(s => !s.StartsWith('@'));
        return StartProcessAsync(secrets);
    }

    /// <summary>
    /// Starts a receiver that reads its secrets (whitespace-separated) from <paramref name="secretsFile"/> at each
    /// request, for when the secrets are known only after its URL has been registered.
    /// </summary>
    public static Task<StandardWebhooksNode> StartWithSecretsFileAsync(string secretsFile) => StartProcessAsync(["@" + secretsFile]);

    private static async Task<StandardWebhooksNode> StartProcessAsync(IReadOnlyList<string> arguments)
    {
        var script = await EnsureInstalledAsync();

        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = CacheDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var receiver = new StandardWebhooksNode(Process.Start(start) ?? throw new InvalidOperationException("node did not start"));
        receiver._process.OutputDataReceived += (_, e) => receiver.OnLine(e.Data);
        receiver._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (receiver._stderr)
                {
                    receiver._stderr.AppendLine(e.Data);
                }
            }
        };
        receiver._process.BeginOutputReadLine();
        receiver._process.BeginErrorReadLine();

        try
        {
            var port = await receiver._port.Task.WaitAsync(TimeSpan.FromSeconds(60));
            receiver.Url = $"http://127.0.0.1:{port}/hook";
            return receiver;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
        {
            await receiver.DisposeAsync();
            throw new InvalidOperationException($"The node receiver did not start: {ex.Message} {receiver.Errors}", ex);
        }
    }

    /// <summary>Installs standardwebhooks (once, see <see cref="NpmPackages"/>) and writes the receiver script; returns the script's path.</summary>
    public static async Task<string> EnsureInstalledAsync()
    {
        var folder = await NpmPackages.EnsureInstalledAsync($"standardwebhooks@{LibraryVersion}");
        CacheDirectory = folder;
        return await NpmPackages.WriteScriptAsync(folder, Script);
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            _port.TrySetException(new InvalidOperationException("node closed its output before printing its port."));
            return;
        }

        if (string.IsNullOrWhiteSpace(line))
        {
            return;
        }

        if (!_port.Task.IsCompleted)
        {
            if (int.TryParse(line, out var port))
            {
                _port.TrySetResult(port);
            }
            else
            {
                _port.TrySetException(new InvalidOperationException($"Unexpected first line from node: {line}"));
            }

            return;
        }

        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            static string? Text(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            Verdicts.Enqueue(new NodeVerdict(
                root.GetProperty("valid").GetBoolean(),
                Text(root, "id"),
                Text(root, "type"),
                Text(root, "error"),
                [.. root.GetProperty("valid_each").EnumerateArray().Select(v => v.GetBoolean())],
                root.GetProperty("signatures").GetInt32(),
                Text(root, "execution_id")));
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // Never throw on the reader's thread: keep the line where a failing test shows it.
            lock (_stderr)
            {
                _stderr.AppendLine($"unreadable line from node ({ex.Message}): {line}");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _port.TrySetCanceled();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        catch (TimeoutException)
        {
        }

        _process.Dispose();
    }
}
