using System.Globalization;
using System.Security;
using System.Text;

namespace ModelRoute.Bench;

/// <summary>
/// docs/benchmarks.svg: submit p99 (log scale) against the offered rate, a line per store through the median p99 at each
/// fixed rate, every run's measurements (fixed runs and rate search steps) as dots, and the 50 ms limit dashed. Plain
/// SVG 1.1 on a white background, no scripts and no external references, so that it reads the same everywhere.
/// </summary>
public static class SvgChart
{
    private const double Width = 800, Height = 440, Left = 70, Right = 190, Top = 40, Bottom = 60;

    private static readonly Dictionary<string, (string Name, string Colour)> Stores = new(StringComparer.Ordinal)
    {
        ["sqlite"] = ("SQLite", "#1f6fb4"),
        ["postgres"] = ("PostgreSQL", "#d2561f"),
    };

    public static string Draw(IReadOnlyList<BenchRun> runs, IReadOnlyList<StoreMedians> medians)
    {
        var dots = runs.Where(r => r.Result.Failure is null)
            .SelectMany(r => r.Result.Submit.Concat(r.Result.MaxRate.Steps).Select(s => (r.Store, s.Rate, P99: s.Latency.P99Ms)))
            .Where(d => d.P99 > 0 && !double.IsNaN(d.P99)).ToList();
        var lines = medians.Select(m => (m.Store, Points: m.FixedRates.Where(f => f.P99Ms > 0).Select(f => (f.Rate, P99: f.P99Ms)).ToList())).ToList();
        var rates = dots.Select(d => d.Rate).Concat(lines.SelectMany(l => l.Points.Select(p => p.Rate))).DefaultIfEmpty(1000);
        var p99s = dots.Select(d => d.P99).Concat(lines.SelectMany(l => l.Points.Select(p => p.P99))).Append(BenchSettings.P99LimitMs).ToList();
        var scale = new Scale(Math.Ceiling(rates.Max() * 1.05 / 1000) * 1000,
            Math.Floor(Math.Log10(Math.Max(0.1, p99s.Min()))), Math.Ceiling(Math.Log10(p99s.Max() * 1.5)));

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{N(Width)}" height="{N(Height)}" viewBox="0 0 {N(Width)} {N(Height)}" font-family="sans-serif" font-size="12">""").Append('\n');
        svg.Append("<title>Submit p99 against offered rate, per store (median line, every run as dots)</title>\n");
        svg.Append(CultureInfo.InvariantCulture, $"""<rect x="0" y="0" width="{N(Width)}" height="{N(Height)}" fill="#ffffff"/>""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{N(Left)}" y="22" font-size="14" font-weight="bold" fill="#111111">Submit p99 against offered rate</text>""").Append('\n');
        Axes(svg, scale);
        var limit = scale.Y(BenchSettings.P99LimitMs);
        svg.Append(CultureInfo.InvariantCulture, $"""<line class="limit" x1="{N(Left)}" y1="{N(limit)}" x2="{N(Width - Right)}" y2="{N(limit)}" stroke="#b00020" stroke-width="1.5" stroke-dasharray="6 4"/>""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{N(Width - Right - 4)}" y="{N(limit - 5)}" text-anchor="end" fill="#b00020">p99 limit 50 ms</text>""").Append('\n');
        foreach (var (store, rate, p99) in dots)
        {
            svg.Append(CultureInfo.InvariantCulture, $"""<circle cx="{N(scale.X(rate))}" cy="{N(scale.Y(p99))}" r="2.5" fill="{Colour(store)}" fill-opacity="0.55"/>""").Append('\n');
        }

        foreach (var (store, points) in lines.Where(l => l.Points.Count > 0))
        {
            var coordinates = string.Join(' ', points.Select(p => $"{N(scale.X(p.Rate))},{N(scale.Y(p.P99))}"));
            svg.Append(CultureInfo.InvariantCulture, $"""<polyline class="median" data-store="{store}" points="{coordinates}" fill="none" stroke="{Colour(store)}" stroke-width="2.5"/>""").Append('\n');
            foreach (var p in points)
            {
                svg.Append(CultureInfo.InvariantCulture, $"""<circle cx="{N(scale.X(p.Rate))}" cy="{N(scale.Y(p.P99))}" r="4" fill="{Colour(store)}"/>""").Append('\n');
            }
        }

