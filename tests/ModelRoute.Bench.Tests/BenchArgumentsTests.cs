namespace ModelRoute.Bench.Tests;

/// <summary>A mistyped option must stop the harness before a run that would write over the published figures.</summary>
public sealed class BenchArgumentsTests
{
    [Theory]
    [InlineData()]
    [InlineData("--quick")]
    [InlineData("--quick", "--otlp", "--store", "sqlite")]
    [InlineData("--store", "postgres", "--only", "submit,baseline", "--output", "/tmp/x")]
    [InlineData("--rates", "500,1000", "--seconds", "8", "--awaiting", "1000", "--window", "5")]
    public void Known_options_with_their_values_start_a_run(params string[] args) =>
        BenchArguments.Problem(args).ShouldBeNull();

    [Theory]
    [InlineData("Unknown option '--rate'", "--rate", "500")]
    [InlineData("Unknown option 'quick'", "quick")]
    [InlineData("--output needs a value", "--output")]
    [InlineData("--store needs a value", "--store", "--quick")]
    [InlineData("--store is sqlite or postgres", "--store", "mysql")]
    [InlineData("unknown phase 'latency'", "--only", "submit,latency")]
    public void A_mistyped_option_is_refused_with_what_is_wrong(string expected, params string[] args) =>
        BenchArguments.Problem(args).ShouldNotBeNull().ShouldContain(expected);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Help_asks_for_the_usage_and_no_run(string help) =>
        BenchArguments.Problem(["--quick", help]).ShouldBe("");
}
