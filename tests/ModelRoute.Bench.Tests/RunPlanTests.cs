namespace ModelRoute.Bench.Tests;

/// <summary>Repeated runs alternate between the stores, so that a slow spell of the host falls on both.</summary>
public sealed class RunPlanTests
{
    [Fact]
    public void Three_repetitions_of_both_stores_alternate_between_them()
    {
        var plan = RunPlan.Order(["sqlite", "postgres"], 3);

        plan.Select(p => $"{p.Number}:{p.Store}#{p.Repetition}").ShouldBe(
            ["1:sqlite#1", "2:postgres#1", "3:sqlite#2", "4:postgres#2", "5:sqlite#3", "6:postgres#3"]);
    }

    [Fact]
    public void Two_repetitions_of_one_store_run_it_twice()
    {
        var plan = RunPlan.Order(["postgres"], 2);

        plan.Select(p => $"{p.Number}:{p.Store}#{p.Repetition}").ShouldBe(["1:postgres#1", "2:postgres#2"]);
    }
}
