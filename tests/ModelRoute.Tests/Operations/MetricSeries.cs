using System.Globalization;
using System.Text.RegularExpressions;

namespace ModelRoute.Tests.Operations;

/// <summary>One sample line of a Prometheus text page: its metric name, labels and value.</summary>
public sealed partial record MetricSeries(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>The name and labels, sorted: what makes a series one series.</summary>
    public string Key => Name + "{" + string.Join(",", Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}=\"{l.Value}\"")) + "}";

    /// <summary>Every line of <paramref name="page"/> that is not a comment nor blank.</summary>
    public static List<MetricSeries> Parse(string page)
    {
        var series = new List<MetricSeries>();
        foreach (var line in page.Split('\n'))
        {
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var match = Line().Match(line);
            match.Success.ShouldBeTrue($"not a sample line: {line}");
            var labels = Label().Matches(match.Groups["labels"].Value)
                .ToDictionary(m => m.Groups["key"].Value, m => Regex.Unescape(m.Groups["value"].Value), StringComparer.Ordinal);
            series.Add(new MetricSeries(match.Groups["name"].Value, labels, ParseValue(match.Groups["value"].Value)));
        }

        return series;
    }

    /// <summary>The value of the one series named <paramref name="name"/> with these labels (others ignored); null when absent.</summary>
    public static double? Find(IEnumerable<MetricSeries> page, string name, params (string Key, string Value)[] labels) =>
        page.SingleOrDefault(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value))?.Value;

    private static double ParseValue(string text) => text switch
    {
        "+Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
    };

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$""")]
    private static partial Regex Line();

    [GeneratedRegex("""(?<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(\\.|[^"\\])*)",?""")]
    private static partial Regex Label();
}
