using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using ModelRoute.Bench;

if (BenchArguments.Problem(args) is { } problem)
{
    // Empty for --help: the usage alone, and no error.
    (problem.Length == 0 ? Console.Out : Console.Error).WriteLine((problem + "\n" + BenchArguments.Usage).TrimStart());
    return problem.Length == 0 ? 0 : 2;
}

var quick = args.Contains("--quick");
var stores = Option("--store") is { } only ? [only] : new[] { "sqlite", "postgres" };
var phases = (Option("--only") ?? string.Join(',', BenchArguments.Phases)).Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
var root = FindRepositoryRoot();
var output = Option("--output") ?? Path.Combine(root, "docs");
var serverDll = Environment.GetEnvironmentVariable("BENCH_SERVER_DLL") ?? Path.Combine(root, "src/ModelRoute.Server/bin/Release/net10.0/ModelRoute.Server.dll");
if (!File.Exists(serverDll))
{
    Console.Error.WriteLine($"{serverDll} is missing: publish it first (./bench/run.sh does).");
    return 2;
}

// run.sh passes when it started, so the wall time reported includes its build check.
var startedAt = long.TryParse(Environment.GetEnvironmentVariable("BENCH_STARTED_AT_MS"), CultureInfo.InvariantCulture, out var ms)
    ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
    : DateTimeOffset.UtcNow;
var settings = BenchSettings.For(quick);
// For profiling: the end-to-end phase at another rate (at 50/s it shows the latency of an idle machine).
if (Environment.GetEnvironmentVariable("BENCH_E2E_RATE") is { Length: > 0 } e2eRate)
{
    settings = settings with { EndToEndRate = double.Parse(e2eRate, CultureInfo.InvariantCulture) };
}

if (Option("--awaiting") is { } awaitingOption)
{
    // For memory experiments: park this many, with time enough to do it.
    settings = settings with { AwaitingExecutions = int.Parse(awaitingOption, CultureInfo.InvariantCulture), FillLimit = TimeSpan.FromMinutes(10) };
}

if (Option("--rates") is { } ratesOption)
{
    // For profiling: submit only at these rates, for --seconds each (default 5), with no rate search.
    var seconds = Option("--seconds") is { } secondsOption ? double.Parse(secondsOption, CultureInfo.InvariantCulture) : 5;
    settings = settings with
    {
        FixedRates = [.. ratesOption.Split(',').Select(r => double.Parse(r, CultureInfo.InvariantCulture))],
        FixedDuration = TimeSpan.FromSeconds(seconds),
        SearchMaxSteps = 0,
    };
}

if (Option("--window") is { } windowOption)
{
    settings = settings with { MemoryWindow = TimeSpan.FromSeconds(int.Parse(windowOption, CultureInfo.InvariantCulture)) };
}

// --otlp: every gateway started below exports to a local sink (they inherit its OTEL_* environment).
using var otlpSink = args.Contains("--otlp") ? OtlpSink.Start() : null;
var machine = DescribeMachine(serverDll);
Console.WriteLine($"ModelRoute benchmark, {(quick ? "quick" : "full")} mode{(otlpSink is null ? "" : ", OTLP export on")}, stores: {string.Join(", ", stores)}, phases: {string.Join(", ", phases)}; load average {machine.LoadAverageAtStart}");
ThreadPool.SetMinThreads(256, 256);

