using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Sqlite;
using Shouldly;
using Xunit;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// On the writer's connection, rows are read with SQLite's own column calls instead of a data reader and Dapper
/// (<see cref="RowReader"/>); they must come out exactly as Dapper reads them everywhere else.
/// </summary>
public sealed class SqliteRowReaderTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("sqlite-rows");
    private readonly SqliteDatabase _db;

    public SqliteRowReaderTests()
    {
        _db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "r.db")}");
        using var c = _db.OpenAsync(CancellationToken.None).GetAwaiter().GetResult();
        c.Execute("""
            CREATE TABLE things (id TEXT PRIMARY KEY, display_name TEXT, count INTEGER NOT NULL, maybe INTEGER, small INTEGER, flag INTEGER, ratio REAL, extra TEXT);
            INSERT INTO things VALUES ('a', 'Ä name with ünïcode ✓', 9007199254740993, NULL, 7, 1, 0.25, 'ignored');
            INSERT INTO things VALUES ('b', NULL, -1, 42, NULL, 0, NULL, NULL);
            """);
    }

    [Fact]
    public async Task A_class_is_read_by_column_name_and_a_null_leaves_the_default_as_dapper_does()
    {
        const string Sql = "SELECT * FROM things WHERE id >= @From ORDER BY id";
        var expected = await ReadWithDapperAsync<Thing>(Sql);

        var read = (await OnWriterAsync((c, tx) => c.QueryPreparedAsync<Thing>(Sql, new { From = "a" }, tx))).ToList();

        read.Count.ShouldBe(2);
        read.ShouldBe(expected);
        read[1].DisplayName.ShouldBe("unset", "a NULL leaves what the constructor set");
    }

    [Fact]
    public async Task A_tuple_is_read_by_position_and_a_single_value_from_the_first_column()
    {
        var tuple = await OnWriterAsync((c, tx) => c.QueryFirstOrDefaultPreparedAsync<(string Id, long Count, long? Maybe)>(
            "UPDATE things SET count = count + 1 WHERE id = @Id RETURNING id, count, maybe", new { Id = "b" }, tx));
        var text = await OnWriterAsync((c, tx) => c.QueryFirstOrDefaultPreparedAsync<string?>("SELECT display_name FROM things WHERE id = @Id", new { Id = "b" }, tx));
        var none = await OnWriterAsync((c, tx) => c.QueryFirstOrDefaultPreparedAsync<(long, long)>("SELECT count, count FROM things WHERE id = @Id", new { Id = "zzz" }, tx));

        tuple.ShouldBe(("b", 0L, (long?)42));
        text.ShouldBeNull();
        none.ShouldBe(default);
    }

    [Fact]
    public async Task What_the_raw_reader_cannot_take_goes_through_dapper_with_the_same_answer()
    {
        // A list parameter (Dapper expands it into one parameter per item), and a member type the raw reader has no
        // column call for (decimal): both must still be answered, by Dapper's command path, on the writer too.
        var listed = (await OnWriterAsync((c, tx) => c.QueryPreparedAsync<Thing>(
            "SELECT * FROM things WHERE id IN @Ids ORDER BY id", new { Ids = new[] { "a", "b", "zzz" } }, tx))).ToList();
        const string Sql = "SELECT * FROM things WHERE id >= @From ORDER BY id";
        var unreadable = (await OnWriterAsync((c, tx) => c.QueryPreparedAsync<DecimalThing>(Sql, new { From = "a" }, tx))).ToList();
        var readableAfter = (await OnWriterAsync((c, tx) => c.QueryPreparedAsync<Thing>(Sql, new { From = "a" }, tx))).ToList();

        listed.ShouldBe(await ReadWithDapperAsync<Thing>(Sql));
        unreadable.Select(t => (t.Id, t.Count)).ShouldBe([("a", 9007199254740993m), ("b", -1m)]);
        readableAfter.ShouldBe(listed, "after a fallback the same statement still answers a type it can read");
    }

    private Task<T> OnWriterAsync<T>(Func<SqliteConnection, SqliteTransaction, Task<T>> read) =>
        _db.WriteAsync(async (c, tx) => (await read(c, tx), true), CancellationToken.None);

    private async Task<List<T>> ReadWithDapperAsync<T>(string sql)
    {
        await using var c = await _db.OpenAsync(CancellationToken.None);
        return [.. await c.QueryAsync<T>(sql, new { From = "a" })];
    }

    public void Dispose()
    {
        _db.Dispose();
        SqliteConnection.ClearAllPools();
        TestPaths.TryDelete(_directory);
    }

    public sealed record Thing
    {
        public string Id { get; set; } = "";
        public string DisplayName { get; set; } = "unset";
        public long Count { get; set; }
        public long? Maybe { get; set; }
        public int? Small { get; set; }
        public bool Flag { get; set; }
        public double? Ratio { get; set; }
    }

    public sealed record DecimalThing
    {
        public string Id { get; set; } = "";
        public decimal Count { get; set; }
    }
}
