using ModelRoute.Server.Webhooks;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The behaviour every execution store must have (docs/architecture.md, docs/api.md), written only against
/// <see cref="IExecutionStore"/> and <see cref="IAccountStore"/> so that each store runs the same
/// tests: subclass it and build the stores on a fresh, empty database.
/// </summary>
public abstract partial class ExecutionStoreContract : IAsyncLifetime
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    protected ExecutionStoreContract()
    {
        Ids = new IdGenerator(Time);
    }

    protected Microsoft.Extensions.Time.Testing.FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    protected IdGenerator Ids { get; }

    protected IExecutionStore Executions { get; private set; } = null!;

    protected IAccountStore Accounts { get; private set; } = null!;

    /// <summary>Both stores on one fresh, migrated database whose clock is <paramref name="time"/>.</summary>
    protected abstract Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time);

    /// <summary>
    /// Another execution store on the same database, as a gateway node builds it: this node's submissions go
    /// leased to its dispatcher through <paramref name="dispatch"/> when it has room; it tells other nodes of its commits
    /// through <paramref name="broadcast"/> when given (else as the engine does).
    /// </summary>
    protected abstract IExecutionStore CreateNodeStore(TimeProvider time, NodeIdentity node, DispatchHandoff dispatch, IChangeBroadcast? broadcast = null);

    /// <summary>The engine's store as the gateway uses it: through <see cref="ExecutionCommits"/>, which runs the after-commit steps.</summary>
    protected static IExecutionStore Commits(
        ISqlExecutionStore store, TimeProvider time, IChangeBroadcast? broadcast = null, NodeIdentity? node = null, DispatchHandoff? dispatch = null) =>
        new ExecutionCommits(store, new ExecutionChanges(new GatewayMetrics()), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()),
            time, broadcast, node, dispatch);

    /// <summary>The webhook store on the database <see cref="CreateStoresAsync"/> made.</summary>
    protected abstract IWebhookStore CreateWebhookStore();

    /// <summary>Releases what <see cref="CreateStoresAsync"/> made.</summary>
    protected abstract Task DisposeStoresAsync();

    /// <summary>Every row of the outbox: (execution_id, event_id, event_type, payload), read with <see cref="DeliveriesSql"/>.</summary>
    protected abstract Task<IReadOnlyList<(string ExecutionId, string EventId, string EventType, string Payload)>> DeliveriesAsync();

    protected const string DeliveriesSql = "SELECT execution_id, event_id, event_type, payload FROM webhook_deliveries";

    public async Task InitializeAsync() => (Executions, Accounts) = await CreateStoresAsync(Time);

    public Task DisposeAsync() => DisposeStoresAsync();

    private DateTimeOffset Now => Time.GetUtcNow();

    protected static CancellationToken None => CancellationToken.None;

    // ---------------------------------------------------------------- helpers

    protected async Task<string> NewAccountAsync(long creditMicros)
    {
        var id = Ids.New("acct");
        await Accounts.CreateAccountAsync(id, "contract", Now, None);
        if (creditMicros > 0)
        {
            var credit = await Accounts.CreditAsync(Ids.New("txn"), id, creditMicros, "setup-" + id, Now, None);
            credit.ShouldNotBeNull();
        }

        return id;
    }

    protected NewExecution NewExecution(string accountId, long holdMicros, string? key = null, string hash = "hash-1", TimeSpan? timeout = null)
    {
        var created = Now;
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        return new NewExecution(
            Id: Ids.New("exe"),
            AccountId: accountId,
            Model: "sim/text",
            IdempotencyKey: key ?? Guid.NewGuid().ToString("N"),
            RequestHash: hash,
            Input: """{"messages":[{"role":"user","content":"hello"}]}""",
            EstimatedMicros: holdMicros * 5 / 6,
            HoldMicros: holdMicros,
            Price: new Price(InputPerMTok: 1_000_000, OutputPerMTok: 2_000_000),
            WebhookUrl: null,
            WebhookEvents: null,
            Metadata: """{"case":"contract"}""",
            TimeoutSeconds: (int)limit.TotalSeconds,
            MaxCostMicros: null,
            CreatedAt: created,
            ExpiresAt: created + limit);
    }

    private async Task<Execution> SubmitAsync(string accountId, long holdMicros, TimeSpan? timeout = null)
    {
        var outcome = await Executions.SubmitAsync(NewExecution(accountId, holdMicros, timeout: timeout), None);
        outcome.Result.ShouldBe(SubmitResult.Created);
        return outcome.Execution!;
    }

    private async Task<Execution> ClaimOneAsync(string id, string owner)
    {
        var claimed = await Executions.ClaimDueAsync(owner, 100, Now, Now + Lease, None);
        return claimed.ShouldHaveSingleItem().Id == id ? claimed[0] : throw new ShouldAssertException($"claimed {claimed[0].Id}, expected {id}");
    }

    /// <summary>Submits <paramref name="count"/> executions of 10,000 µ$ (or <paramref name="make"/>'s) and claims them all for node-a.</summary>
    private async Task<List<Execution>> SubmittedAndClaimedAsync(string accountId, int count, Func<int, NewExecution>? make = null)
    {
        var executions = new List<Execution>();
        for (var i = 0; i < count; i++)
        {
            var outcome = await Executions.SubmitAsync(make?.Invoke(i) ?? NewExecution(accountId, 10_000), None);
            outcome.Result.ShouldBe(SubmitResult.Created);
            executions.Add(outcome.Execution.ShouldNotBeNull());
        }

        (await Executions.ClaimDueAsync("node-a", 100, Now, Now + Lease, None)).Count.ShouldBe(count);
        return executions;
    }

    /// <summary>Submits, claims and starts an attempt: the execution is PROCESSING, leased to <paramref name="owner"/>.</summary>
    private async Task<Execution> ProcessingAsync(string accountId, long holdMicros, string owner = "node-a", TimeSpan? timeout = null)
    {
        var submitted = await SubmitAsync(accountId, holdMicros, timeout);
        await ClaimOneAsync(submitted.Id, owner);
        var started = await Executions.TransitionAsync(StartAttempt(submitted.Id, owner), None);
        started.ShouldNotBeNull();
        started.Status.ShouldBe(ExecutionStatus.Processing);
        return started;
    }

    private ExecutionTransition StartAttempt(string id, string owner) =>
        ExecutionTransition.StartAttempt(id, owner, Now + Lease, "sim", "text", "token-hash");

    private AttemptRecord Attempt(int number, string outcome) => new(number, "sim", "text", outcome, Now, 12);

    private ExecutionTransition Complete(string id, long actualMicros, string? owner = "node-a") =>
        ExecutionTransition.Complete(
            id,
            [ExecutionStatus.Processing, ExecutionStatus.AwaitingWebhook],
            """{"text":"hi"}""",
            [],
            new Usage(InputTokens: 10, OutputTokens: 5),
            actualMicros,
            Attempt(1, "completed"),
            owner);

    private static readonly ExecutionError Timeout = new(ExecutionErrorCodes.ProviderTimeout, "The provider did not answer in time.", Retryable: true, Provider: "sim");

    private async Task<List<LedgerEntry>> LedgerAsync(string accountId)
    {
        var all = new List<LedgerEntry>();
        string? before = null;
        while (true)
        {
            var page = await Accounts.ListLedgerAsync(accountId, before, 50, None);
            all.AddRange(page);
            if (page.Count < 50)
            {
                return all;
            }

            before = page[^1].Id;
        }
    }

    private async Task<Account> AccountAsync(string accountId) => (await Accounts.GetAccountAsync(accountId, None)).ShouldNotBeNull();

    /// <summary>
    /// The ledger (docs/architecture.md): balance = credits − charges, held = holds − releases, available ≥ 0, and every
    /// execution has one hold that is released exactly once when (and only when) it has ended.
    /// </summary>
    protected async Task AssertLedgerBalancedAsync(string accountId)
    {
        var entries = await LedgerAsync(accountId);
        var account = await AccountAsync(accountId);
        long Sum(string kind) => entries.Where(e => e.Kind == kind).Sum(e => e.AmountMicros);

        entries.ShouldAllBe(e => e.AccountId == accountId);
        entries.ShouldAllBe(e => e.AmountMicros >= 0);
        entries.Select(e => e.Id).Distinct().Count().ShouldBe(entries.Count, "ledger ids are unique");
        account.BalanceMicros.ShouldBe(Sum(LedgerKinds.Credit) - Sum(LedgerKinds.Charge), "balance = credits − charges");
        account.HeldMicros.ShouldBe(Sum(LedgerKinds.Hold) - Sum(LedgerKinds.Release), "held = holds − releases");
        account.AvailableMicros.ShouldBeGreaterThanOrEqualTo(0);

        foreach (var group in entries.Where(e => e.ExecutionId is not null).GroupBy(e => e.ExecutionId!))
        {
            var execution = (await Executions.GetAsync(group.Key, null, None)).ShouldNotBeNull($"the ledger names {group.Key}");
            var holds = group.Where(e => e.Kind == LedgerKinds.Hold).ToList();
            var releases = group.Where(e => e.Kind == LedgerKinds.Release).ToList();
            var charges = group.Where(e => e.Kind == LedgerKinds.Charge).ToList();
            holds.Count.ShouldBe(1, $"one hold for {group.Key}");
            holds[0].AmountMicros.ShouldBe(execution.HeldMicros);
            releases.Count.ShouldBe(execution.Status.IsTerminal() ? 1 : 0, $"{group.Key} is {execution.Status}");
            if (releases.Count == 1)
            {
                releases[0].AmountMicros.ShouldBe(holds[0].AmountMicros, "the whole hold is released");
            }

            var charged = charges.Sum(c => c.AmountMicros);
            charges.Count.ShouldBeLessThanOrEqualTo(1);
            charged.ShouldBe(execution.Status == ExecutionStatus.Completed ? execution.ChargedMicros ?? 0 : 0, $"charge of {group.Key} ({execution.Status})");
            charged.ShouldBeLessThanOrEqualTo(holds[0].AmountMicros, "a charge never exceeds its hold");
        }
    }

    // ---------------------------------------------------------------- submit and holds

    [Fact]
    public async Task Submit_stores_the_execution_and_places_its_hold_in_one_step()
    {
        var account = await NewAccountAsync(1_000_000);

        var x = NewExecution(account, 120_000, key: "key-1");
        var outcome = await Executions.SubmitAsync(x, None);

        outcome.Result.ShouldBe(SubmitResult.Created);
        var created = outcome.Execution.ShouldNotBeNull();
        created.Id.ShouldBe(x.Id);
        created.Status.ShouldBe(ExecutionStatus.Pending);
        created.AccountId.ShouldBe(account);
        created.IdempotencyKey.ShouldBe("key-1");
        created.HeldMicros.ShouldBe(120_000);
        created.EstimatedMicros.ShouldBe(100_000);
        created.Price.ShouldBe(x.Price);
        created.Metadata.ShouldBe(x.Metadata);
        created.CreatedAt.ShouldBe(x.CreatedAt);
        created.ExpiresAt.ShouldBe(x.ExpiresAt);
        created.NextAttemptAt.ShouldBeLessThanOrEqualTo(x.CreatedAt);
        created.Attempts.ShouldBe(0);
        created.LeaseOwner.ShouldBeNull();

        var stored = (await Executions.GetAsync(x.Id, account, None)).ShouldNotBeNull();
        stored.Status.ShouldBe(ExecutionStatus.Pending);
        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(1_000_000);
        balance.HeldMicros.ShouldBe(120_000);
        balance.AvailableMicros.ShouldBe(880_000);
        var hold = (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Hold).ShouldHaveSingleItem();
        hold.ExecutionId.ShouldBe(x.Id);
        hold.AmountMicros.ShouldBe(120_000);
        hold.HeldMicros.ShouldBe(120_000);
        hold.BalanceMicros.ShouldBe(1_000_000);
        (await Executions.ListEventsAsync(x.Id, 0, None)).ShouldHaveSingleItem().Status.ShouldBe(ExecutionStatus.Pending);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task The_execution_a_submit_answers_with_is_the_one_a_read_returns()
    {
        // A clock between two milliseconds: the stores keep times to the millisecond, so must the answer.
        Time.Advance(TimeSpan.FromTicks(4321));
        var account = await NewAccountAsync(1_000_000);
        var x = NewExecution(account, 120_000, key: "key-answer");

        var answered = (await Executions.SubmitAsync(x, None)).Execution.ShouldNotBeNull();
        var stored = (await Executions.GetAsync(x.Id, account, None)).ShouldNotBeNull();

        System.Text.Json.JsonSerializer.Serialize(answered).ShouldBe(System.Text.Json.JsonSerializer.Serialize(stored));
    }

    [Fact]
    public async Task Submit_is_refused_for_insufficient_balance_and_stores_nothing()
    {
        var account = await NewAccountAsync(50_000);
        await SubmitAsync(account, 30_000);
        var ledgerBefore = await LedgerAsync(account);

        var refused = NewExecution(account, 30_000, key: "too-much");
        var outcome = await Executions.SubmitAsync(refused, None);

        outcome.Result.ShouldBe(SubmitResult.InsufficientBalance);
        outcome.Execution.ShouldBeNull();
        (await Executions.GetAsync(refused.Id, null, None)).ShouldBeNull();
        (await Executions.ListEventsAsync(refused.Id, 0, None)).ShouldBeEmpty();
        (await Executions.ListAsync(account, new ExecutionQuery(null, null, null, null, 100), None)).Count.ShouldBe(1);
        (await LedgerAsync(account)).Count.ShouldBe(ledgerBefore.Count);
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(30_000);
        balance.BalanceMicros.ShouldBe(50_000);

        // Nothing was stored under the key either: once there is money, the same key is a new submission.
        await Accounts.CreditAsync(Ids.New("txn"), account, 100_000, "top-up", Now, None);
        var retried = await Executions.SubmitAsync(NewExecution(account, 30_000, key: "too-much"), None);
        retried.Result.ShouldBe(SubmitResult.Created);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Two_nodes_submitting_at_once_for_one_account_never_hold_more_than_its_balance()
    {
        // Each node gathers its own submissions into groups, and their groups race for the one balance: on PostgreSQL
        // a group reads the balance without a lock and places its holds last, so a group whose balance the other node
        // took meanwhile must fail as a whole and its submissions be answered one by one.
        var account = await NewAccountAsync(150 * 10_000);
        var nodes = new[]
        {
            CreateNodeStore(Time, new NodeIdentity(), new DispatchHandoff(new SubmissionLoad())),
            CreateNodeStore(Time, new NodeIdentity(), new DispatchHandoff(new SubmissionLoad())),
        };

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 400).Select(i =>
            Task.Run(() => nodes[i % 2].SubmitAsync(NewExecution(account, 10_000), None))));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(150);
        outcomes.Count(o => o.Result == SubmitResult.InsufficientBalance).ShouldBe(250);
        (await AccountAsync(account)).AvailableMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_hold_that_uses_exactly_the_available_balance_is_accepted()
    {
        var account = await NewAccountAsync(30_000);

        (await Executions.SubmitAsync(NewExecution(account, 30_000), None)).Result.ShouldBe(SubmitResult.Created);
        (await Executions.SubmitAsync(NewExecution(account, 1), None)).Result.ShouldBe(SubmitResult.InsufficientBalance);

        (await AccountAsync(account)).AvailableMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Submit_to_an_account_that_does_not_exist_stores_nothing()
    {
        var x = NewExecution("acct_missing", 10_000);

        var outcome = await Executions.SubmitAsync(x, None);

        outcome.Result.ShouldNotBe(SubmitResult.Created);
        (await Executions.GetAsync(x.Id, null, None)).ShouldBeNull();
    }

    [Fact]
    public async Task The_same_key_and_request_replays_the_original_without_a_new_hold()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await Executions.SubmitAsync(NewExecution(account, 100_000, key: "k", hash: "h1"), None);

        var again = await Executions.SubmitAsync(NewExecution(account, 100_000, key: "k", hash: "h1"), None);

        again.Result.ShouldBe(SubmitResult.Replayed);
        again.Execution.ShouldNotBeNull().Id.ShouldBe(first.Execution!.Id);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000);
        (await LedgerAsync(account)).Count(e => e.Kind == LedgerKinds.Hold).ShouldBe(1);
        (await Executions.ListAsync(account, new ExecutionQuery(null, null, null, null, 100), None)).Count.ShouldBe(1);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task The_same_key_with_another_request_is_refused_as_reused()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await Executions.SubmitAsync(NewExecution(account, 100_000, key: "k", hash: "h1"), None);

        var other = NewExecution(account, 100_000, key: "k", hash: "h2");
        var outcome = await Executions.SubmitAsync(other, None);

        outcome.Result.ShouldBe(SubmitResult.KeyReused);
        outcome.Execution?.Id.ShouldBe(first.Execution!.Id);
        (await Executions.GetAsync(other.Id, null, None)).ShouldBeNull();
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_replay_returns_the_execution_as_it_is_now_even_when_it_has_ended_and_the_money_is_gone()
    {
        var account = await NewAccountAsync(10_000);
        var first = await Executions.SubmitAsync(NewExecution(account, 10_000, key: "k", hash: "h1"), None);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(first.Execution!.Id, account), None)).ShouldNotBeNull();
        await Accounts.CreditAsync(Ids.New("txn"), account, 0, null, Now, None);

        var fill = await Executions.SubmitAsync(NewExecution(account, 10_000, key: "fill"), None);
        fill.Result.ShouldBe(SubmitResult.Created);
        var replay = await Executions.SubmitAsync(NewExecution(account, 10_000, key: "k", hash: "h1"), None);

        replay.Result.ShouldBe(SubmitResult.Replayed);
        replay.Execution.ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Cancelled);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Idempotency_keys_are_per_account()
    {
        var a = await NewAccountAsync(100_000);
        var b = await NewAccountAsync(100_000);

        (await Executions.SubmitAsync(NewExecution(a, 10_000, key: "shared"), None)).Result.ShouldBe(SubmitResult.Created);
        (await Executions.SubmitAsync(NewExecution(b, 10_000, key: "shared"), None)).Result.ShouldBe(SubmitResult.Created);

        (await AccountAsync(a)).HeldMicros.ShouldBe(10_000);
        (await AccountAsync(b)).HeldMicros.ShouldBe(10_000);
    }

    [Fact]
    public async Task An_account_cannot_read_another_accounts_execution()
    {
        var owner = await NewAccountAsync(100_000);
        var stranger = await NewAccountAsync(100_000);
        var execution = await SubmitAsync(owner, 10_000);

        (await Executions.GetAsync(execution.Id, stranger, None)).ShouldBeNull();
        (await Executions.GetAsync(execution.Id, owner, None)).ShouldNotBeNull();
        (await Executions.ListAsync(stranger, new ExecutionQuery(null, null, null, null, 100), None)).ShouldBeEmpty();
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, stranger), None)).ShouldBeNull();
        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Pending);
    }

    [Fact]
    public async Task Parallel_submissions_never_hold_more_than_the_balance()
    {
        var account = await NewAccountAsync(20 * 10_000);
        var submissions = Enumerable.Range(0, 50).Select(_ => NewExecution(account, 10_000)).ToList();

        var outcomes = await Task.WhenAll(submissions.Select(x => Task.Run(() => Executions.SubmitAsync(x, None))));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(20);
        outcomes.Count(o => o.Result == SubmitResult.InsufficientBalance).ShouldBe(30);
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(200_000);
        balance.AvailableMicros.ShouldBe(0);
        (await Executions.ListAsync(account, new ExecutionQuery(null, null, null, null, 100), None)).Count.ShouldBe(20);
        (await LedgerAsync(account)).Count(e => e.Kind == LedgerKinds.Hold).ShouldBe(20);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Each_hold_of_parallel_submissions_records_the_account_as_it_was_right_after_it()
    {
        // Holds of different sizes, more than the balance covers: whichever order the store placed them in, each
        // entry's held amount is the one before it plus its own, and every one stays within the balance.
        var account = await NewAccountAsync(1_000_000);
        var submissions = Enumerable.Range(0, 60).Select(i => NewExecution(account, 20_000 + (i * 100))).ToList();

        var outcomes = await Task.WhenAll(submissions.Select(x => Task.Run(() => Executions.SubmitAsync(x, None))));

        var created = outcomes.Where(o => o.Result == SubmitResult.Created).ToList();
        outcomes.Count(o => o.Result == SubmitResult.InsufficientBalance).ShouldBe(outcomes.Length - created.Count);
        var holds = (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Hold).OrderBy(e => e.HeldMicros).ToList();
        holds.Count.ShouldBe(created.Count);
        var held = 0L;
        foreach (var hold in holds)
        {
            held += hold.AmountMicros;
            hold.HeldMicros.ShouldBe(held, $"{hold.Id} holds {hold.AmountMicros}");
            hold.BalanceMicros.ShouldBe(1_000_000);
        }

        // Refused only when what was left could not cover it: no gap that a refused one would have fitted in.
        var available = 1_000_000 - held;
        submissions.Where(x => !created.Any(c => c.Execution!.Id == x.Id)).ShouldAllBe(x => x.HoldMicros > available);
        (await AccountAsync(account)).HeldMicros.ShouldBe(held);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Parallel_submissions_with_one_key_make_exactly_one_execution_and_one_hold()
    {
        var account = await NewAccountAsync(1_000_000);
        var submissions = Enumerable.Range(0, 20).Select(_ => NewExecution(account, 10_000, key: "same", hash: "h")).ToList();

        var outcomes = await Task.WhenAll(submissions.Select(x => Task.Run(() => Executions.SubmitAsync(x, None))));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(1);
        outcomes.Count(o => o.Result == SubmitResult.Replayed).ShouldBe(19);
        outcomes.Select(o => o.Execution!.Id).Distinct().ShouldHaveSingleItem();
        (await AccountAsync(account)).HeldMicros.ShouldBe(10_000);
        await AssertLedgerBalancedAsync(account);
    }
}
