namespace ModelRoute.Tests.Providers;

/// <summary>
/// The fidelity tests' harness: a provider's official npm SDK (installed once, pinned) runs a script against a fake,
/// which prints what it saw as one JSON line. An npm or node failure fails the test; it never skips.
/// </summary>
public static class SdkScript
{
    /// <summary>Runs <paramref name="script"/> with <paramref name="package"/> installed; the script's last JSON line.</summary>
    public static async Task<JsonElement> RunAsync(string package, string script, params string[] arguments)
    {
        var folder = await NpmPackages.EnsureInstalledAsync(package);
        var path = await NpmPackages.WriteScriptAsync(folder, script);
        var (exit, output) = await NpmPackages.RunNodeAsync(folder, path, arguments, TimeSpan.FromMinutes(1));
        exit.ShouldBe(0, output);
        using var doc = JsonDocument.Parse(output.Trim().Split('\n').Last(l => l.StartsWith('{')));
        return doc.RootElement.Clone();
    }
}
