using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ModelRoute.Client.Tests.Infrastructure;

namespace ModelRoute.Client.Tests;

/// <summary>Every SDK method against the real gateway on a loopback socket.</summary>
public sealed class ClientTests(ClientGatewayFixture fixture) : IClassFixture<ClientGatewayFixture>
{
    private ClientGateway Gateway => fixture.Gateway;

    private static SubmitExecutionRequest Text(string content = "hello", string simulate = "{}", string? key = null) => new()
    {
        Model = "sim/text",
        Input = JsonDocument.Parse($$"""{"messages":[{"role":"user","content":"{{content}}"}],"simulate":{{simulate}}}""").RootElement,
        IdempotencyKey = key,
    };

    [Fact]
    public async Task Submit_get_and_wait_give_a_completed_execution()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var submitted = await client.SubmitAsync(Text("Say hello") with { Metadata = new Dictionary<string, JsonElement> { ["user"] = JsonSerializer.SerializeToElement("u_42") } });
        submitted.Id.ShouldStartWith("exe_");
        submitted.Status.ShouldBeOneOf(ExecutionStatuses.Pending, ExecutionStatuses.Processing);
        submitted.Model.ShouldBe("sim/text");
        submitted.IdempotencyKey.ShouldStartWith("sdk_");

        var done = await client.WaitAsync(submitted.Id, TimeSpan.FromSeconds(30));
        done.Status.ShouldBe(ExecutionStatuses.Completed);
        done.IsTerminal.ShouldBeTrue();
        done.Output!.Value.GetProperty("text").GetString()!.ShouldContain("Say hello");
        done.Cost!.Actual.ShouldNotBeNull();
        done.Cost.Actual!.Value.ShouldBeGreaterThan(0m);
        done.Usage!.OutputTokens.ShouldBeGreaterThan(0);
        done.AttemptLog.ShouldHaveSingleItem().Outcome.ShouldBe("completed");
        done.Metadata!.Value.GetProperty("user").GetString().ShouldBe("u_42");
        done.CompletedAt.ShouldNotBeNull();