var repeat = (int)BenchArguments.Number(args, "--repeat", 1);
var maxLoad = BenchArguments.Number(args, "--max-load", LoadGate.DefaultMaxLoad);
var loadWait = BenchArguments.Number(args, "--load-wait", LoadGate.DefaultWaitSeconds);
var gate = new LoadGate(LoadAverage.ReadProc, TimeProvider.System, maxLoad, TimeSpan.FromSeconds(loadWait), line => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {line}"));
var runs = new List<BenchRun>();
await using var receiver = await WebhookReceiver.StartAsync();

// One throwaway cluster for the whole bench, a new database per PostgreSQL run. Its initdb and start overlap the
// first run's gateway start-up; no measurement runs before it is up.
Task<PostgresServer>? postgresStart = null;
foreach (var planned in RunPlan.Order(stores, repeat))
{
    var label = $"run {planned.Number} ({planned.Store})";
    var load = await gate.WaitAsync(label, CancellationToken.None);
    postgresStart ??= stores.Contains("postgres") ? PostgresServer.StartAsync() : null;
    var runStarted = DateTimeOffset.UtcNow;
    Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {label}: starting, load average {load.One.ToString("0.##", CultureInfo.InvariantCulture)}");
    var result = await RunStoreAsync(planned, postgresStart);
    runs.Add(new BenchRun(planned.Number, planned.Store, runStarted, load, result));
}

string? postgresVersion = null;
if (postgresStart is { IsCompletedSuccessfully: true })
{
    postgresVersion = postgresStart.Result.Version;
    await postgresStart.Result.DisposeAsync();
}

var wall = Math.Round((DateTimeOffset.UtcNow - startedAt).TotalSeconds, 1);
var medians = Medians.Compute(runs);
var medianResults = medians.Select(m => runs.FirstOrDefault(r => r.Number == m.MedianRun)?.Result ?? runs.Last(r => r.Store == m.Store).Result).ToList();
var report = new BenchReport(quick ? "quick" : "full", machine with { Postgres = postgresVersion }, Report.Notes(settings), medianResults, RunsReport.Targets(medians), wall,
    repeat, maxLoad, loadWait, runs, medians);
return await WriteAsync(report, output) ? (runs.Any(r => r.Result.Failure is not null) ? 1 : 0) : 2;

async Task<StoreResult> RunStoreAsync(PlannedRun planned, Task<PostgresServer>? cluster)
{
    var store = planned.Store;
    try
    {
        PostgresServer? postgres = null;
        var gateways = RunPlan.Gateways(phases);
        var firstStart = store == "postgres" || gateways.Count == 0 ? null : GatewayHost.StartAsync(serverDll, store, null);
        if (store == "postgres")
        {
            postgres = await cluster!;
        }
        else if (cluster is not null)
        {
            await Task.WhenAny(cluster); // its failure is the PostgreSQL runs', not this one's
        }

        // Each gateway on a store of its own (a fresh data directory or database): see RunPlan.Gateways.
        var result = StoreResult.Empty(store);
        for (var g = 0; g < gateways.Count; g++)
        {
            var database = g == 0 ? $"modelroute_{planned.Number}" : $"modelroute_{planned.Number}_{string.Join('_', gateways[g])}";
            var connectionString = postgres is null ? null : postgres.ConnectionString(await postgres.CreateDatabaseAsync(database));
            await using var gateway = await (g == 0 && firstStart is not null ? firstStart : GatewayHost.StartAsync(serverDll, store, connectionString));
            Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: gateway ready for {string.Join(", ", gateways[g])} ({gateway.RssMiB()} MiB RSS)");
            var cpu = new CpuMeter(gateway.Pid, postgres?.PostmasterPid());
            result = result.Then(await new StoreBench(gateway, receiver, settings, store, gateways[g], cpu).RunAsync(CancellationToken.None));
        }

        return phases.Contains("baseline") ? await WithBaselineAsync(result, postgres, planned.Number) : result;
    }
    catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or TimeoutException or IOException or Npgsql.NpgsqlException or OperationCanceledException)
    {
        // One run's failure still leaves a report of the others.
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: FAILED: {ex}");
        return StoreResult.Empty(store, ex.Message);
    }
}

