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
                              [--repeat N] [--max-load L] [--load-wait SECONDS]
        Writes docs/benchmarks.md (between its bench:begin/bench:end markers), docs/benchmarks.json and docs/benchmarks.svg (or DIR/…).
        Full run: at most about 10 minutes per store run on 2 cores; --quick: about a minute.
        --repeat N (1-9, default 1): N runs per store, interleaved between the stores; the report gives the medians.
        --max-load L (default 1.5): each store run starts once the 1-minute load average is below L, waiting at most
        --load-wait SECONDS (default 600; 0: never wait); a run that starts above it is named in the report.
        --otlp: the gateway exports traces and metrics by OTLP to a local sink that discards them (what exporting costs).
        """;

    private static readonly string[] Flags = ["--quick", "--otlp"];

    private static readonly string[] WithValue = ["--store", "--only", "--output", "--awaiting", "--window", "--rates", "--seconds", "--repeat", "--max-load", "--load-wait"];

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

            if (RangeProblem(arg, value) is { } range)
            {
                return range;
            }

            if (arg == "--only" && value.Split(',', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(p => !Phases.Contains(p)) is { } phase)
            {
                return $"--only: unknown phase '{phase}'.";
            }
        }

        return null;
    }

    /// <summary>An option given as a number: its value, or <paramref name="fallback"/> when it is not given.</summary>
    public static double Number(IReadOnlyList<string> args, string name, double fallback)
    {
        var at = args.ToList().IndexOf(name);
        return at >= 0 && at + 1 < args.Count ? double.Parse(args[at + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    private static string? RangeProblem(string arg, string value)
    {
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        return arg switch
        {
            "--repeat" when !int.TryParse(value, System.Globalization.NumberStyles.None, invariant, out var n) || n < 1 || n > RunPlan.MaxRepeat
                => $"--repeat is a whole number from 1 to {RunPlan.MaxRepeat}, not '{value}'.",
            "--max-load" when !double.TryParse(value, System.Globalization.NumberStyles.AllowDecimalPoint, invariant, out var load) || load <= 0 || load > 1000
                => $"--max-load is a load average above 0 (e.g. 1.5), not '{value}'.",
            "--load-wait" when !int.TryParse(value, System.Globalization.NumberStyles.None, invariant, out var wait) || wait > 86_400
                => $"--load-wait is whole seconds from 0 to 86400, not '{value}'.",
            _ => null,
        };
    }
}
