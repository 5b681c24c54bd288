using System.Diagnostics;
using System.Globalization;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using ModelRoute.Server.Storage;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace ModelRoute.Tests.Console;

/// <summary>
/// The executions list with 100,000 executions stored for one account (written straight into the store): the API's
/// first page and filtered pages, and the console's first page, are read through an index, never a scan of the table
/// (docs/api.md#list-executions). The store's plan is what is asserted; the store time (the Server-Timing the list
/// answers with, the median of five) is written to the test output only, since a shared host's load decides it.
/// </summary>
[Collection(ConsoleBrowserTests.Name)]
public sealed class ConsoleScaleTests(ChromiumBrowser chromium, SeededGateway seeded, ITestOutputHelper output) : IClassFixture<SeededGateway>
{
    /// <summary>The list's questions, each as its query string and as the store's query.</summary>
    public static TheoryData<string> Indexed => new()
    {
        "limit=20",
        "limit=20&status=FAILED",
        "limit=20&model=sim%2Fimage",
        "limit=20&status=COMPLETED&model=sim%2Fvideo",
        "limit=20&idempotency_key=seed-5",
        "limit=20&created_after={hour}",
        "limit=20&created_after={hour}&metadata%5Border%5D=absent",
    };

    [Theory]
    [MemberData(nameof(Indexed))]
    public async Task A_page_of_100_000_executions_is_read_through_an_index(string query)
    {
        query = query.Replace("{hour}", Uri.EscapeDataString(DateTimeOffset.UtcNow.AddHours(-1).ToString("O", CultureInfo.InvariantCulture)), StringComparison.Ordinal);

        var (median, wall, page) = await MedianAsync(query);
        var (next, _, _) = page.GetProperty("next_cursor").GetString() is { } cursor ? await MedianAsync(query + "&cursor=" + cursor) : (0, 0, page);

        output.WriteLine($"{SeededGateway.StoreName} {query}: store {median:0.0} ms (next page {next:0.0} ms), loopback {wall:0.0} ms");
        query.Contains("absent", StringComparison.Ordinal).ShouldBe(page.GetProperty("data").GetArrayLength() == 0, page.ToString());
        await seeded.ShouldUseAnIndexAsync(query, output);
    }

    [Fact]
    public async Task Metadata_search_over_100_000_executions_finds_the_oldest_and_its_time_is_reported()
    {
        var (oldest, oldestWall, found) = await MedianAsync("limit=20&metadata%5Border%5D=o-3");
        var (absent, absentWall, none) = await MedianAsync("limit=20&metadata%5Bshop%5D=s3&metadata%5Border%5D=absent");

        output.WriteLine($"{SeededGateway.StoreName} metadata, the oldest match: store {oldest:0.0} ms (loopback {oldestWall:0.0} ms)");
        output.WriteLine($"{SeededGateway.StoreName} metadata, no match (every row read): store {absent:0.0} ms (loopback {absentWall:0.0} ms)");
        found.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("idempotency_key").GetString()).ShouldBe(["seed-3"]);
        none.GetProperty("data").GetArrayLength().ShouldBe(0);
    }

    [Fact]
    public async Task The_consoles_first_page_of_100_000_executions_renders_from_a_list_read_through_an_index()
    {
        await using var tab = await ConsoleTab.OpenAsync(chromium.Browser, seeded.Gateway);
        var reads = new ConcurrentQueue<(string Query, double StoreMs)>();
        tab.Page.Response += (_, response) =>
        {
            if (response.Url.Contains("/v1/executions?", StringComparison.Ordinal) && response.Headers.TryGetValue("server-timing", out var timing))
            {
                reads.Enqueue((new Uri(response.Url).Query.TrimStart('?'), SeededGateway.StoreMs(timing)));
            }
        };

        var started = Stopwatch.GetTimestamp();
        await tab.SignInAsync(seeded.Account.Key);
        await Expect(tab.Page.Locator("tbody tr")).ToHaveCountAsync(20);
        var rendered = Stopwatch.GetElapsedTime(started);

        await Expect(tab.Page.GetByRole(AriaRole.Button, new() { Name = "Load more" })).ToBeVisibleAsync();
        reads.TryPeek(out var first).ShouldBeTrue("the console read the list");
        output.WriteLine($"{SeededGateway.StoreName} console: list read ({first.Query}) {first.StoreMs:0.0} ms of store time; signed in and drawn in {rendered.TotalMilliseconds:0} ms");
        await seeded.ShouldUseAnIndexAsync(first.Query, output);
        await tab.ShouldHaveRunNothingHostileAsync();
    }

    /// <summary>Five reads of the list; the median store time and loopback time, and the last page read.</summary>
    private async Task<(double StoreMs, double WallMs, JsonElement Page)> MedianAsync(string query)
    {
        var store = new List<double>();
        var wall = new List<double>();
        JsonElement page = default;
        for (var i = 0; i < 5; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await seeded.Account.Client.GetAsync("/v1/executions?" + query);
            var body = await response.Content.ReadAsStringAsync();
            wall.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            ((int)response.StatusCode).ShouldBe(200, body);
            store.Add(SeededGateway.StoreMs(response.Headers.GetValues("Server-Timing").Single()));
            page = JsonDocument.Parse(body).RootElement.Clone();
        }

        return (store.Order().ElementAt(2), wall.Order().ElementAt(2), page);
    }
}