        Legend(svg, medians.Select(m => m.Store).ToList());
        return svg.Append("</svg>\n").ToString();
    }

    private static void Axes(StringBuilder svg, Scale scale)
    {
        var bottom = Height - Bottom;
        svg.Append(CultureInfo.InvariantCulture, $"""<path d="M{N(Left)},{N(Top)} V{N(bottom)} H{N(Width - Right)}" fill="none" stroke="#333333"/>""").Append('\n');
        var step = scale.MaxRate <= 5000 ? 500 : scale.MaxRate <= 10000 ? 1000 : 2000;
        for (double rate = 0; rate <= scale.MaxRate; rate += step)
        {
            var x = scale.X(rate);
            svg.Append(CultureInfo.InvariantCulture, $"""<line x1="{N(x)}" y1="{N(bottom)}" x2="{N(x)}" y2="{N(bottom + 5)}" stroke="#333333"/><text x="{N(x)}" y="{N(bottom + 18)}" text-anchor="middle" fill="#333333">{N(rate)}</text>""").Append('\n');
        }

        for (var decade = scale.MinDecade; decade <= scale.MaxDecade; decade++)
        {
            foreach (var factor in new[] { 1.0, 2, 5 })
            {
                var ms = factor * Math.Pow(10, decade);
                if (ms > Math.Pow(10, scale.MaxDecade))
                {
                    break;
                }

                var y = scale.Y(ms);
                svg.Append(CultureInfo.InvariantCulture, $"""<line x1="{N(Left)}" y1="{N(y)}" x2="{N(Width - Right)}" y2="{N(y)}" stroke="#dddddd"/><text x="{N(Left - 6)}" y="{N(y + 4)}" text-anchor="end" fill="#333333">{N(ms)}</text>""").Append('\n');
            }
        }

        svg.Append(CultureInfo.InvariantCulture, $"""<text class="axis-label" x="{N(Left + ((Width - Left - Right) / 2))}" y="{N(Height - 15)}" text-anchor="middle" fill="#111111">Offered rate (submissions/s)</text>""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<text class="axis-label" x="18" y="{N(Top + ((Height - Top - Bottom) / 2))}" text-anchor="middle" fill="#111111" transform="rotate(-90 18 {N(Top + ((Height - Top - Bottom) / 2))})">Submit p99 (ms, log scale)</text>""").Append('\n');
    }

    private static void Legend(StringBuilder svg, IReadOnlyList<string> stores)
    {
        var x = Width - Right + 15;
        var y = Top + 10;
        foreach (var store in stores)
        {
            svg.Append(CultureInfo.InvariantCulture, $"""<line x1="{N(x)}" y1="{N(y)}" x2="{N(x + 24)}" y2="{N(y)}" stroke="{Colour(store)}" stroke-width="2.5"/><text x="{N(x + 30)}" y="{N(y + 4)}" fill="#111111">{SecurityElement.Escape(Name(store))} (median)</text>""").Append('\n');
            svg.Append(CultureInfo.InvariantCulture, $"""<circle cx="{N(x + 12)}" cy="{N(y + 18)}" r="2.5" fill="{Colour(store)}" fill-opacity="0.55"/><text x="{N(x + 30)}" y="{N(y + 22)}" fill="#111111">each run</text>""").Append('\n');
            y += 44;
        }

        svg.Append(CultureInfo.InvariantCulture, $"""<line x1="{N(x)}" y1="{N(y)}" x2="{N(x + 24)}" y2="{N(y)}" stroke="#b00020" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{N(x + 30)}" y="{N(y + 4)}" fill="#111111">50 ms limit</text>""").Append('\n');
    }

    private static string Name(string store) => Stores.TryGetValue(store, out var s) ? s.Name : store;

    private static string Colour(string store) => Stores.TryGetValue(store, out var s) ? s.Colour : "#555555";

    /// <summary>A coordinate or label: invariant culture always, so that no locale puts a comma in a number.</summary>
    private static string N(double value) => Math.Round(value, 1).ToString("0.#", CultureInfo.InvariantCulture);

    private sealed record Scale(double MaxRate, double MinDecade, double MaxDecade)
    {
        public double X(double rate) => Left + (rate / MaxRate * (Width - Left - Right));

        public double Y(double ms) => Height - Bottom - ((Math.Log10(Math.Max(ms, Math.Pow(10, MinDecade))) - MinDecade) / (MaxDecade - MinDecade) * (Height - Top - Bottom));
    }
}
