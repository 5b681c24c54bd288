using System.Diagnostics;

namespace ModelRoute.Bench.Tests;

/// <summary>Where a run's CPU went: read from /proc, per party, in cores over the run and in milliseconds per execution.</summary>
public sealed class CpuMeterTests
{
    [Fact]
    public void A_process_line_is_read_after_the_last_parenthesis_so_a_command_name_with_spaces_and_parentheses_does_not_shift_it()
    {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime ...
        var stat = "4242 (postgres: a (b) c) S 17 4242 4242 0 -1 4194560 900 0 0 0 120 30 7 3 20 0 1 0 555 1000 100";

        var (own, ended, parent) = CpuMeter.ParseProcessStat(stat);

        own.ShouldBe(150);
        ended.ShouldBe(10);
        parent.ShouldBe(17);
    }

    [Fact]
    public void The_machine_is_busy_in_user_nice_system_irq_and_softirq_and_not_in_idle_iowait_or_steal()
    {
        //                user nice system idle iowait irq softirq steal guest guest_nice
        var (busy, all) = CpuMeter.HostTicks("cpu  100 10 50 800 20 5 15 40 0 0");

        busy.ShouldBe(180);
        all.ShouldBe(1040);
    }

    [Fact]
    public void Use_is_in_cores_over_the_window_and_other_is_the_busy_time_no_named_party_explains()
    {
        var start = Stopwatch.GetTimestamp();
        var before = new CpuTicks(Gateway: 1_000, Storage: 500, Bench: 100, HostBusy: 10_000, HostAll: 50_000, start);
        // Two seconds later, at 100 ticks a second per core: the gateway kept 0.7 of a core busy, PostgreSQL 0.5,
        // the load generator 0.2, and the machine's two cores were busy for 1.5 cores' worth.
        var after = new CpuTicks(Gateway: 1_140, Storage: 600, Bench: 140, HostBusy: 10_300, HostAll: 50_400, start + 2 * Stopwatch.Frequency);

        var use = CpuMeter.Between(before, after);

        use.Gateway.ShouldBe(0.7);
        use.Storage.ShouldBe(0.5);
        use.Bench.ShouldBe(0.2);
        use.Other.ShouldBe(0.1);
        use.Idle.ShouldBe(0.5);
        // 1.4 cores over 1,000 executions a second: 1.4 ms of CPU each.
        use.MsPerExecution(1_000).ShouldBe(1.4);
    }

    [Fact]
    public void Other_is_never_negative_when_the_processes_ticks_run_ahead_of_the_machines()
    {
        var start = Stopwatch.GetTimestamp();
        var before = new CpuTicks(0, 0, 0, 0, 0, start);
        var after = new CpuTicks(Gateway: 101, Storage: 0, Bench: 0, HostBusy: 100, HostAll: 200, start + Stopwatch.Frequency);

        CpuMeter.Between(before, after).Other.ShouldBe(0);
    }

    [Fact]
    public void A_tree_counts_its_live_children_and_what_its_ended_children_used()
    {
        // This test process as the root: a child that burns CPU and then ends is counted through cutime + cstime once
        // waited for, as PostgreSQL's closed backends are under the postmaster.
        var root = Environment.ProcessId;
        var before = CpuMeter.TreeTicks(root) - CpuMeter.ProcessTicks(root);

        using (var child = Process.Start(new ProcessStartInfo("bash", ["-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"]) { UseShellExecute = false })!)
        {
            child.WaitForExit();
        }

        var after = CpuMeter.TreeTicks(root) - CpuMeter.ProcessTicks(root);
        after.ShouldBeGreaterThan(before);
    }

    [Fact]
    public void The_meter_sees_the_gateway_process_work()
    {
        // This process stands in for the gateway; 300 ms of spinning must show as ticks (10 ms each).
        var meter = new CpuMeter(Environment.ProcessId);
        var before = meter.Read();
        var spin = Stopwatch.StartNew();
        var x = 0UL;
        while (spin.ElapsedMilliseconds < 300)
        {
            x = (x * 6364136223846793005UL) + 1442695040888963407UL;
        }

        var after = meter.Read();
        (after.Gateway - before.Gateway).ShouldBeGreaterThan(0, $"spun to {x}");
        after.Storage.ShouldBe(0, "no storage server was named");
        (after.HostAll - before.HostAll).ShouldBeGreaterThan(0);
    }

    [Fact]
    public void The_cpu_cell_names_PostgreSQL_only_for_the_PostgreSQL_store()
    {
        var use = new CpuUse(Gateway: 0.7, Storage: 0.5, Bench: 0.2, Other: 0, Idle: 0.6);

        Report.CpuCell(use, 1_000, "postgres").ShouldBe("gateway 0.7 + PostgreSQL 0.5 + load generator 0.2 (other 0, idle 0.6); 1.4 ms");
        Report.CpuCell(use with { Storage = 0 }, 1_000, "sqlite").ShouldBe("gateway 0.7 + load generator 0.2 (other 0, idle 0.6); 0.9 ms");
        Report.CpuCell(null, 1_000, "sqlite").ShouldBe("");
    }
}
