using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// Which failures mean "the store cannot be reached" (answered 503 STORE_UNAVAILABLE), and the shared state that logs
/// one line when an outage begins and one when it ends, however many requests and workers meet it.
/// </summary>
public sealed class StoreAvailabilityTests
{
    public static TheoryData<Exception> Unavailable() => new()
    {
        new NpgsqlException("Failed to connect to 127.0.0.1:5432", new SocketException((int)SocketError.ConnectionRefused)),
        new NpgsqlException("The connection pool has been exhausted, either raise 'Max Pool Size' or 'Timeout'.", new TimeoutException()),
        new PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01"),
        new PostgresException("the database system is starting up", "FATAL", "FATAL", "57P03"),
        new PostgresException("sorry, too many clients already", "FATAL", "FATAL", "53300"),
        new PostgresException("connection failure", "FATAL", "FATAL", "08006"),
        new InvalidOperationException("wrapped", new NpgsqlException("Exception while reading from stream", new EndOfStreamException())),
        new AggregateException(new NpgsqlException("broken")),
        new SqliteException("database is locked", 5),
        new SqliteException("database table is locked", 6),
        new SqliteException("disk I/O error", 10, 266),
        new SqliteException("database or disk is full", 13),
        new SqliteException("unable to open database file", 14),
    };

    public static TheoryData<Exception> Other() => new()
    {
        new PostgresException("duplicate key value violates unique constraint", "ERROR", "ERROR", "23505"),
        new PostgresException("canceling statement due to user request", "ERROR", "ERROR", "57014"),
        new PostgresException("syntax error", "ERROR", "ERROR", "42601"),
        new SqliteException("UNIQUE constraint failed", 19),
        new InvalidOperationException("a bug"),
        new OperationCanceledException(),
    };

    [Theory]
    [MemberData(nameof(Unavailable))]
    public void Failures_to_reach_the_store_are_recognised(Exception exception) =>
        StoreFailures.IsUnavailable(exception).ShouldBeTrue(exception.ToString());

    [Theory]
    [MemberData(nameof(Other))]
    public void Other_failures_are_not_taken_for_an_outage(Exception exception) =>
        StoreFailures.IsUnavailable(exception).ShouldBeFalse(exception.ToString());

    [Fact]
    public async Task An_outage_met_by_many_callers_logs_one_warning_and_its_end_one_information_line()
    {
        var logs = new CapturedLogs();
        using var loggers = new LoggerFactory([logs]);
        var health = new SwitchedHealth();
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        using var availability = new StoreAvailability(health, time, loggers.CreateLogger<StoreAvailability>());
        await availability.StartAsync(CancellationToken.None);
        var refused = new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused));

        availability.Report(new InvalidOperationException("a bug")).ShouldBeFalse();
        availability.IsAvailable.ShouldBeTrue();
        Parallel.For(0, 500, _ => availability.Report(refused).ShouldBeTrue());

        availability.IsAvailable.ShouldBeFalse();
        Count(logs, LogLevel.Warning).ShouldBe(1, logs.All);
        logs.All.ShouldContain("Connection refused");
        logs.All.ShouldNotContain("   at ");

        health.Up = true;
        await Eventually.HoldsAsync(() => ProbedUp(availability, time) && Count(logs, LogLevel.Information) == 1, "the probe finds the store again", seconds: 10);

        // Stragglers failing just after the recovery continue the same outage: no new line, unless it lasts.
        health.Up = false;
        availability.Report(refused).ShouldBeTrue();
        await Task.Delay(StoreAvailability.ProbeInterval * 2);
        Count(logs, LogLevel.Warning).ShouldBe(1, logs.All);
        time.Advance(StoreAvailability.Settle);
        await Eventually.HoldsAsync(() => Count(logs, LogLevel.Warning) == 2, "a relapse that lasts is announced", seconds: 10);
        health.Up = true;
        await Eventually.HoldsAsync(() => ProbedUp(availability, time) && Count(logs, LogLevel.Information) == 2, "and so is its end", seconds: 10);

        await availability.StopAsync(CancellationToken.None);
    }

    /// <summary>The probe waits on the test's clock: move it a probe interval while the store is still marked down.</summary>
    private static bool ProbedUp(StoreAvailability availability, Microsoft.Extensions.Time.Testing.FakeTimeProvider time)
    {
        if (!availability.IsAvailable)
        {
            time.Advance(StoreAvailability.ProbeInterval);
        }

        return availability.IsAvailable;
    }

    private static int Count(CapturedLogs logs, LogLevel level) => logs.Lines.Count(l => l.StartsWith(level.ToString() + " ", StringComparison.Ordinal));

    private sealed class SwitchedHealth : IStoreHealth
    {
        public volatile bool Up;

        public Task<bool> IsReadyAsync(CancellationToken cancellationToken) => Task.FromResult(Up);
    }
}
