namespace ModelRoute.Bench.Tests;

/// <summary>A run replaces only the generated part of docs/benchmarks.md; the hand-written text around it is never lost.</summary>
public sealed class GeneratedSectionTests
{
    private const string Before = "# Benchmarks\n\nHand-written: how to run it.\r\n\n## The latest figures\n\nProse ä ✓.\n\n";

    private const string After = "\n\nHand-written after the report.\n";

    [Fact]
    public void Only_the_text_between_the_markers_is_replaced()
    {
        var existing = Before + GeneratedSection.Begin + "\n## The published run\n\nold figures\n" + GeneratedSection.End + After;

        var (text, problem) = GeneratedSection.Merge(existing, "## The published run\n\nnew figures");

        problem.ShouldBeNull();
        text.ShouldBe(Before + GeneratedSection.Begin + "\n## The published run\n\nnew figures\n" + GeneratedSection.End + After);
        text.ShouldNotBeNull().ShouldStartWith(Before, Case.Sensitive);
        text.ShouldEndWith(GeneratedSection.End + After, Case.Sensitive);
    }

    [Fact]
    public void A_missing_file_is_created_with_a_title_and_the_markers()
    {
        var (text, problem) = GeneratedSection.Merge(null, "## The published run\n");

        problem.ShouldBeNull();
        text.ShouldBe($"# Benchmarks\n\n{GeneratedSection.Begin}\n## The published run\n{GeneratedSection.End}\n");
    }

    [Theory]
    [InlineData(Before + "no markers at all" + After, "found 0 and 0")]
    [InlineData(Before + GeneratedSection.Begin + "\nold\n" + GeneratedSection.End + "\n" + GeneratedSection.Begin + "\n" + GeneratedSection.End + After, "found 2 and 2")]
    [InlineData(Before + GeneratedSection.Begin + "\nold\n" + After, "found 1 and 0")]
    [InlineData(Before + GeneratedSection.End + "\nold\n" + GeneratedSection.Begin + After, "comes before")]
    public void A_file_without_one_pair_of_markers_in_order_is_refused(string existing, string expected)
    {
        var (text, problem) = GeneratedSection.Merge(existing, "new figures");

        text.ShouldBeNull();
        problem.ShouldNotBeNull().ShouldContain(expected);
    }

    [Fact]
    public void The_published_page_has_its_markers()
    {
        var page = File.ReadAllText(Path.Combine(Root(), "docs", "benchmarks.md"));

        GeneratedSection.Merge(page, "## The published run\n").Problem.ShouldBeNull();
    }

    [Fact]
    public void The_published_page_shows_the_chart_once_in_the_part_the_bench_writes()
    {
        var page = File.ReadAllText(Path.Combine(Root(), "docs", "benchmarks.md"));
        var begin = page.IndexOf("<!-- bench:begin", StringComparison.Ordinal);

        // An image of the chart, not a link to the file: the hand-written text may link to it.
        System.Text.RegularExpressions.Regex.Matches(page, @"!\[[^\]]*\]\(benchmarks\.svg\)").Select(m => m.Index > begin).ShouldBe([true]);
    }

    private static string Root()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(directory!.FullName, "ModelRoute.slnx")))
        {
            directory = directory.Parent;
        }

        return directory.FullName;
    }
}
