using ModelRoute.Server.Hosting;

namespace ModelRoute.Tests.Routing;

/// <summary>
/// A failed look for due work (the store unreachable for a moment) costs the dispatch loop a short wait that grows
/// while failures repeat, not a whole poll: with the poll at a minute, a retry whose claims fail at first still runs
/// within seconds. Runs on both stores (MODELROUTE_TEST_STORE).
/// </summary>
public sealed class DispatchLoopFailureTests
{
    [Fact]
    public async Task A_look_for_work_that_fails_is_made_again_in_a_moment_and_not_a_poll_later()
    {
        await using var gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Dispatch:PollInterval"] = "00:01:00" },
            RecordingExecutionStore.Install);
        var store = RecordingExecutionStore.Of(gateway);
        using var account = await gateway.CreateAccountAsync();
        await Task.Delay(500); // The loop's first look is behind it: the next one is for the retry below.
        store.Claims.Next(2);

        // One retryable failure: the retry waits in PENDING for a claim, and the first two claims throw.
        var id = (await account.Client.SubmitTextAsync(simulate: """{"fail":"server_error","fail_times":1,"latency_ms":0}""")).Json.GetProperty("id").GetString()!;
        var done = await account.Client.WaitForTerminalAsync(id, 15);

        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        store.Claims.Failed.ShouldBe(2);
        gateway.Logs.All.ShouldContain("The dispatch loop failed; retrying");
    }
}

/// <summary>The wait of a background loop after a failed pass (<see cref="FailureBackoff"/>).</summary>
public sealed class FailureBackoffTests
{
    [Fact]
    public void Waits_double_from_a_tenth_of_a_second_up_to_the_poll_and_stay_there()
    {
        var backoff = new FailureBackoff(TimeSpan.FromSeconds(1));

        var waits = Enumerable.Range(0, 7).Select(_ => backoff.Failed().TotalMilliseconds).ToList();

        waits.ShouldBe([100, 200, 400, 800, 1000, 1000, 1000]);
    }

    [Fact]
    public void A_pass_that_works_starts_the_waits_over()
    {
        var backoff = new FailureBackoff(TimeSpan.FromMinutes(1));
        backoff.Failed();
        backoff.Failed();

        backoff.Succeeded();

        backoff.Failed().ShouldBe(FailureBackoff.First);
    }

    [Fact]
    public void A_poll_shorter_than_the_first_wait_bounds_every_wait()
    {
        var backoff = new FailureBackoff(TimeSpan.FromMilliseconds(20));

        backoff.Failed().ShouldBe(TimeSpan.FromMilliseconds(20));
        backoff.Failed().ShouldBe(TimeSpan.FromMilliseconds(20));
    }
}

/// <summary>The sweeper's pause after a failed sweep does not hold up shutdown. Runs on both stores (MODELROUTE_TEST_STORE).</summary>
public sealed class SweeperFailureTests
{
    [Fact]
    public async Task Stopping_the_gateway_does_not_wait_out_the_sweepers_pause_after_a_failed_sweep()
    {
        var gateway = new GatewayFactory(
            new Dictionary<string, string?> { ["ModelRoute:Dispatch:SweepInterval"] = "00:05:00" },
            services =>
            {
                RecordingExecutionStore.Install(services, store => store.Sweeps.Next(int.MaxValue));
                // Longer than the test allows below: a sweeper that waits out its pause holds shutdown this long.
                services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(60));
            });
        try
        {
            _ = gateway.Services; // Starts the gateway; its first sweep fails at once.
            await Eventually.HoldsAsync(() => gateway.Logs.All.Contains("The sweep failed; retrying"), "a sweep failed", 15);
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        await gateway.DisposeAsync();

        stopping.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(20), "the pause after the failed sweep ended at shutdown");
    }
}
