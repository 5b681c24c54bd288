using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Sqlite;
using Shouldly;
using Xunit;

namespace ModelRoute.Tests.Storage;

/// <summary>Writes queued together share one transaction, yet each keeps its own outcome.</summary>
public sealed class SqliteGroupCommitTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mr-group-").FullName;
    private readonly SqliteDatabase _db;

    public SqliteGroupCommitTests()
    {
        // A short WAL before the writer catches up (4 MiB), so that a test's writes make it start over many times.
        _db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "g.db")};Foreign Keys=True", catchUpAfterFrames: 1024);
        _db.MigrateAsync(CancellationToken.None).GetAwaiter().GetResult();
        using var c = _db.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        c.Execute("CREATE TABLE items (n INTEGER PRIMARY KEY, body TEXT)");
    }

    [Fact]
    public async Task The_writer_keeps_its_savepoint_journals_in_memory()
    {
        // With temp_store at its default (a file), every group of savepoints opened, wrote and unlinked a temporary file.
        var tempStore = await _db.WriteAsync(async (c, tx) => (await c.ExecuteScalarAsync<long>("PRAGMA temp_store", transaction: tx), true), CancellationToken.None);

        tempStore.ShouldBe(2, "2 is MEMORY");
    }

    [Fact]
    public async Task Writes_queued_behind_a_slow_one_commit_together_and_each_is_visible_when_its_caller_hears_back()
    {
        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) =>
        {
            await gate.Task;
            await c.ExecuteAsync("INSERT INTO items (n) VALUES (-1)", transaction: tx);
            return (0, true);
        }, CancellationToken.None);

        var writes = Enumerable.Range(0, 200).Select(n => _db.WriteAsync(async (c, tx) =>
        {
            await c.ExecuteAsync("INSERT INTO items (n) VALUES (@n)", new { n }, tx);
            return (n, true);
        }, CancellationToken.None)).ToArray();
        gate.SetResult();
        await blocker;

        foreach (var write in writes)
        {
            var n = await write;
            // The caller hears back only after the commit, so another connection already sees it.
            await using var reader = await _db.OpenAsync(CancellationToken.None);
            (await reader.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items WHERE n = @n", new { n })).ShouldBe(1);
        }

        (await Count()).ShouldBe(201);
    }

    [Fact]
    public async Task An_urgent_write_queued_behind_background_writes_runs_before_them()
    {
        var gate = new TaskCompletionSource();
        var order = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);
        var background = Enumerable.Range(0, 50).Select(n => _db.WriteAsync((c, tx) =>
        {
            order.Enqueue($"background-{n}");
            return Task.FromResult((n, true));
        }, CancellationToken.None)).ToArray();
        var urgent = _db.WriteAsync((c, tx) =>
        {
            order.Enqueue("urgent");
            return Task.FromResult((0, true));
        }, CancellationToken.None, urgent: true);
        gate.SetResult();
        await blocker;
        await urgent;
        await Task.WhenAll(background);

        order.First().ShouldBe("urgent");
        order.Skip(1).ShouldBe(Enumerable.Range(0, 50).Select(n => $"background-{n}"));
    }

    [Fact]
    public async Task A_write_that_throws_or_rolls_back_leaves_the_rest_of_its_group_committed()
    {
        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);

        var writes = Enumerable.Range(0, 90).Select(n => _db.WriteAsync<int>(async (c, tx) =>
        {
            await c.ExecuteAsync("INSERT INTO items (n) VALUES (@n)", new { n }, tx);
            return (n % 3) switch
            {
                0 => (n, true),
                1 => (n, false),
                _ => throw new InvalidOperationException($"write {n} failed after inserting"),
            };
        }, CancellationToken.None)).ToArray();
        gate.SetResult();
        await blocker;

        for (var n = 0; n < writes.Length; n++)
        {
            if (n % 3 == 2)
            {
                (await Should.ThrowAsync<InvalidOperationException>(writes[n])).Message.ShouldBe($"write {n} failed after inserting");
            }
            else
            {
                (await writes[n]).ShouldBe(n);
            }
        }

        await using var c = await _db.OpenAsync(CancellationToken.None);
        (await c.QueryAsync<long>("SELECT n FROM items ORDER BY n")).ShouldBe(Enumerable.Range(0, 90).Where(n => n % 3 == 0).Select(n => (long)n));
        _db.GroupsRunAgain.ShouldBeGreaterThan(0, "writes that inserted and then failed are undone alone only by a second run with savepoints");
    }

    [Fact]
    public async Task A_write_that_fails_or_rolls_back_before_changing_anything_costs_its_group_no_second_run()
    {
        await using (var c = await _db.OpenAsync(CancellationToken.None))
        {
            await c.ExecuteAsync("INSERT INTO items (n) VALUES (-1)");
        }

        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);

        var writes = Enumerable.Range(0, 90).Select(n => _db.WriteAsync<int>(async (c, tx) =>
        {
            switch (n % 3)
            {
                case 1:
                    return (n, false);
                case 2:
                    // A broken constraint is undone by SQLite itself: nothing of the statement stays.
                    await c.ExecutePreparedAsync("INSERT INTO items (n) VALUES (@n)", new { n = -1 }, tx);
                    break;
            }

            await c.ExecutePreparedAsync("INSERT INTO items (n) VALUES (@n)", new { n }, tx);
            return (n, true);
        }, CancellationToken.None)).ToArray();
        gate.SetResult();
        await blocker;

        for (var n = 0; n < writes.Length; n++)
        {
            if (n % 3 == 2)
            {
                (await Should.ThrowAsync<SqliteException>(writes[n])).SqliteErrorCode.ShouldBe(19); // SQLITE_CONSTRAINT
            }
            else
            {
                (await writes[n]).ShouldBe(n);
            }
        }

        await using var reader = await _db.OpenAsync(CancellationToken.None);
        (await reader.QueryAsync<long>("SELECT n FROM items WHERE n >= 0 ORDER BY n")).ShouldBe(Enumerable.Range(0, 90).Where(n => n % 3 == 0).Select(n => (long)n));
        _db.GroupsRunAgain.ShouldBe(0);
    }

    [Fact]
    public async Task A_write_that_ends_the_transaction_fails_its_whole_group_and_the_writer_goes_on()
    {
        // As SQLite does on an I/O error or a full disk: the group's transaction is gone, with the writes before it.
        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);
        var before = _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO items (n) VALUES (1)", transaction: tx), true), CancellationToken.None);
        var ending = _db.WriteAsync<int>((c, tx) =>
        {
            SQLitePCL.raw.sqlite3_exec(c.Handle, "ROLLBACK").ShouldBe(0);
            throw new InvalidOperationException("the transaction is gone");
        }, CancellationToken.None);
        var after = _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO items (n) VALUES (2)", transaction: tx), true), CancellationToken.None);
        gate.SetResult();
        try
        {
            await blocker;
        }
        catch (InvalidOperationException)
        {
            // The blocker shared the lost group.
        }

        await Should.ThrowAsync<InvalidOperationException>(before);
        (await Should.ThrowAsync<InvalidOperationException>(ending)).Message.ShouldBe("the transaction is gone");

        (await after).ShouldBe(1, "the write queued after the lost group runs in the next one");
        await using var reader = await _db.OpenAsync(CancellationToken.None);
        (await reader.QueryAsync<long>("SELECT n FROM items ORDER BY n")).ShouldBe([2L], "nothing of the lost group is on disk");
    }

    [Fact]
    public async Task A_prepared_statement_answers_the_rows_it_changed_and_a_broken_constraint_is_a_sqlite_error_of_that_write_alone()
    {
        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);
        const string Insert = "INSERT INTO items (n) VALUES (@n) ON CONFLICT (n) DO NOTHING";
        const string Strict = "INSERT INTO items (n) VALUES (@n)";

        var first = _db.WriteAsync(async (c, tx) => (await c.ExecutePreparedAsync(Insert, new { n = 7L }, tx), true), CancellationToken.None);
        var again = _db.WriteAsync(async (c, tx) => (await c.ExecutePreparedAsync(Insert, new { n = 7L }, tx), true), CancellationToken.None);
        var duplicate = _db.WriteAsync(async (c, tx) => (await c.ExecutePreparedAsync(Strict, new { n = 7L }, tx), true), CancellationToken.None);
        var other = _db.WriteAsync(async (c, tx) => (await c.ExecutePreparedAsync(Strict, new { n = 8L }, tx), true), CancellationToken.None);
        gate.SetResult();
        await blocker;

        (await first).ShouldBe(1);
        (await again).ShouldBe(0);
        (await Should.ThrowAsync<SqliteException>(duplicate)).SqliteErrorCode.ShouldBe(19); // SQLITE_CONSTRAINT
        (await other).ShouldBe(1);
        await using var c = await _db.OpenAsync(CancellationToken.None);
        (await c.QueryAsync<long>("SELECT n FROM items ORDER BY n")).ShouldBe([7L, 8L]);
    }

    [Fact]
    public async Task A_failed_commit_fails_every_write_of_the_group_and_the_writer_goes_on()
    {
        // A deferred foreign key fails only at COMMIT, so the whole group is lost together.
        await using (var c = await _db.OpenAsync(CancellationToken.None))
        {
            await c.ExecuteAsync("CREATE TABLE parents (id INTEGER PRIMARY KEY); CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents(id) DEFERRABLE INITIALLY DEFERRED)");
        }

        var gate = new TaskCompletionSource();
        var blocker = _db.WriteAsync(async (c, tx) => { await gate.Task; return (0, true); }, CancellationToken.None);
        var good = _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO items (n) VALUES (7)", transaction: tx), true), CancellationToken.None);
        var orphan = _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO children (id, parent) VALUES (1, 42)", transaction: tx), true), CancellationToken.None);
        gate.SetResult();
        try
        {
            await blocker;
        }
        catch (SqliteException)
        {
            // The blocker may have shared the failing group; either way is right.
        }

        await Should.ThrowAsync<SqliteException>(good);
        await Should.ThrowAsync<SqliteException>(orphan);
        (await Count()).ShouldBe(0);

        var after = await _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO items (n) VALUES (8)", transaction: tx), true), CancellationToken.None);
        after.ShouldBe(1);
        (await Count()).ShouldBe(1);
    }

    [Fact]
    public async Task Under_steady_writes_the_wal_starts_over_instead_of_growing_with_everything_written()
    {
        // Writers that never pause leave no moment in which a checkpoint beside them has copied the whole WAL, and
        // SQLite starts the WAL over only from such a moment: it grew by every commit (1.5 GB after a minute of load).
        // Reads go on meanwhile, as the gateway's do (a lookup by key).
        using var reading = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!reading.IsCancellationRequested)
            {
                await using var c = await _db.OpenAsync(CancellationToken.None);
                await c.QueryFirstOrDefaultAsync<string>("SELECT body FROM items WHERE n = @n", new { n = Random.Shared.Next(16_000) });
            }
        });
        var payload = new string('x', 1000);
        const int Writers = 16, WritesEach = 1000;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < WritesEach; i++)
            {
                var n = (w * WritesEach) + i;
                await _db.WriteAsync(async (c, tx) => (await c.ExecuteAsync("INSERT INTO items (n, body) VALUES (@n, @payload)", new { n, payload }, tx), true), CancellationToken.None);
            }
        })));
        await reading.CancelAsync();
        await reader;

        (await Count()).ShouldBe(Writers * WritesEach);
        var written = Writers * WritesEach * payload.Length;
        var wal = new FileInfo(Path.Combine(_directory, "g.db-wal")).Length;
        // Each group writes whole pages again, so a WAL that never started over held 13 times the rows' bytes here, and
        // one that starts over each round about 1 times. A busy machine can make a few rounds in a row miss (a reader
        // outlasts every try), hence the margin.
        wal.ShouldBeLessThan(written * 4L, $"the WAL holds {wal:N0} bytes after {written:N0} bytes of rows");
    }

    private async Task<long> Count()
    {
        await using var c = await _db.OpenAsync(CancellationToken.None);
        return await c.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM items");
    }

    public void Dispose()
    {
        _db.Dispose();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_directory, recursive: true);
    }
}
