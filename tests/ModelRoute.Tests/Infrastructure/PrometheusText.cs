using System.Globalization;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>Reads samples out of the Prometheus text format that <c>GET /metrics</c> serves.</summary>
public static class PrometheusText
{
    /// <summary>
    /// The sum of every sample of <paramref name="name"/> (each label set is a line of its own:
    /// <c>name{otel_scope_name="ModelRoute",model="sim/text"} 3</c>); 0 when there is none.
    /// </summary>
    public static double Sum(string text, string name) =>
        Samples(text, name).Sum(s => s.Value);

    /// <summary>Every sample of <paramref name="name"/>: its label part (with the braces, or empty) and its value.</summary>
    public static List<(string Labels, double Value)> Samples(string text, string name)
    {
        var samples = new List<(string, double)>();
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length == name.Length || line[name.Length] is not ('{' or ' '))
            {
                continue;
            }

            var labelsEnd = line[name.Length] == '{' ? line.IndexOf("} ", name.Length, StringComparison.Ordinal) + 1 : name.Length;
            var value = line[labelsEnd..].Trim().Split(' ')[0];
            samples.Add((line[name.Length..labelsEnd], double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture)));
        }

        return samples;
    }
}