async Task<StoreResult> WithBaselineAsync(StoreResult result, PostgresServer? postgres, int number)
{
    var store = result.Store;
    var started = System.Diagnostics.Stopwatch.GetTimestamp();
    Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: storage baseline (no gateway)");
    var baseline = postgres is not null
        ? await StorageBaseline.PostgresAsync(postgres, settings.BaselineDuration, $"baseline_{number}")
        : await StorageBaseline.SqliteAsync(settings.BaselineDuration);
    Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: baseline {baseline.SequentialInsertsPerSecond}/s sequential, {baseline.ConcurrentInsertsPerSecond}/s with {baseline.Writers} writers");
    return result with
    {
        Baseline = baseline,
        FractionOfSequentialBaseline = Fraction(result.MaxRate.HighestRateUnder50MsP99, baseline.SequentialInsertsPerSecond),
        FractionOfConcurrentBaseline = Fraction(result.MaxRate.HighestRateUnder50MsP99, baseline.ConcurrentInsertsPerSecond),
        Phases = [.. result.Phases, new PhaseTime("baseline", Math.Round(LoadGenerator.SecondsSince(started), 1), 0)],
    };
}

async Task<bool> WriteAsync(BenchReport report, string output)
{
    Directory.CreateDirectory(output);
    var json = JsonSerializer.Serialize(report, new JsonSerializerOptions
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    });
    var jsonPath = Path.Combine(output, "benchmarks.json");
    var svgPath = Path.Combine(output, "benchmarks.svg");
    var mdPath = Path.Combine(output, "benchmarks.md");
    await File.WriteAllTextAsync(jsonPath, json + "\n");
    await File.WriteAllTextAsync(svgPath, SvgChart.Draw(report.Runs, report.Medians));
    if (otlpSink is not null)
    {
        Console.WriteLine($"OTLP sink: {otlpSink.Received.Exports} exports, {otlpSink.Received.Bytes / 1024} KiB");
    }

    // The generated report replaces only the text between the markers: the page's hand-written sections stay.
    var (text, problem) = GeneratedSection.Merge(File.Exists(mdPath) ? await File.ReadAllTextAsync(mdPath) : null, Report.Markdown(report));
    if (text is null)
    {
        Console.Error.WriteLine($"Not writing {mdPath}: {problem}. Wrote {jsonPath} and {svgPath}.");
        return false;
    }

    await File.WriteAllTextAsync(mdPath, text);
    Console.WriteLine($"Wrote {mdPath}, {jsonPath} and {svgPath}; {report.WallSeconds} s since run.sh started");
    return true;
}

string? Option(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

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

static Machine DescribeMachine(string serverDll)
{
    static string Read(string path, string prefix) =>
        File.Exists(path) ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?.Split(new[] { ':', '=' }, 2)[1].Trim().Trim('"') ?? "?" : "?";
    var memKb = Read("/proc/meminfo", "MemTotal").Split(' ')[0];
    var memory = long.TryParse(memKb, CultureInfo.InvariantCulture, out var kb) ? $"{kb / 1024.0 / 1024.0:0.0} GiB" : "?";
    var load = double.TryParse(File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "", CultureInfo.InvariantCulture, out var l) ? l : double.NaN;
    return new Machine(Environment.ProcessorCount, Read("/proc/cpuinfo", "model name"), memory, Read("/etc/os-release", "PRETTY_NAME"),
        RuntimeInformation.FrameworkDescription, DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), null, GatewayGc(serverDll), load);
}

/// <summary>The gateway's GC settings: its runtimeconfig.json, and any DOTNET_gc* variables it inherits from this run.</summary>
static string GatewayGc(string serverDll)
{
    var settings = new List<string>();
    var config = Path.ChangeExtension(serverDll, ".runtimeconfig.json");
    if (File.Exists(config))
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(config));
        if (doc.RootElement.GetProperty("runtimeOptions").TryGetProperty("configProperties", out var properties))
        {
            settings.AddRange(properties.EnumerateObject().Where(p => p.Name.StartsWith("System.GC.", StringComparison.Ordinal)).Select(p => $"{p.Name}={p.Value}"));
        }
    }

    settings.AddRange(Environment.GetEnvironmentVariables().Keys.Cast<string>()
        .Where(k => k.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal)
        .Select(k => $"{k}={Environment.GetEnvironmentVariable(k)} (environment)"));
    return settings.Count == 0 ? "runtime defaults" : string.Join(", ", settings);
}
