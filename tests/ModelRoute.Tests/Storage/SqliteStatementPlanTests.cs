using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Data.Sqlite;
using ModelRoute.Server.Storage.Sqlite;
using Shouldly;
using Xunit;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The statements every execution runs on SQLite's single writer must not build temporary b-trees for status lists,
/// and the sweeper's and the purge's queries must still find their rows through their partial indexes. For an IN list
/// of three or more values SQLite builds a temporary b-tree of it each time the statement runs, and it evaluates every
/// partial index's predicate for a row's old and new values: with IN lists there, a state move built six of them and
/// cost three times as much (36 µs against 11 µs measured). A query matches a partial index only if it repeats the
/// index's predicate, so the two must change together.
/// </summary>
public sealed class SqliteStatementPlanTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("sqlite-plan");
    private readonly SqliteDatabase _db;

    public SqliteStatementPlanTests()
    {
        _db = new SqliteDatabase($"Data Source={Path.Combine(_directory, "p.db")}");
        _db.MigrateAsync(CancellationToken.None).GetAwaiter().GetResult();
    }

    [Fact]
    public async Task A_state_move_builds_no_temporary_btree_but_the_one_that_holds_its_returned_row()
    {
        var start = TransitionValues.For(
            ExecutionTransition.StartAttempt("exe_1", "node", DateTimeOffset.FromUnixTimeMilliseconds(60_000), "sim", "text", "hash"), 40_000);

        (await TemporaryBtreesAsync(SqliteExecutionStore.MoveSql, start)).ShouldBe(1, "RETURNING keeps its rows in one");
    }

    [Fact]
    public async Task A_submission_insert_builds_no_temporary_btree()
    {
        var row = new
        {
            Id = "exe_1", AccountId = "acct_1", Model = "sim/text", IdempotencyKey = "k", RequestHash = "h", Input = "{}", EstimatedMicros = 1L,
            HoldMicros = 2L, Price = "{}", WebhookUrl = (string?)null, WebhookEvents = (string?)null, Metadata = (string?)null, TimeoutSeconds = 300,
            MaxCostMicros = (long?)null, Now = 1L, ExpiresAt = 2L, LeaseOwner = (string?)null, LeaseExpiresAt = (long?)null,
        };

        (await TemporaryBtreesAsync(SqliteExecutionStore.InsertSql, row)).ShouldBe(0);
    }

    [Theory]
    [InlineData("SELECT id FROM executions WHERE " + SqliteExecutionStore.OpenStatus + " AND expires_at <= 5 ORDER BY expires_at LIMIT 10", "ix_executions_open_expiry")]
    [InlineData("SELECT id FROM executions WHERE " + SqliteExecutionStore.EndedStatus + " AND completed_at < 5 LIMIT 10", "ix_executions_ended")]
    public async Task The_sweeper_and_the_purge_find_their_rows_through_their_partial_indexes(string query, string index)
    {
        await using var c = await _db.OpenAsync(CancellationToken.None);

        var plan = string.Join(" | ", (await c.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>("EXPLAIN QUERY PLAN " + query)).Select(p => p.Detail));

        plan.ShouldContain($"USING INDEX {index}");
    }

    [Theory]
    [InlineData(SqliteExecutionStore.MoveSql)]
    [InlineData(SqliteExecutionStore.HoldSql)]
    [InlineData(SqliteExecutionStore.ClaimSql)]
    [InlineData(SqliteWebhookOutbox.ClaimSql)]
    [InlineData(SqliteWebhookOutbox.RecordAttemptSql)]
    public async Task The_writers_statements_that_return_rows_have_no_check_that_would_abort_them(string sql)
    {
        // SQLite runs RETURNING as a trigger; with a check that aborts (OE_Abort, 2, in a Halt's P2) such a statement gets
        // a statement journal, a copy of every page it changes. OR FAIL (3) leaves its checks without one.
        await using var c = await _db.OpenAsync(CancellationToken.None);
        var aborting = new List<string>();
        await using (var program = await c.ExecuteReaderAsync("EXPLAIN " + sql))
        {
            while (await program.ReadAsync())
            {
                var opcode = program.GetString(program.GetOrdinal("opcode"));
                if (opcode is "Halt" or "HaltIfNull" && program.GetInt64(program.GetOrdinal("p1")) != 0 && program.GetInt64(program.GetOrdinal("p2")) == 2)
                {
                    aborting.Add($"{opcode} {program.GetValue(program.GetOrdinal("p4"))}");
                }
            }
        }

        aborting.ShouldBeEmpty();
    }

    [Fact]
    public async Task The_claim_reads_the_front_of_each_accounts_queue_through_indexes_and_scans_no_table()
    {
        await using var c = await _db.OpenAsync(CancellationToken.None);

        var steps = (await c.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>(
            "EXPLAIN QUERY PLAN " + SqliteExecutionStore.ClaimSql, new { owner = "node", max = 64, Now = 30_000L, LeaseUntil = 40_000L })).Select(p => p.Detail).ToList();
        var plan = string.Join(" | ", steps);

        // Fair share (docs/routing.md): the accounts with PENDING work, the front of each one's queue (read once), the
        // calls of each, each account's cap, and the claimed rows by key. SQLite names a table by its alias in the plan,
        // and says COVERING where the index alone answers (no row read).
        plan.ShouldMatch(@"SEARCH e USING (COVERING )?INDEX ix_executions_account_due \(account_id>\?\)");
        Regex.Count(plan, Regex.Escape("SEARCH x USING INDEX ix_executions_account_due (account_id=? AND next_attempt_at<?)")).ShouldBe(1, plan);
        plan.ShouldMatch(@"SEARCH r USING (COVERING )?INDEX ix_executions_account_processing \(account_id=\?\)");
        plan.ShouldContain("SEARCH a USING INDEX sqlite_autoindex_accounts_1 (id=?)");
        plan.ShouldContain("SEARCH executions USING COVERING INDEX sqlite_autoindex_executions_1 (id=?)");
        steps.ShouldNotContain(step => Regex.IsMatch(step, @"^SCAN (executions|accounts|e|d|x|r|l|a)$"), plan);
    }

    private async Task<int> TemporaryBtreesAsync(string sql, object parameters)
    {
        await using var c = await _db.OpenAsync(CancellationToken.None);
        await using var program = await c.ExecuteReaderAsync("EXPLAIN " + sql, parameters);
        var opened = 0;
        while (await program.ReadAsync())
        {
            opened += program.GetString(program.GetOrdinal("opcode")) == "OpenEphemeral" ? 1 : 0;
        }

        return opened;
    }

    public void Dispose()
    {
        _db.Dispose();
        SqliteConnection.ClearAllPools();
        TestPaths.TryDelete(_directory);
    }
}