/// <summary>A console gateway whose account has 100,000 executions, one every 3 seconds back from now (about three and a half days).</summary>
public sealed class SeededGateway : IAsyncLifetime
{
    public const int Count = 100_000;

    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
    private static readonly string[] Models = ["sim/text", "sim/image", "sim/video", "sim/failover"];

    public static string StoreName => TestStore.IsPostgres ? "PostgreSQL" : "SQLite";

    public GatewayFactory Gateway { get; } = ConsoleGateway.Start();

    public TestAccount Account { get; private set; } = null!;

    public static double StoreMs(string serverTiming) =>
        double.Parse(serverTiming.Split("dur=")[1].Split(',', ';')[0], CultureInfo.InvariantCulture);

    public async Task InitializeAsync()
    {
        Account = await Gateway.CreateAccountAsync();
        var template = await Account.SubmitAsync("sim/text", "template", """{"latency_ms":0}""");
        await Account.Client.WaitForTerminalAsync(template);
        await using var connection = Gateway.OpenStoreConnection();
        await connection.OpenAsync();
        var (price, input, hash) = await connection.QuerySingleAsync<(string, string, string)>(
            "SELECT price, input, request_hash FROM executions WHERE id = @template", new { template });
        var now = DateTimeOffset.UtcNow.AddSeconds(-5).ToUnixTimeMilliseconds();
        var rows = Enumerable.Range(0, Count).Select(i => Row(i, now - ((Count - i) * 3000L))).ToList();
        var fixedValues = new Fixed(Account.Id, price, input, hash);
        if (TestStore.IsPostgres)
        {
            await SeedPostgresAsync(connection, rows, fixedValues);
        }
        else
        {
            await SeedSqliteAsync(connection, rows, fixedValues);
        }
    }

    public async Task DisposeAsync()
    {
        Account?.Dispose();
        await Gateway.DisposeAsync();
    }

