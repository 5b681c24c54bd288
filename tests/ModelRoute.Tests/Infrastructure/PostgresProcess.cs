using System.Diagnostics;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>
/// Running PostgreSQL's server programs (initdb, pg_ctl) for a throwaway cluster, as the postgres user when this
/// process is root. Shared by the tests' <c>PostgresCluster</c> and the bench's <c>PostgresServer</c> (linked there).
/// </summary>
internal static class PostgresProcess
{
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>The newest-first-found <c>bin</c> folder of an installed PostgreSQL with initdb (15 on this project's hosts).</summary>
    public static string FindBin()
    {
        var installed = Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")) : [];
        foreach (var candidate in installed.Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(candidate, "initdb")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("PostgreSQL server binaries (initdb, pg_ctl) were not found; install postgresql-15 (.ci/run does).");
    }

    /// <summary>Runs <paramref name="command"/> (a program in <paramref name="bin"/> and its arguments) as the postgres user.</summary>
    public static Task AsPostgresAsync(string bin, string command) =>
        IsRoot ? RunAsync("su", ["postgres", "-c", $"{bin}/{command}"]) : RunAsync("bash", ["-c", $"{bin}/{command}"]);

    /// <summary>Gives <paramref name="directory"/> to the postgres user when this process is root (initdb runs as that user).</summary>
    public static Task OwnAsync(string directory) => IsRoot ? RunAsync("chown", ["postgres:postgres", directory]) : Task.CompletedTask;

    public static async Task RunAsync(string file, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', start.ArgumentList)} failed ({process.ExitCode}): {await output} {await errors}");
        }
    }
}
