using ModelRoute.Server.Storage.Postgres;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// Grouped writes on PostgreSQL: the statements a group leaves for its last round trip go with the COMMIT, the
/// ones that lock hot rows in one order, and a failure there fails only its own write.
/// </summary>
public sealed class PostgresGroupCommitTests : IAsyncLifetime
{
    private PostgresCluster _cluster = null!;
    private string _databaseName = null!;
    private PostgresDatabase _database = null!;

    public async Task InitializeAsync()
    {
        _cluster = await PostgresCluster.SharedAsync();
        _databaseName = await _cluster.CreateDatabaseAsync("groups");
        _database = new PostgresDatabase(_cluster.ConnectionString(_databaseName));
        await ExecuteAsync(
            """
            CREATE TABLE items (id INT PRIMARY KEY);
            CREATE TABLE locks (key TEXT NOT NULL, tx BIGINT NOT NULL, seq BIGSERIAL PRIMARY KEY);
            """);
    }

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        await _cluster.DropDatabaseAsync(_databaseName);
    }

    [Fact]
    public async Task A_failing_statement_sent_with_the_commit_fails_only_its_own_write()
    {
        var writes = await QueueBehindASlowWriteAsync(20, (i, scope) =>
            scope.Later.Add(Statement(i == 7 ? "SELECT 1 / 0" : "SELECT 1")));

        var failure = await Should.ThrowAsync<PostgresException>(() => writes[7]);
        failure.SqlState.ShouldBe(PostgresErrorCodes.DivisionByZero);
        foreach (var write in writes.Where((_, i) => i != 7))
        {
            await write;
        }

        (await CountAsync("SELECT count(*) FROM items")).ShouldBe(writes.Count - 1);
        (await CountAsync("SELECT count(*) FROM items WHERE id = 7")).ShouldBe(0);
    }

    [Fact]
    public async Task Statements_that_lock_late_run_in_key_order_in_each_group()
    {
        var keys = new[] { "acc_d", "acc_b", "acc_e", "acc_a", "acc_c" };
        var writes = await QueueBehindASlowWriteAsync(30, (i, scope) =>
            scope.LockLate(keys[i % keys.Length], Statement("INSERT INTO locks (key, tx) VALUES ($1, txid_current())", keys[i % keys.Length])));
        await Task.WhenAll(writes);

        var rows = new List<(string Key, long Tx)>();
        await using (var connection = new NpgsqlConnection(_cluster.ConnectionString(_databaseName)))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT key, tx FROM locks ORDER BY seq", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                rows.Add((reader.GetString(0), reader.GetInt64(1)));
            }
        }

        rows.Count.ShouldBe(30);
        var groups = rows.GroupBy(r => r.Tx).ToList();
        groups.ShouldContain(g => g.Count() > 1, "the queued writes shared a transaction");
        foreach (var group in groups)
        {
            group.Select(r => r.Key).ShouldBe(group.Select(r => r.Key).Order(StringComparer.Ordinal), $"transaction {group.Key}");
        }
    }

    /// <summary>
    /// Starts a write that keeps the lane busy for a moment, then queues <paramref name="count"/> writes (item i inserts
    /// row i and then runs <paramref name="finish"/>), so that they commit as one group. (A grouped write's first
    /// statement returns rows: the group reads one result per write.)
    /// </summary>
    private async Task<List<Task<int>>> QueueBehindASlowWriteAsync(int count, Action<int, PostgresDatabase.GroupScope> finish)
    {
        var slow = _database.WriteGroupedAsync(GroupedLane.Moves, Statement("SELECT pg_sleep(0.3)"), _ => Task.FromResult(0), (_, _) => Task.FromResult(0), CancellationToken.None);
        await Task.Delay(100);
        var writes = Enumerable.Range(0, count).Select(i => _database.WriteGroupedAsync(
            GroupedLane.Moves,
            Statement("INSERT INTO items (id) VALUES ($1) RETURNING id", i),
            _ => Task.FromResult(i),
            (read, scope) =>
            {
                finish(read, scope);
                return Task.FromResult(read);
            },
            CancellationToken.None)).ToList();
        await slow;
        return writes;
    }

    private static NpgsqlBatchCommand Statement(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_cluster.ConnectionString(_databaseName));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(_cluster.ConnectionString(_databaseName));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