    /// <summary>The store's plan for the list's statement answers <paramref name="query"/> from an index, never a scan of the table.</summary>
    public async Task ShouldUseAnIndexAsync(string query, ITestOutputHelper output)
    {
        var parameters = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(query);
        var metadata = parameters.Where(p => p.Key.StartsWith("metadata[", StringComparison.Ordinal))
            .Select(p => new KeyValuePair<string, string>(p.Key[9..^1], p.Value.ToString())).ToList();
        var executionQuery = new ExecutionQuery(
            parameters.TryGetValue("status", out var status) ? ModelRoute.Server.Executions.ExecutionStatuses.FromWire(status.ToString()) : null,
            parameters.TryGetValue("model", out var model) ? model.ToString() : null,
            parameters.TryGetValue("created_after", out var after) ? DateTimeOffset.Parse(after.ToString(), CultureInfo.InvariantCulture) : null,
            null,
            21)
        {
            IdempotencyKey = parameters.TryGetValue("idempotency_key", out var key) ? key.ToString() : null,
            Metadata = metadata,
        };
        var store = (ExecutionQueries)Gateway.Services.GetRequiredService<ISqlExecutionStore>();
        var sql = store.ListSql(executionQuery);
        var args = ExecutionQueries.ListParameters(Account.Id, executionQuery);
        await using var connection = Gateway.OpenStoreConnection();
        await connection.OpenAsync();
        if (TestStore.IsPostgres)
        {
            var plan = string.Join("\n", await connection.QueryAsync<string>("EXPLAIN " + sql, args));
            output.WriteLine(plan);
            plan.ShouldNotContain("Seq Scan on executions");
            plan.ShouldContain("Index");
        }
        else
        {
            var plan = (await connection.QueryAsync("EXPLAIN QUERY PLAN " + sql, args)).Select(r => (string)((IDictionary<string, object>)r)["detail"]).ToList();
            output.WriteLine(string.Join("\n", plan));
            plan.Where(line => line.Contains("executions", StringComparison.Ordinal)).ShouldAllBe(line => line.StartsWith("SEARCH executions USING", StringComparison.Ordinal));
        }
    }

    private static SeedRow Row(int i, long createdMs)
    {
        Span<char> id = stackalloc char[26];
        var ms = createdMs;
        for (var c = 9; c >= 0; c--, ms >>= 5)
        {
            id[c] = Alphabet[(int)(ms & 31)];
        }

        var rest = (long)i;
        for (var c = 25; c >= 10; c--, rest >>= 5)
        {
            id[c] = Alphabet[(int)(rest & 31)];
        }

        return new SeedRow(
            "exe_" + new string(id),
            Models[i % Models.Length],
            i % 100 == 7 ? "FAILED" : "COMPLETED",
            $"seed-{i}",
            $$"""{"order":"o-{{i}}","shop":"s{{i % 10}}"}""",
            createdMs);
    }

    private const string Columns = "id, account_id, model, status, idempotency_key, request_hash, input, estimated_micros, held_micros, actual_micros, "
        + "price, metadata, timeout_seconds, created_at, updated_at, completed_at, expires_at, next_attempt_at, attempts";

    private static async Task SeedSqliteAsync(System.Data.Common.DbConnection connection, List<SeedRow> rows, Fixed f)
    {
        await using var tx = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(
            $"""
            INSERT INTO executions ({Columns})
            VALUES (@Id, @account, @Model, @Status, @Key, @hash, @input, 1000, 0, 1000, @price, @Metadata, 60, @Created, @Created, @Created, @Created + 60000, @Created, 1)
            """,
            rows.Select(r => new { r.Id, r.Model, r.Status, r.Key, r.Metadata, r.Created, account = f.Account, hash = f.Hash, input = f.Input, price = f.Price }),
            tx);
        await tx.CommitAsync();
    }

    private static async Task SeedPostgresAsync(System.Data.Common.DbConnection connection, List<SeedRow> rows, Fixed f)
    {
        await connection.ExecuteAsync(
            $"""
            INSERT INTO executions ({Columns})
            SELECT u.id, @account, u.model, u.status, u.key, @hash, @input, 1000, 0, 1000, @price, u.metadata, 60, u.created, u.created, u.created, u.created + 60000, u.created, 1
            FROM unnest(@ids, @models, @statuses, @keys, @metadata, @created) AS u(id, model, status, key, metadata, created)
            """,
            new
            {
                account = f.Account, hash = f.Hash, input = f.Input, price = f.Price,
                ids = rows.Select(r => r.Id).ToArray(), models = rows.Select(r => r.Model).ToArray(), statuses = rows.Select(r => r.Status).ToArray(),
                keys = rows.Select(r => r.Key).ToArray(), metadata = rows.Select(r => r.Metadata).ToArray(), created = rows.Select(r => r.Created).ToArray(),
            },
            commandTimeout: 300);
        await connection.ExecuteAsync("ANALYZE executions", commandTimeout: 300);
    }

    private sealed record Fixed(string Account, string Price, string Input, string Hash);

    private sealed record SeedRow(string Id, string Model, string Status, string Key, string Metadata, long Created);
}
