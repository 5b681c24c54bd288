namespace ModelRoute.Bench;

/// <summary>
/// The command line's check: an option mistyped (or <c>--help</c>) must not start a run, which would take minutes and
/// write over the published docs/benchmarks.md.
/// </summary>
public static class BenchArguments
{
    public const string Usage =
        """
        Usage: ./bench/run.sh [--quick] [--otlp] [--store sqlite|postgres] [--only submit,get,e2e,webhooks,memory,baseline] [--output DIR]
                              [--awaiting N] [--window SECONDS] [--rates R1,R2,… [--seconds S]]
        Writes docs/benchmarks.md and docs/benchmarks.json (or DIR/…). Full run: at most about 10 minutes on 2 cores; --quick: about a minute.
        --otlp: the gateway exports traces and metrics by OTLP to a local sink that discards them (what exporting costs).
        """;

    private static readonly string[] Flags = ["--quick", "--otlp"];

    private static readonly string[] WithValue = ["--store", "--only", "--output", "--awaiting", "--window", "--rates", "--seconds"];

    private static readonly string[] Stores = ["sqlite", "postgres"];

    /// <summary>What <c>--only</c> may name; all of them when it is not given.</summary>
    public static IEnumerable<string> Phases => StoreBench.AllPhases.Append("baseline");

    /// <summary>What is wrong with <paramref name="args"/>, or null when a run may start.</summary>
    public static string? Problem(IReadOnlyList<string> args)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (Flags.Contains(arg))
            {
                continue;
            }

            if (!WithValue.Contains(arg))
            {
                return arg is "--help" or "-h" ? "" : $"Unknown option '{arg}'.";
            }

            if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                return $"{arg} needs a value.";
            }

            var value = args[++i];
            if (arg == "--store" && !Stores.Contains(value))
            {
                return $"--store is sqlite or postgres, not '{value}'.";
            }

            if (arg == "--only" && value.Split(',', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(p => !Phases.Contains(p)) is { } phase)
            {
                return $"--only: unknown phase '{phase}'.";
            }
        }

        return null;
    }
}
