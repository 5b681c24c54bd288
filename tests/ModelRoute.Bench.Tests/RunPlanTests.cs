namespace ModelRoute.Bench.Tests;

/// <summary>
/// Repeated runs alternate between the stores, so that a slow spell of the host falls on both; within a store run the
/// memory phase has a gateway of its own, so that its RSS is not what the phases before it left.
/// </summary>
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

    [Fact]
    public void A_full_run_measures_memory_on_a_second_fresh_gateway_after_the_others_share_the_first()
    {
        var gateways = RunPlan.Gateways(BenchArguments.Phases);

        gateways.Select(g => g.Order(StringComparer.Ordinal).ToArray()).ShouldBe(
            [["e2e", "get", "submit", "webhooks"], ["memory"]]);
    }

    [Fact]
    public void Memory_alone_starts_one_gateway_for_it_and_no_other()
    {
        RunPlan.Gateways(["memory"]).Select(g => g.ToArray()).ShouldBe([["memory"]]);
        RunPlan.Gateways(["memory", "baseline"]).Select(g => g.ToArray()).ShouldBe([["memory"]]);
    }

    [Fact]
    public void Phases_without_memory_share_one_gateway_and_the_storage_baseline_needs_none()
    {
        RunPlan.Gateways(["submit", "get"]).Select(g => g.Order(StringComparer.Ordinal).ToArray()).ShouldBe([["get", "submit"]]);
        RunPlan.Gateways(["baseline"]).ShouldBeEmpty();
    }

    [Fact]
    public void The_memory_gateways_figures_join_the_first_gateways_and_replace_none_of_them()
    {
        var first = Runs.Run(1, "postgres", 1000, [20, 30, 80, 160]).Result with
        {
            Memory = null,
            Phases = [new PhaseTime("e2e", 10, 6), new PhaseTime("submit", 36, 27)],
        };
        var memory = StoreResult.Empty("postgres") with
        {
            Memory = Runs.Run(1, "postgres", 0, [], rss: 240).Result.Memory,
            Phases = [new PhaseTime("memory", 80, 44)],
        };

        var joined = first.Then(memory);

        joined.Memory.ShouldNotBeNull().RssMaxMiB.ShouldBe(240);
        joined.MaxRate.ShouldBe(first.MaxRate);
        joined.Submit.ShouldBe(first.Submit);
        joined.EndToEnd.ShouldBe(first.EndToEnd);
        joined.FanOut.ShouldBe(first.FanOut);
        joined.Phases.Select(p => p.Phase).ShouldBe(["e2e", "submit", "memory"]);
        joined.Failure.ShouldBeNull();
    }
}
