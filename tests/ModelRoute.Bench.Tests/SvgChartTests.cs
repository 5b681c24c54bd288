using System.Globalization;
using System.Xml.Linq;

namespace ModelRoute.Bench.Tests;

/// <summary>The chart the bench draws: well-formed SVG, a median line per store, every run's dots, the 50 ms limit.</summary>
public sealed class SvgChartTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void The_chart_has_a_median_line_per_store_through_each_fixed_rate_and_the_limit_dashed()
    {
        var runs = new[]
        {
            Runs.Run(1, "sqlite", 6000, [3.5, 4.25, 12.5, 30]),
            Runs.Run(2, "postgres", 2000, [10, 20, 45]),
            Runs.Run(3, "sqlite", 5000, [3, 4, 10, 35]),
            Runs.Run(4, "postgres", 3000, [11, 22, 48]),
        };

        var svg = XDocument.Parse(SvgChart.Draw(runs, Medians.Compute(runs))).Root!;

        svg.Name.ShouldBe(Svg + "svg");
        svg.Element(Svg + "title").ShouldNotBeNull().Value.ShouldContain("p99");
        var lines = svg.Elements(Svg + "polyline").ToDictionary(l => (string)l.Attribute("data-store")!, l => ((string)l.Attribute("points")!).Split(' '));
        lines["sqlite"].Length.ShouldBe(4);
        lines["postgres"].Length.ShouldBe(3);
        svg.Elements(Svg + "line").Where(l => (string?)l.Attribute("class") == "limit").ShouldHaveSingleItem().Attribute("stroke-dasharray").ShouldNotBeNull();
        var labels = svg.Elements(Svg + "text").Where(t => (string?)t.Attribute("class") == "axis-label").Select(t => t.Value).ToList();
        labels.ShouldBe(["Offered rate (submissions/s)", "Submit p99 (ms, log scale)"]);
        // Each run's measurements as dots: 4 + 3 fixed rates and a search step per run, beside the median points.
        svg.Elements(Svg + "circle").Count(c => (string?)c.Attribute("r") == "2.5").ShouldBe(4 + 1 + 3 + 1 + 4 + 1 + 3 + 1 + 2);
        svg.Descendants().ShouldNotContain(e => e.Name.LocalName == "script" || e.Attributes().Any(a => a.Name.LocalName == "href"));
    }

    [Fact]
    public void Coordinates_use_a_decimal_point_whatever_the_current_culture()
    {
        var culture = CultureInfo.CurrentCulture;
        CultureInfo.CurrentCulture = German();
        try
        {
            var runs = new[] { Runs.Run(1, "sqlite", 4000, [3.37, 4.91, 12.53, 33.3]) };
            var svg = XDocument.Parse(SvgChart.Draw(runs, Medians.Compute(runs))).Root!;

            var points = ((string)svg.Element(Svg + "polyline")!.Attribute("points")!).Split(' ');
            points.ShouldAllBe(p => p.Split(',', StringSplitOptions.None).Length == 2);
            points.SelectMany(p => p.Split(',')).ShouldAllBe(n => double.Parse(n, CultureInfo.InvariantCulture) >= 0);
            svg.Descendants(Svg + "circle").Select(c => (string)c.Attribute("cx")!).ShouldAllBe(x => !x.Contains(','));
        }
        finally
        {
            CultureInfo.CurrentCulture = culture;
        }
    }

    /// <summary>
    /// de-DE's number format (decimal comma, dot for thousands), built on the invariant culture: the projects run in
    /// globalization-invariant mode, where de-DE itself cannot be loaded.
    /// </summary>
    private static CultureInfo German()
    {
        var german = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        german.NumberFormat.NumberDecimalSeparator = ",";
        german.NumberFormat.NumberGroupSeparator = ".";
        (1.5).ToString(german).ShouldBe("1,5");
        return german;
    }

    [Fact]
    public void A_store_whose_runs_all_failed_draws_no_line()
    {
        var runs = new[] { Runs.Run(1, "sqlite", 4000, [3, 4, 12, 33]), Runs.Failed(2, "postgres"), Runs.Failed(4, "postgres") };

        var svg = XDocument.Parse(SvgChart.Draw(runs, Medians.Compute(runs))).Root!;

        svg.Elements(Svg + "polyline").ShouldHaveSingleItem().Attribute("data-store")!.Value.ShouldBe("sqlite");
    }
}
