using System.Globalization;

namespace ModelRoute.Tests.Executions;

/// <summary>GET /v1/executions and GET /v1/ledger: newest first, filters, cursor pagination.</summary>
public sealed class ListTests : IAsyncLifetime
{
    private const string Slow = """{"latency_ms":20000}""";

    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Twenty_five_executions_page_newest_first_as_10_10_and_5()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submitted = await SubmitManyAsync(account.Client, 25);

        var pages = await account.Client.PagesAsync("/v1/executions?limit=10");

        pages.Select(p => p.GetProperty("data").GetArrayLength()).ShouldBe([10, 10, 5]);
        pages.Select(p => p.GetProperty("has_more").GetBoolean()).ShouldBe([true, true, false]);
        pages.ShouldAllBe(p => p.GetProperty("object").GetString() == "list");
        pages[0].GetProperty("next_cursor").GetString().ShouldNotBeNullOrEmpty();
        pages[1].GetProperty("next_cursor").GetString().ShouldNotBeNullOrEmpty();
        pages[2].GetProperty("next_cursor").ValueKind.ShouldBe(JsonValueKind.Null);
        var listed = pages.SelectMany(p => p.GetProperty("data").EnumerateArray()).ToList();
        var ids = listed.Select(IdOf).ToList();
        ids.Distinct().Count().ShouldBe(25);
        ids.ShouldBe(Enumerable.Reverse(submitted).ToList(), "newest first, every execution exactly once");
        listed.ShouldAllBe(e => e.GetProperty("object").GetString() == "execution");
        var created = listed.Select(CreatedAt).ToList();
        created.Zip(created.Skip(1)).ShouldAllBe(pair => pair.First >= pair.Second);
    }

    [Fact]
    public async Task Without_a_limit_a_page_holds_20()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submitted = await SubmitManyAsync(account.Client, 21);

        var page = await account.Client.GetApiAsync("/v1/executions");

        page.Status.ShouldBe(200, page.Body);
        page.Json.GetProperty("data").GetArrayLength().ShouldBe(20);
        page.Json.GetProperty("has_more").GetBoolean().ShouldBeTrue();
        var rest = await account.Client.GetApiAsync("/v1/executions?cursor=" + page.Json.GetProperty("next_cursor").GetString());
        rest.Json.GetProperty("data").EnumerateArray().Select(IdOf).ShouldBe([submitted[0]]);
        rest.Json.GetProperty("has_more").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public async Task A_page_that_ends_exactly_at_the_last_execution_says_there_is_no_more()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        await SubmitManyAsync(account.Client, 4);

        var page = await account.Client.GetApiAsync("/v1/executions?limit=4");

        page.Json.GetProperty("data").GetArrayLength().ShouldBe(4);
        page.Json.GetProperty("has_more").GetBoolean().ShouldBeFalse();
        page.Json.GetProperty("next_cursor").ValueKind.ShouldBe(JsonValueKind.Null);
    }

    [Fact]
    public async Task Status_filter_returns_only_executions_in_that_status()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var completed = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            completed.Add(IdOf((await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0}""")).Json));
        }

        var failed = IdOf((await account.Client.SubmitTextAsync(simulate: """{"latency_ms":0,"fail":"content_policy"}""")).Json);
        var open = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            open.Add(IdOf((await account.Client.SubmitTextAsync(simulate: Slow)).Json));
        }

        foreach (var id in completed)
        {
            (await account.Client.WaitForTerminalAsync(id)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        }

        (await account.Client.WaitForTerminalAsync(failed)).GetProperty("status").GetString().ShouldBe("FAILED");

        (await account.Client.ExecutionsAsync("&status=COMPLETED")).Select(IdOf).ShouldBe(Enumerable.Reverse(completed).ToList());
        (await account.Client.ExecutionsAsync("&status=FAILED")).Select(IdOf).ShouldBe([failed]);
        (await account.Client.ExecutionsAsync("&status=CANCELLED")).ShouldBeEmpty();
        foreach (var id in open)
        {
            await account.Client.WaitForStatusAsync(id, "PROCESSING");
        }

        (await account.Client.ExecutionsAsync("&status=PROCESSING")).Select(IdOf).ShouldBe(Enumerable.Reverse(open).ToList());
        (await account.Client.ExecutionsAsync("&status=PENDING")).ShouldBeEmpty();

        var paged = await account.Client.PagesAsync("/v1/executions?status=COMPLETED&limit=2");
        paged.Select(p => p.GetProperty("data").GetArrayLength()).ShouldBe([2, 1]);
        paged.SelectMany(p => p.GetProperty("data").EnumerateArray()).Select(IdOf).ShouldBe(Enumerable.Reverse(completed).ToList());
    }

    [Fact]
    public async Task Model_filter_returns_only_that_model()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var videos = new List<string>();
        var texts = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            texts.Add(IdOf((await account.Client.SubmitTextAsync(simulate: Slow)).Json));
            var video = await account.Client.SubmitAsync("sim/video", """{"prompt":"waves","duration_seconds":1,"simulate":{"latency_ms":20000}}""");
            video.Status.ShouldBe(202, video.Body);
            videos.Add(IdOf(video.Json));
        }

        var onlyVideo = await account.Client.ExecutionsAsync("&model=sim%2Fvideo");

        onlyVideo.Select(IdOf).ShouldBe(Enumerable.Reverse(videos).ToList());
        onlyVideo.ShouldAllBe(e => e.GetProperty("model").GetString() == "sim/video");
        (await account.Client.ExecutionsAsync("&model=sim/text")).Select(IdOf).ShouldBe(Enumerable.Reverse(texts).ToList());
        (await account.Client.ExecutionsAsync("&model=sim/image")).ShouldBeEmpty();
    }

    [Fact]
    public async Task Created_after_returns_only_executions_created_later()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var before = await SubmitManyAsync(account.Client, 3);
        var last = await account.Client.GetApiAsync($"/v1/executions/{before[^1]}");
        var cutoffText = last.Json.GetProperty("created_at").GetString()!;
        var cutoff = DateTimeOffset.Parse(cutoffText, CultureInfo.InvariantCulture);
        await Eventually.HoldsAsync(() => DateTimeOffset.UtcNow > cutoff.AddMilliseconds(2), "the clock passes the cutoff");
        var after = await SubmitManyAsync(account.Client, 2);
        var expected = Enumerable.Reverse(after).ToList();

        (await account.Client.ExecutionsAsync("&created_after=" + Uri.EscapeDataString(cutoffText))).Select(IdOf).ShouldBe(expected);

        // The same instant written with an offset (RFC 3339) means the same thing.
        var withOffset = cutoff.ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);
        (await account.Client.ExecutionsAsync("&created_after=" + Uri.EscapeDataString(withOffset))).Select(IdOf).ShouldBe(expected);

        // Strictly after: the execution created at the cutoff itself is not in the answer.
        var all = await account.Client.ExecutionsAsync();
        var firstCreated = all.Single(e => IdOf(e) == before[0]).GetProperty("created_at").GetString()!;
        var sinceFirst = (await account.Client.ExecutionsAsync("&created_after=" + Uri.EscapeDataString(firstCreated))).Select(IdOf).ToList();
        sinceFirst.ShouldNotContain(before[0]);
        sinceFirst.ShouldBe(all.Where(e => CreatedAt(e) > DateTimeOffset.Parse(firstCreated, CultureInfo.InvariantCulture)).Select(IdOf).ToList());
        sinceFirst.ShouldContain(after[0]);

        (await account.Client.ExecutionsAsync("&created_after=2000-01-01T00:00:00Z")).Count.ShouldBe(5);
        (await account.Client.ExecutionsAsync("&created_after=2999-01-01T00:00:00Z")).ShouldBeEmpty();
    }

    /// <summary>Paging parameters every list refuses, and the parameter each problem names.</summary>
    public static TheoryData<string, string> BadPaging => new()
    {
        { "limit=0", "limit" },
        { "limit=101", "limit" },
        { "limit=-1", "limit" },
        { "limit=ten", "limit" },
        { "cursor=garbage", "cursor" },
    };

    [Theory]
    [MemberData(nameof(BadPaging))]
    [InlineData("cursor=!!!!", "cursor")]
    [InlineData("status=DONE", "status")]
    [InlineData("created_after=yesterday", "created_after")]
    public Task Bad_list_parameters_are_refused_with_400_naming_the_parameter(string query, string field) =>
        RefusedAsync("/v1/executions?" + query, field);

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    public async Task Limits_of_1_and_100_are_accepted(int limit)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        await SubmitManyAsync(account.Client, 2);

        var response = await account.Client.GetApiAsync($"/v1/executions?limit={limit}");

        response.Status.ShouldBe(200, response.Body);
        response.Json.GetProperty("data").GetArrayLength().ShouldBe(Math.Min(limit, 2));
        response.Json.GetProperty("has_more").GetBoolean().ShouldBe(limit < 2);
    }

    [Fact]
    public Task A_ledger_cursor_is_not_an_executions_cursor() => CursorOfOneListRefusedByTheOtherAsync("/v1/ledger", "/v1/executions");

    [Fact]
    public async Task Another_account_never_sees_these_executions()
    {
        using var alice = await _gateway.CreateAccountAsync("10.00");
        using var bob = await _gateway.CreateAccountAsync("10.00");
        var alices = await SubmitManyAsync(alice.Client, 3);
        var alicePage = await alice.Client.GetApiAsync("/v1/executions?limit=1");
        var aliceCursor = alicePage.Json.GetProperty("next_cursor").GetString()!;

        var bobsList = await bob.Client.GetApiAsync("/v1/executions");
        var bobsFiltered = await bob.Client.ExecutionsAsync("&model=sim%2Ftext&created_after=2000-01-01T00:00:00Z");
        var bobWithAlicesCursor = await bob.Client.GetApiAsync("/v1/executions?cursor=" + aliceCursor);

        bobsList.Status.ShouldBe(200, bobsList.Body);
        bobsList.Json.GetProperty("data").GetArrayLength().ShouldBe(0);
        bobsList.Json.GetProperty("has_more").GetBoolean().ShouldBeFalse();
        bobsFiltered.ShouldBeEmpty();
        bobWithAlicesCursor.Status.ShouldBe(200, bobWithAlicesCursor.Body);
        bobWithAlicesCursor.Json.GetProperty("data").GetArrayLength().ShouldBe(0);
        foreach (var id in alices)
        {
            var peek = await bob.Client.GetApiAsync($"/v1/executions/{id}");
            peek.Status.ShouldBe(404, peek.Body);
            peek.ProblemCode.ShouldBe("NOT_FOUND");
        }

        (await bob.Client.LedgerAsync()).ShouldAllBe(e => e.GetProperty("kind").GetString() == "credit");
        (await alice.Client.ExecutionsAsync()).Select(IdOf).ShouldBe(Enumerable.Reverse(alices).ToList());
    }

    [Fact]
    public async Task Ledger_pages_newest_first_with_a_cursor()
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        var submitted = await SubmitManyAsync(account.Client, 24); // one credit + 24 holds = 25 entries

        var pages = await account.Client.PagesAsync("/v1/ledger?limit=10");

        pages.Select(p => p.GetProperty("data").GetArrayLength()).ShouldBe([10, 10, 5]);
        pages.Select(p => p.GetProperty("has_more").GetBoolean()).ShouldBe([true, true, false]);
        pages.ShouldAllBe(p => p.GetProperty("object").GetString() == "list");
        pages[2].GetProperty("next_cursor").ValueKind.ShouldBe(JsonValueKind.Null);
        var entries = pages.SelectMany(p => p.GetProperty("data").EnumerateArray()).ToList();
        var ids = entries.Select(IdOf).ToList();
        ids.Distinct().Count().ShouldBe(25);
        ids.ShouldBe(ids.Order(StringComparer.Ordinal).Reverse().ToList(), "newest first");
        entries.ShouldAllBe(e => e.GetProperty("object").GetString() == "ledger_entry");
        entries[^1].GetProperty("kind").GetString().ShouldBe("credit");
        entries[^1].GetProperty("amount").GetString().ShouldBe("10.000000");
        entries.Take(24).ShouldAllBe(e => e.GetProperty("kind").GetString() == "hold");
        entries.Take(24).Select(e => e.GetProperty("execution_id").GetString()!).ShouldBe(Enumerable.Reverse(submitted).ToList());
        // Each entry carries the account's balance and held amount just after it.
        entries[0].GetProperty("held").GetString().ShouldBe("0.240000");
        entries[0].GetProperty("balance").GetString().ShouldBe("10.000000");
    }

    [Theory]
    [MemberData(nameof(BadPaging))]
    public Task Bad_ledger_parameters_are_refused_with_400(string query, string field) => RefusedAsync("/v1/ledger?" + query, field);

    /// <summary>A list read with a bad parameter: a 400 naming the parameter.</summary>
    private async Task RefusedAsync(string pathAndQuery, string field)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");

        var response = await account.Client.GetApiAsync(pathAndQuery);

        response.Status.ShouldBe(400, response.Body);
        response.ProblemCode.ShouldBe("VALIDATION_ERROR");
        FieldOf(response).ShouldBe(field);
    }

    [Fact]
    public Task An_executions_cursor_is_not_a_ledger_cursor() => CursorOfOneListRefusedByTheOtherAsync("/v1/executions", "/v1/ledger");

    /// <summary>A cursor from one list, given to the other: a 400 naming the cursor.</summary>
    private async Task CursorOfOneListRefusedByTheOtherAsync(string from, string to)
    {
        using var account = await _gateway.CreateAccountAsync("10.00");
        await SubmitManyAsync(account.Client, 2);
        var cursor = (await account.Client.GetApiAsync(from + "?limit=1")).Json.GetProperty("next_cursor").GetString()!;

        var response = await account.Client.GetApiAsync(to + "?cursor=" + cursor);

        response.Status.ShouldBe(400, response.Body);
        FieldOf(response).ShouldBe("cursor");
    }

    [Fact]
    public async Task Another_account_never_sees_this_ledger()
    {
        using var alice = await _gateway.CreateAccountAsync("10.00");
        using var bob = await _gateway.CreateAccountAsync("3.00");
        await SubmitManyAsync(alice.Client, 3);
        var aliceCursor = (await alice.Client.GetApiAsync("/v1/ledger?limit=1")).Json.GetProperty("next_cursor").GetString()!;

        var bobs = await bob.Client.LedgerAsync();
        var bobWithAlicesCursor = await bob.Client.GetApiAsync("/v1/ledger?cursor=" + aliceCursor);

        bobs.Count.ShouldBe(1);
        bobs[0].GetProperty("amount").GetString().ShouldBe("3.000000");
        bobWithAlicesCursor.Status.ShouldBe(200, bobWithAlicesCursor.Body);
        bobWithAlicesCursor.Json.GetProperty("data").EnumerateArray().Select(IdOf).ShouldBeSubsetOf(bobs.Select(IdOf));
        (await alice.Client.LedgerAsync()).Select(IdOf).ShouldNotContain(bobs[0].GetProperty("id").GetString()!);
    }

    /// <summary>Submits <paramref name="count"/> slow text executions one after another; their ids in submission order.</summary>
    private static async Task<List<string>> SubmitManyAsync(HttpClient client, int count)
    {
        var ids = new List<string>(count);
        for (var i = 0; i < count; i++)
        {
            var response = await client.SubmitTextAsync(simulate: Slow);
            response.Status.ShouldBe(202, response.Body);
            ids.Add(IdOf(response.Json));
        }

        return ids;
    }

    /// <summary>Every page of a list, following next_cursor from <paramref name="path"/>.</summary>
    /// <summary>The problem's <c>field</c>, failing with the whole body when there is none.</summary>
    private static string? FieldOf(ApiResponse response)
    {
        response.Json.TryGetProperty("field", out var field).ShouldBeTrue($"a problem naming the offending field: {response.Body}");
        return field.GetString();
    }

    private static string IdOf(JsonElement element) => element.GetProperty("id").GetString()!;

    private static DateTimeOffset CreatedAt(JsonElement execution) =>
        DateTimeOffset.Parse(execution.GetProperty("created_at").GetString()!, CultureInfo.InvariantCulture);
}
