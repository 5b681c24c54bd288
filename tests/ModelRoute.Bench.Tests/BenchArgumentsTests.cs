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
    [InlineData("--repeat", "3", "--max-load", "1.5", "--load-wait", "600")]
    [InlineData("--repeat", "1", "--max-load", "4", "--load-wait", "0")]
    [InlineData("--repeat", "9", "--max-load", "0.25")]
    public void Known_options_with_their_values_start_a_run(params string[] args) =>
        BenchArguments.Problem(args).ShouldBeNull();

    [Theory]
    [InlineData("Unknown option '--rate'", "--rate", "500")]
    [InlineData("Unknown option 'quick'", "quick")]
    [InlineData("--output needs a value", "--output")]
    [InlineData("--store needs a value", "--store", "--quick")]
    [InlineData("--store is sqlite or postgres", "--store", "mysql")]
    [InlineData("unknown phase 'latency'", "--only", "submit,latency")]
    [InlineData("--repeat is a whole number from 1 to 9", "--repeat", "0")]
    [InlineData("--repeat is a whole number from 1 to 9", "--repeat", "10")]
    [InlineData("--repeat is a whole number from 1 to 9", "--repeat", "2.5")]
    [InlineData("--repeat needs a value", "--repeat", "--quick")]
    [InlineData("--max-load is a load average above 0", "--max-load", "0")]
    [InlineData("--max-load is a load average above 0", "--max-load", "-1")]
    [InlineData("--max-load is a load average above 0", "--max-load", "1,5")]
    [InlineData("--load-wait is whole seconds from 0 to 86400", "--load-wait", "-5")]
    [InlineData("--load-wait is whole seconds from 0 to 86400", "--load-wait", "ten")]
    public void A_mistyped_option_is_refused_with_what_is_wrong(string expected, params string[] args) =>
        BenchArguments.Problem(args).ShouldNotBeNull().ShouldContain(expected);

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void Help_asks_for_the_usage_and_no_run(string help) =>
        BenchArguments.Problem(["--quick", help]).ShouldBe("");

    [Fact]
    public void The_three_run_options_are_read_as_numbers_with_their_defaults()
    {
        string[] args = ["--quick", "--repeat", "3", "--max-load", "0.8"];

        BenchArguments.Number(args, "--repeat", 1).ShouldBe(3);
        BenchArguments.Number(args, "--max-load", LoadGate.DefaultMaxLoad).ShouldBe(0.8);
        BenchArguments.Number(args, "--load-wait", LoadGate.DefaultWaitSeconds).ShouldBe(600);
    }
}
