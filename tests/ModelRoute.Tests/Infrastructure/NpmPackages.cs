using System.Diagnostics;
using System.Security.Cryptography;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// npm packages that tests use (official client libraries, Standard Webhooks), installed by the
/// test run itself into a cached folder, once, under a lock across tests and test processes. An
/// install that fails fails the test: these tests must run in CI, never skip.
/// </summary>
public static class NpmPackages
{
    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);

    /// <summary>Installs <paramref name="packages"/> (e.g. <c>openai@4.104.0</c>) into a folder of their own; returns it.</summary>
    public static async Task<string> EnsureInstalledAsync(params string[] packages)
    {
        var key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join(' ', packages.Order(StringComparer.Ordinal)))))[..12].ToLowerInvariant();
        var folder = Path.Combine(Path.GetTempPath(), $"modelroute-npm-{key}");
        await InstallGate.WaitAsync();
        try
        {
            Directory.CreateDirectory(folder);
            using var fileLock = await AcquireFileLockAsync(Path.Combine(folder, ".install.lock"));
            var marker = Path.Combine(folder, ".installed");
            if (!File.Exists(marker))
            {
                // Without a package.json here npm would look for one in a parent folder and install there.
                await File.WriteAllTextAsync(Path.Combine(folder, "package.json"), """{"name":"modelroute-test-tools","version":"1.0.0","private":true}""");
                var (exit, output) = await RunAsync("npm", folder, ["install", "--no-audit", "--no-fund", "--prefix", folder, .. packages], InstallTimeout);
                exit.ShouldBe(0, $"npm install {string.Join(' ', packages)} failed: {output}");
                await File.WriteAllTextAsync(marker, string.Join('\n', packages));
            }

            return folder;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Writes <paramref name="script"/> into <paramref name="folder"/> (named by its content) and returns its path.</summary>
    public static async Task<string> WriteScriptAsync(string folder, string script, string extension = ".cjs")
    {
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(script)))[..16].ToLowerInvariant();
        var path = Path.Combine(folder, $"script-{hash}{extension}");
        if (!File.Exists(path))
        {
            var temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            await File.WriteAllTextAsync(temporary, script);
            File.Move(temporary, path, overwrite: true);
        }

        return path;
    }

    /// <summary>Runs node on a script with the installed packages, returning its exit code and its output (stdout then stderr).</summary>
    public static Task<(int ExitCode, string Output)> RunNodeAsync(string folder, string scriptPath, IEnumerable<string> arguments, TimeSpan timeout) =>
        RunAsync("node", folder, [scriptPath, .. arguments], timeout);

    public static async Task<(int ExitCode, string Output)> RunAsync(string command, string workingDirectory, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(command)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"{command} did not start");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException($"{command} is not on PATH; these tests need node and npm.", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                return (-1, $"timed out after {timeout}: {await stdout} {await stderr}");
            }

            return (process.ExitCode, await stdout + await stderr);
        }
    }

    /// <summary>An exclusive lock on a file, waited for, so that two test processes never install at once.</summary>
    private static async Task<FileStream> AcquireFileLockAsync(string path)
    {
        var deadline = DateTime.UtcNow + InstallTimeout + TimeSpan.FromMinutes(1);
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }
}
