using Microsoft.Extensions.Time.Testing;
using ModelRoute.Server.Operations;

namespace ModelRoute.Tests.Operations;

/// <summary>docs/api.md#provider-health: the in-memory window behind the operator's provider view.</summary>
public sealed class ProviderHealthTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    [Fact]
    public void Error_rate_and_latency_percentiles_cover_the_last_five_minutes_of_calls_only()
    {
        var health = new ProviderHealth(_time);
        for (var ms = 1; ms <= 20; ms++)
        {
            health.CallEnded("p", ms % 4 == 0 ? "provider_timeout" : "succeeded", TimeSpan.FromMilliseconds(ms));
        }

        health.Calls("p").ShouldBe(new RecentCalls(20, 5, 10, 19));
        health.Calls("other").ShouldBe(RecentCalls.None);

        _time.Advance(TimeSpan.FromMinutes(5) + TimeSpan.FromMilliseconds(1));
        health.CallEnded("p", "succeeded", TimeSpan.FromMilliseconds(700));

        health.Calls("p").ShouldBe(new RecentCalls(1, 0, 700, 700), "the older calls left the window");
    }

    [Fact]
    public void A_call_cut_short_is_not_counted_and_a_refused_input_is_not_the_providers_failure()
    {
        var health = new ProviderHealth(_time);

        health.CallEnded("p", "cancelled", TimeSpan.FromSeconds(9));
        health.CallEnded("p", "deadline_exceeded", TimeSpan.FromSeconds(9));
        health.CallEnded("p", "invalid_input", TimeSpan.FromMilliseconds(5));
        health.CallEnded("p", "content_policy_violation", TimeSpan.FromMilliseconds(5));
        health.CallEnded("p", "provider_unavailable", TimeSpan.FromMilliseconds(5));
        health.CallEnded("p", "provider_rate_limited", TimeSpan.FromMilliseconds(5));

        health.Calls("p").ShouldBe(new RecentCalls(4, 2, 5, 5));
    }

    [Fact]
    public void Only_the_last_1024_calls_are_kept()
    {
        var health = new ProviderHealth(_time);
        for (var i = 0; i < 3000; i++)
        {
            health.CallEnded("p", i < 1000 ? "provider_error" : "succeeded", TimeSpan.FromMilliseconds(i < 1000 ? 1 : 50));
        }

        health.Calls("p").ShouldBe(new RecentCalls(1024, 0, 50, 50));
    }

    [Fact]
    public void Throughput_is_endings_per_second_over_the_last_whole_minute()
    {
        var health = new ProviderHealth(_time);
        _time.Advance(TimeSpan.FromMinutes(3));
        for (var second = 0; second < 60; second++)
        {
            health.Entered(ExecutionStatus.Completed);
            health.Entered(ExecutionStatus.Completed);
            health.Entered(ExecutionStatus.Failed);
            health.Entered(ExecutionStatus.Processing);
            health.Entered(ExecutionStatus.Pending);
            _time.Advance(TimeSpan.FromSeconds(1));
        }

        health.Throughput().ShouldBe((3.0, 2.0));
        health.Entered(ExecutionStatus.Completed);
        health.Throughput().ShouldBe((3.0, 2.0), "the current second counts once it is whole");

        _time.Advance(TimeSpan.FromSeconds(30));
        health.Throughput().ShouldBe((91 / 60.0, 61 / 60.0), "the older half of the minute left the window");
        _time.Advance(TimeSpan.FromMinutes(2));
        health.Throughput().ShouldBe((0.0, 0.0));
    }

    [Fact]
    public async Task Parallel_recording_loses_no_ending_and_no_call()
    {
        var health = new ProviderHealth(_time);
        _time.Advance(TimeSpan.FromMinutes(1));

        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            for (var i = 0; i < 25_000; i++)
            {
                health.Entered(ExecutionStatus.Completed);
                if (i < 200)
                {
                    health.CallEnded("p", "succeeded", TimeSpan.FromMilliseconds(3));
                }
            }
        })));
        _time.Advance(TimeSpan.FromSeconds(1));

        health.Throughput().ShouldBe((100_000 / 60.0, 100_000 / 60.0));
        health.Calls("p").Count.ShouldBe(800);
    }
}