        var read = await client.GetAsync(submitted.Id);
        read.Status.ShouldBe(ExecutionStatuses.Completed);
        read.Id.ShouldBe(submitted.Id);
        read.TraceId.ShouldNotBeNull().ShouldMatch("^[0-9a-f]{32}$");
        read.TraceId.ShouldBe(submitted.TraceId, "one trace from submission to the end");
    }

    [Fact]
    public async Task Submitting_the_same_key_again_answers_the_same_execution()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var first = await client.SubmitAsync(Text(key: "same-key"));
        var second = await client.SubmitAsync(Text(key: "same-key"));
        second.Id.ShouldBe(first.Id);

        var reused = await Should.ThrowAsync<ModelRouteApiException>(() => client.SubmitAsync(Text("other body", key: "same-key")));
        reused.Code.ShouldBe("IDEMPOTENCY_KEY_REUSED");
    }

    [Fact]
    public async Task Wait_returns_the_running_execution_when_its_timeout_passes_first()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var slow = await client.SubmitAsync(Text(simulate: """{"latency_ms":20000}"""));
        var started = DateTimeOffset.UtcNow;
        var waited = await client.WaitAsync(slow.Id, TimeSpan.FromSeconds(1));
        waited.IsTerminal.ShouldBeFalse();
        (DateTimeOffset.UtcNow - started).ShouldBeGreaterThan(TimeSpan.FromMilliseconds(900));
        await client.CancelAsync(slow.Id);
    }

    [Fact]
    public async Task A_batch_answers_each_submission_on_its_own()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var results = await client.SubmitBatchAsync(
        [
            Text("one", key: "b-1"),
            Text("two") with { Model = "no/such-model", IdempotencyKey = "b-2" },
            Text("three"),
        ]);
        results.Count.ShouldBe(3);
        results[0].Succeeded.ShouldBeTrue();
        results[0].Status.ShouldBe(202);
        results[0].Execution!.IdempotencyKey.ShouldBe("b-1");
        results[1].Succeeded.ShouldBeFalse();
        results[1].Error!.Code.ShouldBe("MODEL_NOT_FOUND");
        results[1].Index.ShouldBe(1);
        results[2].Execution!.IdempotencyKey.ShouldStartWith("sdk_");

        var again = await client.SubmitBatchAsync([Text("one", key: "b-1")]);
        again[0].Status.ShouldBe(200);
        again[0].Execution!.Id.ShouldBe(results[0].Execution!.Id);
    }

    [Fact]
    public async Task Cancel_cancels_and_a_second_cancel_is_a_typed_INVALID_STATE()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var slow = await client.SubmitAsync(Text(simulate: """{"latency_ms":20000}"""));
        var cancelled = await client.CancelAsync(slow.Id);
        cancelled.Status.ShouldBe(ExecutionStatuses.Cancelled);

        var error = await Should.ThrowAsync<ModelRouteApiException>(() => client.CancelAsync(slow.Id));
        error.StatusCode.ShouldBe(HttpStatusCode.Conflict);
        error.Code.ShouldBe("INVALID_STATE");
        error.Problem.Status.ShouldBe(409);
        error.Detail!.ShouldContain("CANCELLED");
    }

    [Fact]
    public async Task Problems_become_ModelRouteApiException_with_code_and_field()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);

        var notFound = await Should.ThrowAsync<ModelRouteApiException>(() => client.GetAsync("exe_doesnotexist"));
        notFound.StatusCode.ShouldBe(HttpStatusCode.NotFound);
        notFound.Code.ShouldBe("NOT_FOUND");

        var invalid = await Should.ThrowAsync<ModelRouteApiException>(() => client.SubmitAsync(Text() with { MaxCostUsd = "lots" }));
        invalid.StatusCode.ShouldBe(HttpStatusCode.BadRequest);
        invalid.Code.ShouldBe("VALIDATION_ERROR");
        invalid.Field.ShouldBe("max_cost_usd");
        invalid.Message.ShouldContain("max_cost_usd");

        using var stranger = Gateway.Client("mr_not-a-real-key");
        (await Should.ThrowAsync<ModelRouteApiException>(() => stranger.GetBalanceAsync())).Code.ShouldBe("UNAUTHENTICATED");

        using var poor = Gateway.Client((await Gateway.NewAccountAsync(0.000001m)).Key);
        (await Should.ThrowAsync<ModelRouteApiException>(() => poor.SubmitAsync(Text()))).Code.ShouldBe("INSUFFICIENT_BALANCE");
    }

    [Fact]
    public async Task List_follows_the_cursor_across_pages()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var setup = Gateway.Client(key);
        var ids = new List<string>();
        foreach (var chunk in Enumerable.Range(0, 25).Chunk(10))
        {
            var results = await setup.SubmitBatchAsync(chunk.Select(i => Text($"n{i}", key: $"page-{i}")));
            ids.AddRange(results.Select(r => r.Execution!.Id));
        }

        var counter = new CountingHandler();
        using var client = Gateway.Client(key, handler: counter);
        var listed = new List<Execution>();
        await foreach (var e in client.ListAsync(new ListExecutionsOptions { PageSize = 10 }))
        {
            listed.Add(e);
        }

        listed.Select(e => e.Id).ShouldBe(ids.AsEnumerable().Reverse(), "newest first, each once");
        counter.Count.ShouldBe(3);
        counter.Log.Count(l => l.Path.Contains("cursor=", StringComparison.Ordinal)).ShouldBe(2);

        var page = await client.ListPageAsync(new ListExecutionsOptions { PageSize = 5, Model = "sim/text" });
        page.Data.Count.ShouldBe(5);
        page.HasMore.ShouldBeTrue();
        page.NextCursor.ShouldNotBeNull();

        var none = new List<Execution>();
        await foreach (var e in client.ListAsync(new ListExecutionsOptions { Model = "sim/image" }))
        {
            none.Add(e);
        }

        none.ShouldBeEmpty();
        (await Should.ThrowAsync<ModelRouteApiException>(() => client.ListPageAsync(new ListExecutionsOptions { Status = "SLEEPING" }))).Field.ShouldBe("status");
    }

    [Fact]
    public async Task List_finds_executions_by_idempotency_key_metadata_and_created_before()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        SubmitExecutionRequest Tagged(string idempotencyKey, string metadata) =>
            Text(idempotencyKey, key: idempotencyKey) with { Metadata = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(metadata) };
        var first = await client.SubmitAsync(Tagged("find-1", """{"order":"42","team":"search"}"""));
        var second = await client.SubmitAsync(Tagged("find-2", """{"order":"42","team":"ads & co"}"""));
        await client.SubmitAsync(Tagged("find-3", """{"order":"43"}"""));

        var byKey = await client.ListPageAsync(new ListExecutionsOptions { IdempotencyKey = "find-2" });
        var byMetadata = await client.ListPageAsync(new ListExecutionsOptions { Metadata = new Dictionary<string, string> { ["order"] = "42" } });
        var byTwoValues = await client.ListPageAsync(new ListExecutionsOptions { Metadata = new Dictionary<string, string> { ["order"] = "42", ["team"] = "ads & co" } });
        var before = await client.ListPageAsync(new ListExecutionsOptions { CreatedBefore = DateTimeOffset.UtcNow.AddHours(1), Metadata = new Dictionary<string, string> { ["order"] = "43" } });
        var tooEarly = await client.ListPageAsync(new ListExecutionsOptions { CreatedBefore = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero) });

        byKey.Data.Select(e => e.Id).ShouldBe([second.Id]);
        byMetadata.Data.Select(e => e.Id).ShouldBe([second.Id, first.Id]);
        byTwoValues.Data.Select(e => e.Id).ShouldBe([second.Id]);
        before.Data.Count.ShouldBe(1);
        tooEarly.Data.ShouldBeEmpty();
        var tooMany = new Dictionary<string, string> { ["a"] = "1", ["b"] = "2", ["c"] = "3", ["d"] = "4" };
        (await Should.ThrowAsync<ModelRouteApiException>(() => client.ListPageAsync(new ListExecutionsOptions { Metadata = tooMany }))).Field.ShouldBe("metadata");
    }

    [Fact]
    public async Task StreamEvents_yields_each_status_change_until_the_terminal_execution()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        var submitted = await client.SubmitAsync(Text("Stream me", """{"latency_ms":300}"""));
        var events = new List<ExecutionEvent>();
        await foreach (var e in client.StreamEventsAsync(submitted.Id).WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token))
        {
            events.Add(e);
        }

        events.Select(e => e.Type).ShouldBe(["execution.pending", "execution.processing", "execution.completed"]);
        events.ShouldAllBe(e => e.Id.StartsWith("evt_") && e.Data.Id == submitted.Id && e.Sequence != null);
        events[^1].Data.Status.ShouldBe(ExecutionStatuses.Completed);
        events[^1].Data.Output.ShouldNotBeNull();

        (await Should.ThrowAsync<ModelRouteApiException>(async () =>
        {
            await foreach (var unused in client.StreamEventsAsync("exe_nope"))
            {
            }
        })).Code.ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task Balance_and_ledger_show_the_money()
    {
        var (_, key) = await Gateway.NewAccountAsync(5m);
        using var client = Gateway.Client(key);
        var before = await client.GetBalanceAsync();
        before.Balance.ShouldBe(5m);
        before.Available.ShouldBe(5m);
        before.Currency.ShouldBe("usd");

        var done = await client.WaitAsync((await client.SubmitAsync(Text())).Id, TimeSpan.FromSeconds(30));
        var after = await client.GetBalanceAsync();
        after.Balance.ShouldBe(5m - done.Cost!.Actual!.Value);

        var ledger = new List<LedgerEntry>();
        await foreach (var entry in client.ListLedgerAsync(pageSize: 2))
        {
            ledger.Add(entry);
        }

        ledger.Select(e => e.Kind).ShouldBe(["release", "charge", "hold", "credit"], ignoreOrder: true);
        ledger.Single(e => e.Kind == "credit").Amount.ShouldBe(5m);
    }

    [Fact]
    public async Task Admin_calls_create_accounts_keys_and_credits()
    {
        using var admin = Gateway.Admin();
        var account = await admin.CreateAccountAsync("acme");
        account.Id.ShouldStartWith("acct_");
        account.Name.ShouldBe("acme");
        account.Balance.ShouldBe(0m);

        var key = await admin.CreateApiKeyAsync(account.Id, "laptop");
        key.Key.ShouldStartWith("mr_");
        key.AccountId.ShouldBe(account.Id);

        var credit = await admin.AddCreditAsync(account.Id, 12.5m, "invoice-1");
        credit.Kind.ShouldBe("credit");
        credit.Amount.ShouldBe(12.5m);
        (await admin.AddCreditAsync(account.Id, 12.5m, "invoice-1")).Id.ShouldBe(credit.Id);
        (await Should.ThrowAsync<ModelRouteApiException>(() => admin.AddCreditAsync(account.Id, 3m, "invoice-1"))).Code.ShouldBe("IDEMPOTENCY_KEY_REUSED");
        (await admin.GetAccountAsync(account.Id)).Balance.ShouldBe(12.5m);

        using var user = Gateway.Client(key.Key);
        (await user.GetBalanceAsync()).Available.ShouldBe(12.5m);
        (await Should.ThrowAsync<ModelRouteApiException>(() => user.CreateAccountAsync())).Code.ShouldBe("FORBIDDEN");
    }

    [Fact]
    public async Task AddModelRouteClient_registers_a_typed_client_from_IHttpClientFactory()
    {
        var (_, key) = await Gateway.NewAccountAsync(3m);
        var services = new ServiceCollection();
        services.AddModelRouteClient(o =>
        {
            o.BaseAddress = Gateway.BaseAddress;
            o.ApiKey = key;
        });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<ModelRouteClient>();
        client.Options.ApiKey.ShouldBe(key);
        (await client.GetBalanceAsync()).Balance.ShouldBe(3m);
    }
}

public sealed class ClientGatewayFixture : IAsyncLifetime
{
    public ClientGateway Gateway { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}
