using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ModelRoute.Bench;

var quick = args.Contains("--quick");
var stores = args.SkipWhile(a => a != "--store").Skip(1).Take(1).ToArray() is [var only] ? [only] : new[] { "sqlite", "postgres" };
var root = FindRepositoryRoot();
var serverDll = Path.Combine(root, "src/ModelRoute.Server/bin/Release/net10.0/ModelRoute.Server.dll");
if (!File.Exists(serverDll))
{
    Console.Error.WriteLine($"{serverDll} is missing: build Release first (./bench/run.sh does).");
    return 2;
}

var settings = BenchSettings.For(quick);
Console.WriteLine($"ModelRoute benchmark, {(quick ? "quick" : "full")} mode, stores: {string.Join(", ", stores)}");
ThreadPool.SetMinThreads(256, 256);

var results = new List<StoreResult>();
string? postgresVersion = null;
await using var receiver = await WebhookReceiver.StartAsync();
foreach (var store in stores)
{
    PostgresServer? postgres = null;
    try
    {
        string? connectionString = null;
        if (store == "postgres")
        {
            postgres = await PostgresServer.StartAsync();
            postgresVersion = postgres.Version;
            connectionString = postgres.ConnectionString(await postgres.CreateDatabaseAsync("modelroute"));
        }

        StoreResult result;
        await using (var gateway = await GatewayHost.StartAsync(serverDll, store, connectionString))
        {
            var bench = new StoreBench(gateway, receiver, settings, store);
            var (submit, search, get, endToEnd, flood, memory) = await bench.RunAsync();
            result = new StoreResult(store, submit, search, get, endToEnd, flood, memory, null!, 0, 0);
        }

        Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: storage baseline (no gateway)");
        var baseline = store == "postgres"
            ? await StorageBaseline.PostgresAsync(postgres!, settings.BaselineDuration)
            : await StorageBaseline.SqliteAsync(settings.BaselineDuration);
        Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: baseline {baseline.SequentialInsertsPerSecond}/s sequential, {baseline.ConcurrentInsertsPerSecond}/s with {baseline.Writers} writers");
        results.Add(result with
        {
            Baseline = baseline,
            FractionOfSequentialBaseline = Fraction(result.MaxRate.HighestRateUnder50MsP99, baseline.SequentialInsertsPerSecond),
            FractionOfConcurrentBaseline = Fraction(result.MaxRate.HighestRateUnder50MsP99, baseline.ConcurrentInsertsPerSecond),
        });
    }
    finally
    {
        if (postgres is not null)
        {
            await postgres.DisposeAsync();
        }
    }
}

var machine = DescribeMachine(postgresVersion);
var report = new BenchReport(quick ? "quick" : "full", machine, Report.Notes(settings), results, Report.Targets(results, settings));
var docs = Path.Combine(root, "docs");
Directory.CreateDirectory(docs);
var json = JsonSerializer.Serialize(report, new JsonSerializerOptions
{
    WriteIndented = true,
    PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
});
await File.WriteAllTextAsync(Path.Combine(docs, "benchmarks.json"), json + "\n");
await File.WriteAllTextAsync(Path.Combine(docs, "benchmarks.md"), Report.Markdown(report));
Console.WriteLine($"Wrote {Path.Combine(docs, "benchmarks.md")} and {Path.Combine(docs, "benchmarks.json")}");
return 0;

static double Fraction(double rate, double baseline) => baseline > 0 ? Math.Round(rate / baseline, 3) : 0;

static string FindRepositoryRoot()
{
    for (var directory = new DirectoryInfo(Directory.GetCurrentDirectory()); directory is not null; directory = directory.Parent)
    {
        if (File.Exists(Path.Combine(directory.FullName, "ModelRoute.slnx")))
        {
            return directory.FullName;
        }
    }

    throw new InvalidOperationException("Run from inside the repository (ModelRoute.slnx not found).");
}

static Machine DescribeMachine(string? postgres)
{
    static string Read(string path, string prefix) =>
        File.Exists(path) ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?.Split(new[] { ':', '=' }, 2)[1].Trim().Trim('"') ?? "?" : "?";
    var memKb = Read("/proc/meminfo", "MemTotal").Split(' ')[0];
    var memory = long.TryParse(memKb, CultureInfo.InvariantCulture, out var kb) ? $"{kb / 1024.0 / 1024.0:0.0} GiB" : "?";
    return new Machine(Environment.ProcessorCount, Read("/proc/cpuinfo", "model name"), memory, Read("/etc/os-release", "PRETTY_NAME"),
        RuntimeInformation.FrameworkDescription, DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), postgres);
}
