using System.Collections.Concurrent;
using ModelRoute.Server.Billing;
using ModelRoute.Server.Executions;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Sqlite;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// The behaviour every execution store must have (SPEC §2, §3, §4, §9), written only against
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

    protected ManualTimeProvider Time { get; } = new();

    protected IdGenerator Ids { get; }

    protected IExecutionStore Executions { get; private set; } = null!;

    protected IAccountStore Accounts { get; private set; } = null!;

    /// <summary>Both stores on one fresh, migrated database whose clock is <paramref name="time"/>.</summary>
    protected abstract Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time);

    /// <summary>
    /// Another execution store on the same database, as a gateway node builds it: this node's submissions go
    /// leased to its dispatcher through <paramref name="dispatch"/> when it has room.
    /// </summary>
    protected abstract IExecutionStore CreateNodeStore(TimeProvider time, NodeIdentity node, DispatchHandoff dispatch);

    /// <summary>The engine's store as the gateway uses it: through <see cref="ExecutionCommits"/>, which runs the after-commit steps.</summary>
    protected static IExecutionStore Commits(
        ISqlExecutionStore store, TimeProvider time, IChangeBroadcast? broadcast = null, NodeIdentity? node = null, DispatchHandoff? dispatch = null) =>
        new ExecutionCommits(store, new ExecutionChanges(new GatewayMetrics()), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()),
            time, broadcast, node, dispatch);

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
    /// SPEC §3: balance = credits − charges, held = holds − releases, available ≥ 0, and every
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

    // ---------------------------------------------------------------- claiming and leases

    [Fact]
    public async Task Claiming_leases_due_pending_executions_to_the_owner()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        var claimed = await Executions.ClaimDueAsync("node-a", 10, Now, Now + Lease, None);

        var execution = claimed.ShouldHaveSingleItem();
        execution.Id.ShouldBe(submitted.Id);
        execution.Status.ShouldBe(ExecutionStatus.Pending);
        execution.LeaseOwner.ShouldBe("node-a");
        execution.LeaseExpiresAt.ShouldBe(Now + Lease);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await Executions.ListEventsAsync(submitted.Id, 0, None)).Count.ShouldBe(1, "a claim is not a status change");
    }

    [Fact]
    public async Task A_submission_handed_to_its_nodes_dispatcher_is_stored_leased_to_that_node_and_no_other_claims_it_before_the_lease_runs_out()
    {
        var account = await NewAccountAsync(1_000_000);
        var node = new NodeIdentity();
        var dispatch = new DispatchHandoff(new SubmissionLoad());
        using var slots = new SemaphoreSlim(8);
        dispatch.Open(slots);
        var nodeStore = CreateNodeStore(Time, node, dispatch);

        var submitted = (await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!;

        dispatch.Reader.TryRead(out var handed).ShouldBeTrue("a fresh submission goes to the dispatcher at once");
        handed!.Id.ShouldBe(submitted.Id);
        handed.LeaseOwner.ShouldBe(node.Id);
        var stored = (await Executions.GetAsync(submitted.Id, null, None))!;
        stored.Status.ShouldBe(ExecutionStatus.Pending);
        stored.LeaseOwner.ShouldBe(node.Id);
        stored.LeaseExpiresAt.ShouldBe(Now + Lease);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("it is this node's to start");

        // If the node died before starting it, the lease runs out and any node takes it.
        Time.Advance(Lease + TimeSpan.FromSeconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem().Id.ShouldBe(submitted.Id);
    }

    [Fact]
    public async Task Submissions_not_stored_free_their_place_with_the_dispatcher_and_submissions_beyond_its_room_wait_unleased_for_a_claim()
    {
        var account = await NewAccountAsync(1_000_000);
        var dispatch = new DispatchHandoff(new SubmissionLoad());
        using var slots = new SemaphoreSlim(DispatchHandoff.Capacity * 2);
        dispatch.Open(slots);
        var nodeStore = CreateNodeStore(Time, new NodeIdentity(), dispatch);
        var first = NewExecution(account, 10_000);
        (await nodeStore.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Created);
        dispatch.Reader.TryRead(out _).ShouldBeTrue();
        dispatch.Taken();

        // Replays, reused keys and refusals store nothing: each place they reserved is given back.
        for (var i = 0; i < DispatchHandoff.Capacity + 1; i++)
        {
            (await nodeStore.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Replayed);
            (await nodeStore.SubmitAsync(first with { RequestHash = "other" }, None)).Result.ShouldBe(SubmitResult.KeyReused);
            (await nodeStore.SubmitAsync(NewExecution(account, 10_000_000), None)).Result.ShouldBe(SubmitResult.InsufficientBalance);
        }

        dispatch.Reader.TryRead(out _).ShouldBeFalse("nothing stored, nothing handed over");
        var handed = new List<string>();
        for (var i = 0; i < DispatchHandoff.Capacity + 3; i++)
        {
            handed.Add((await nodeStore.SubmitAsync(NewExecution(account, 10_000), None)).Execution!.Id);
        }

        var taken = new List<string>();
        while (dispatch.Reader.TryRead(out var execution))
        {
            taken.Add(execution.Id);
        }

        taken.ShouldBe(handed.Take(DispatchHandoff.Capacity), "the dispatcher is given as many as it has room for, no more");
        var claimed = await Executions.ClaimDueAsync("node-b", 100, Now, Now + Lease, None);
        claimed.Select(e => e.Id).Order().ShouldBe(handed.Skip(DispatchHandoff.Capacity).Order(), "the rest wait for any node's claim");
    }

    [Fact]
    public async Task Claiming_takes_no_more_than_asked()
    {
        var account = await NewAccountAsync(1_000_000);
        for (var i = 0; i < 5; i++)
        {
            await SubmitAsync(account, 10_000);
        }

        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(2);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(2);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).Count.ShouldBe(1);
        (await Executions.ClaimDueAsync("node-a", 2, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Concurrent_claimers_never_get_the_same_execution()
    {
        var account = await NewAccountAsync(10_000_000);
        var submitted = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            submitted.Add((await SubmitAsync(account, 10_000)).Id);
        }

        var claims = new ConcurrentBag<(string Owner, string Id)>();
        async Task ClaimAllAsync(string owner)
        {
            while (true)
            {
                var batch = await Executions.ClaimDueAsync(owner, 3, Now, Now + Lease, None);
                if (batch.Count == 0)
                {
                    return;
                }

                foreach (var e in batch)
                {
                    e.LeaseOwner.ShouldBe(owner);
                    claims.Add((owner, e.Id));
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(n => Task.Run(() => ClaimAllAsync($"node-{n}"))));

        claims.Count.ShouldBe(40, "each execution is claimed exactly once");
        claims.Select(c => c.Id).Distinct().Count().ShouldBe(40);
        claims.Select(c => c.Id).ShouldBe(submitted, ignoreOrder: true);
        foreach (var (owner, id) in claims)
        {
            (await Executions.GetAsync(id, null, None))!.LeaseOwner.ShouldBe(owner);
        }
    }

    [Fact]
    public async Task An_execution_given_back_with_a_later_time_is_not_offered_before_then()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        await Executions.ReleaseClaimAsync(submitted.Id, "node-a", Now + TimeSpan.FromSeconds(5), None);

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(4));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem().LeaseOwner.ShouldBe("node-b");
    }

    [Fact]
    public async Task Only_the_lease_owner_can_give_a_claim_back()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        await Executions.ReleaseClaimAsync(submitted.Id, "node-b", Now, None);

        var stored = (await Executions.GetAsync(submitted.Id, null, None))!;
        stored.LeaseOwner.ShouldBe("node-a");
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task A_claim_whose_lease_ran_out_is_offered_again()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        Time.Advance(Lease - TimeSpan.FromMilliseconds(1));
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("the lease is still live");
        Time.Advance(TimeSpan.FromMilliseconds(1));
        var retaken = (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldHaveSingleItem();

        retaken.Id.ShouldBe(submitted.Id);
        retaken.LeaseOwner.ShouldBe("node-b");
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("node-a lost its lease");
        (await Executions.RenewLeaseAsync(submitted.Id, "node-a", Now + Lease, None)).ShouldBeFalse();
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-b"), None)).ShouldNotBeNull();
    }

    [Fact]
    public async Task A_kept_provider_result_survives_copy_retries_and_a_lost_lease_and_the_terminal_move_clears_it()
    {
        // docs/artifacts.md: a result whose outputs are still to be copied waits in PENDING with the result kept, so
        // whichever node claims it next (after a failed copy, or after the copier died) copies instead of calling the provider.
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        const string Kept = """{"output":"{}","usage":{"images":1},"artifacts":[{"name":"image-0.png","url":"https://cdn.example/x.png"}]}""";

        var waiting = (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, null, Attempt(1, "completed"), "node-a") with { PendingResult = Kept }, None)).ShouldNotBeNull();
        waiting.Status.ShouldBe(ExecutionStatus.Pending);
        waiting.PendingResult.ShouldBe(Kept);

        var first = await ClaimOneAsync(execution.Id, "node-b");
        first.PendingResult.ShouldBe(Kept);
        var copyFailed = ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Pending], Now + TimeSpan.FromSeconds(1), Timeout, Attempt(1, "copy_failed"), "node-b");
        (await Executions.TransitionAsync(copyFailed, None)).ShouldNotBeNull().PendingResult.ShouldBe(Kept, "a move that names no result keeps it");
        (await Executions.ClaimDueAsync("node-c", 10, Now, Now + Lease, None)).ShouldBeEmpty("not before the copy's backoff");

        Time.Advance(TimeSpan.FromSeconds(1));
        (await ClaimOneAsync(execution.Id, "node-c")).PendingResult.ShouldBe(Kept);
        Time.Advance(Lease); // node-c died mid-copy
        var resumed = await ClaimOneAsync(execution.Id, "node-d");
        resumed.PendingResult.ShouldBe(Kept);
        resumed.Attempts.ShouldBe(1, "copies are not provider attempts");

        var done = ExecutionTransition.Complete(execution.Id, [ExecutionStatus.Pending], "{}", [], new Usage(Images: 1), 40_000, Attempt(1, "copied"), "node-d");
        var completed = (await Executions.TransitionAsync(done, None)).ShouldNotBeNull();
        completed.Status.ShouldBe(ExecutionStatus.Completed);
        completed.PendingResult.ShouldBeNull();
        (await Executions.GetAsync(execution.Id, null, None)).ShouldNotBeNull().PendingResult.ShouldBeNull();
        completed.AttemptLog.Select(a => a.Outcome).ShouldBe(["completed", "copy_failed", "copied"]);
        (await AccountAsync(account)).ShouldSatisfyAllConditions(a => a.HeldMicros.ShouldBe(0), a => a.BalanceMicros.ShouldBe(960_000));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Renewing_a_lease_keeps_others_from_taking_the_work()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(submitted.Id, "node-a");

        Time.Advance(TimeSpan.FromSeconds(20));
        (await Executions.RenewLeaseAsync(submitted.Id, "node-a", Now + Lease, None)).ShouldBeTrue();
        (await Executions.RenewLeaseAsync(submitted.Id, "node-b", Now + Lease + Lease, None)).ShouldBeFalse();
        Time.Advance(TimeSpan.FromSeconds(20));

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Executions_that_are_not_pending_are_never_claimed()
    {
        var account = await NewAccountAsync(1_000_000);
        var processing = await ProcessingAsync(account, 10_000);
        var cancelled = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();

        Time.Advance(TimeSpan.FromMinutes(1)); // past every lease

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await Executions.GetAsync(processing.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
    }

    // ---------------------------------------------------------------- transitions

    [Fact]
    public async Task Starting_an_attempt_needs_the_lease()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("not claimed by anyone");
        await ClaimOneAsync(submitted.Id, "node-a");
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-b"), None)).ShouldBeNull("claimed by another node");
        (await Executions.GetAsync(submitted.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Pending);

        var started = (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldNotBeNull();

        started.Status.ShouldBe(ExecutionStatus.Processing);
        started.Attempts.ShouldBe(1);
        started.Provider.ShouldBe("sim");
        started.ProviderModel.ShouldBe("text");
        started.CallbackTokenHash.ShouldBe("token-hash");
        started.LeaseOwner.ShouldBe("node-a");
        started.LeaseExpiresAt.ShouldBe(Now + Lease);
        started.StartedAt.ShouldBe(Now);
        (await Executions.TransitionAsync(StartAttempt(submitted.Id, "node-a"), None)).ShouldBeNull("already processing");
    }

    [Fact]
    public async Task Purging_forgets_only_executions_that_ended_before_the_cutoff_and_frees_their_keys()
    {
        var account = await NewAccountAsync(1_000_000);
        var old = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(old.Id, account), None)).ShouldNotBeNull();
        var running = await SubmitAsync(account, 10_000);
        Time.Advance(TimeSpan.FromDays(31));
        var recent = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(recent.Id, account), None)).ShouldNotBeNull();

        var purged = await Executions.PurgeAsync(Now - TimeSpan.FromDays(30), 100, None);

        purged.ShouldBe([old.Id]);
        (await Executions.GetAsync(old.Id, account, None)).ShouldBeNull();
        (await Executions.ListEventsAsync(old.Id, 0, None)).ShouldBeEmpty();
        (await Executions.GetAsync(running.Id, account, None)).ShouldNotBeNull();
        (await Executions.GetAsync(recent.Id, account, None)).ShouldNotBeNull();
        var again = await Executions.SubmitAsync(NewExecution(account, 10_000, key: old.IdempotencyKey), None);
        again.Result.ShouldBe(SubmitResult.Created);
        var money = await AccountAsync(account);
        money.BalanceMicros.ShouldBe(1_000_000, "purging moves no money");
        money.HeldMicros.ShouldBe(20_000, "the running execution's hold and the new one's");
    }

    [Fact]
    public async Task Completing_settles_the_actual_cost_and_releases_the_hold()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        Time.Advance(TimeSpan.FromSeconds(2));

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 50_000), None)).ShouldNotBeNull();

        completed.Status.ShouldBe(ExecutionStatus.Completed);
        completed.ActualMicros.ShouldBe(50_000);
        completed.ChargedMicros.ShouldBe(50_000);
        completed.OverageMicros.ShouldBe(0);
        completed.Output.ShouldBe("""{"text":"hi"}""");
        completed.Usage.ShouldBe(new Usage(InputTokens: 10, OutputTokens: 5));
        completed.CompletedAt.ShouldBe(Now);
        completed.LeaseOwner.ShouldBeNull();
        completed.AttemptLog.ShouldHaveSingleItem().Outcome.ShouldBe("completed");
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(0);
        balance.BalanceMicros.ShouldBe(950_000);
        var ledger = (await LedgerAsync(account)).Where(e => e.ExecutionId == execution.Id).ToList();
        ledger.Where(e => e.Kind == LedgerKinds.Release).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        var charge = ledger.Where(e => e.Kind == LedgerKinds.Charge).ShouldHaveSingleItem();
        charge.AmountMicros.ShouldBe(50_000);
        charge.BalanceMicros.ShouldBe(950_000);
        charge.HeldMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_above_the_hold_charges_the_hold_and_records_the_overage()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 200_000), None)).ShouldNotBeNull();

        completed.ActualMicros.ShouldBe(200_000);
        completed.ChargedMicros.ShouldBe(120_000);
        completed.OverageMicros.ShouldBe(80_000);
        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(880_000);
        balance.HeldMicros.ShouldBe(0);
        (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Charge).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_at_no_cost_releases_the_hold_and_charges_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        (await Executions.TransitionAsync(Complete(execution.Id, 0), None)).ShouldNotBeNull().ChargedMicros.ShouldBe(0);

        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(1_000_000);
        balance.HeldMicros.ShouldBe(0);
        (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Charge).Sum(e => e.AmountMicros).ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_negative_actual_cost_never_adds_money()
    {
        // Defence in depth: a wrapped or bogus cost must not settle as a negative charge that
        // raises the balance without a ledger entry (balance = credits − charges, SPEC §3).
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var result = await Executions.TransitionAsync(Complete(execution.Id, -5_000), None);

        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBeLessThanOrEqualTo(1_000_000, "settling created money");
        balance.HeldMicros.ShouldBe(result is null ? 120_000 : 0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Settling_one_execution_leaves_the_other_holds_alone()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await ProcessingAsync(account, 100_000);
        await SubmitAsync(account, 70_000);

        (await Executions.TransitionAsync(Complete(first.Id, 30_000), None)).ShouldNotBeNull();

        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(70_000);
        balance.BalanceMicros.ShouldBe(970_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Completing_needs_the_lease_owner_when_one_is_named()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000, owner: "node-a");

        (await Executions.TransitionAsync(Complete(execution.Id, 10_000, owner: "node-b"), None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000);
        await AssertLedgerBalancedAsync(account);
    }

    public enum Ending
    {
        Fail,
        Cancel,
        Expire,
    }

    private ExecutionTransition End(Ending ending, string id, string account) => ending switch
    {
        Ending.Fail => ExecutionTransition.Fail(id, [ExecutionStatus.Processing], new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, "refused", false), Attempt(1, "failed"), "node-a"),
        Ending.Cancel => ExecutionTransition.Cancel(id, account),
        _ => ExecutionTransition.Expire(id),
    };

    [Theory]
    [InlineData(Ending.Fail, ExecutionStatus.Failed)]
    [InlineData(Ending.Cancel, ExecutionStatus.Cancelled)]
    [InlineData(Ending.Expire, ExecutionStatus.Expired)]
    public async Task Failing_cancelling_and_expiring_release_the_hold_and_charge_nothing(Ending ending, ExecutionStatus expected)
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);

        var ended = (await Executions.TransitionAsync(End(ending, execution.Id, account), None)).ShouldNotBeNull();

        ended.Status.ShouldBe(expected);
        ended.CompletedAt.ShouldBe(Now);
        ended.LeaseOwner.ShouldBeNull();
        ended.ChargedMicros.GetValueOrDefault().ShouldBe(0);
        var balance = await AccountAsync(account);
        balance.BalanceMicros.ShouldBe(1_000_000);
        balance.HeldMicros.ShouldBe(0);
        var ledger = (await LedgerAsync(account)).Where(e => e.ExecutionId == execution.Id).ToList();
        ledger.Where(e => e.Kind == LedgerKinds.Release).ShouldHaveSingleItem().AmountMicros.ShouldBe(120_000);
        ledger.ShouldNotContain(e => e.Kind == LedgerKinds.Charge && e.AmountMicros > 0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Expiring_records_the_deadline_error()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 10_000);

        var expired = (await Executions.TransitionAsync(ExecutionTransition.Expire(submitted.Id), None)).ShouldNotBeNull();

        expired.Status.ShouldBe(ExecutionStatus.Expired);
        expired.Error.ShouldNotBeNull().Code.ShouldBe(ExecutionErrorCodes.DeadlineExceeded);
        expired.Error.Retryable.ShouldBeFalse();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Cancelling_a_pending_execution_releases_its_hold_and_it_is_never_claimed()
    {
        var account = await NewAccountAsync(1_000_000);
        var submitted = await SubmitAsync(account, 40_000);

        (await Executions.TransitionAsync(ExecutionTransition.Cancel(submitted.Id, account), None)).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Cancelled);

        (await Executions.ClaimDueAsync("node-a", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await AccountAsync(account)).HeldMicros.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Complete_after_cancel_changes_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);
        var eventsBefore = await Executions.ListEventsAsync(execution.Id, 0, None);

        (await Executions.TransitionAsync(Complete(execution.Id, 50_000, owner: null), None)).ShouldBeNull();
        (await Executions.TransitionAsync(Complete(execution.Id, 50_000, owner: "node-a"), None)).ShouldBeNull();

        var stored = (await Executions.GetAsync(execution.Id, null, None))!;
        stored.Status.ShouldBe(ExecutionStatus.Cancelled);
        stored.ActualMicros.ShouldBeNull();
        stored.Output.ShouldBeNull();
        (await LedgerAsync(account)).Select(e => e.Id).ShouldBe(ledgerBefore.Select(e => e.Id));
        (await Executions.ListEventsAsync(execution.Id, 0, None)).Count.ShouldBe(eventsBefore.Count);
        (await AccountAsync(account)).BalanceMicros.ShouldBe(1_000_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Cancel_after_complete_changes_nothing()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        (await Executions.TransitionAsync(Complete(execution.Id, 50_000), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);

        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Expire(execution.Id), None)).ShouldBeNull();
        (await Executions.TransitionAsync(End(Ending.Fail, execution.Id, account), None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Completed);
        (await LedgerAsync(account)).Select(e => e.Id).ShouldBe(ledgerBefore.Select(e => e.Id));
        (await AccountAsync(account)).BalanceMicros.ShouldBe(950_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Theory]
    [InlineData(ExecutionStatus.Completed)]
    [InlineData(ExecutionStatus.Failed)]
    [InlineData(ExecutionStatus.Cancelled)]
    [InlineData(ExecutionStatus.Expired)]
    public async Task A_terminal_execution_never_changes_even_when_a_transition_names_its_status(ExecutionStatus terminal)
    {
        // SPEC §2: "a terminal execution never changes again, enforced by the store itself".
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 120_000);
        var ended = terminal switch
        {
            ExecutionStatus.Completed => Complete(execution.Id, 50_000),
            ExecutionStatus.Failed => End(Ending.Fail, execution.Id, account),
            ExecutionStatus.Cancelled => End(Ending.Cancel, execution.Id, account),
            _ => End(Ending.Expire, execution.Id, account),
        };
        (await Executions.TransitionAsync(ended, None)).ShouldNotBeNull().Status.ShouldBe(terminal);
        var ledgerBefore = await LedgerAsync(account);

        var revived = await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [terminal], Now, null, null),
            None);

        revived.ShouldBeNull($"a {terminal} execution was moved back to PENDING");
        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(terminal);
        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty();
        (await LedgerAsync(account)).Count.ShouldBe(ledgerBefore.Count);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_terminal_execution_is_never_settled_twice_even_when_a_transition_names_its_status()
    {
        var account = await NewAccountAsync(1_000_000);
        var cancelled = await ProcessingAsync(account, 120_000);
        await SubmitAsync(account, 200_000); // another open hold, which a second release would eat into
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();
        var ledgerBefore = await LedgerAsync(account);

        var completeAfterCancel = ExecutionTransition.Complete(
            cancelled.Id, [ExecutionStatus.Processing, ExecutionStatus.Cancelled], "{}", [], new Usage(), 50_000, null);
        Execution? result = null;
        Exception? error = null;
        try
        {
            result = await Executions.TransitionAsync(completeAfterCancel, None);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        error.ShouldBeNull("the store answers null rather than failing");
        result.ShouldBeNull("a CANCELLED execution was completed");
        (await Executions.GetAsync(cancelled.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Cancelled);
        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(200_000);
        balance.BalanceMicros.ShouldBe(1_000_000);
        (await LedgerAsync(account)).Count.ShouldBe(ledgerBefore.Count);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Concurrent_cancel_and_complete_have_exactly_one_winner_and_a_consistent_ledger()
    {
        var account = await NewAccountAsync(10_000_000);
        var executions = new List<Execution>();
        for (var i = 0; i < 16; i++)
        {
            executions.Add(await ProcessingAsync(account, 100_000));
        }

        foreach (var execution in executions)
        {
            var cancel = Task.Run(() => Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None));
            var complete = Task.Run(() => Executions.TransitionAsync(Complete(execution.Id, 30_000), None));
            var results = await Task.WhenAll(cancel, complete);

            results.Count(r => r is not null).ShouldBe(1, $"exactly one of cancel and complete wins for {execution.Id}");
            var winner = results.Single(r => r is not null)!;
            (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(winner.Status);
        }

        var completedCount = 0;
        foreach (var execution in executions)
        {
            if ((await Executions.GetAsync(execution.Id, null, None))!.Status == ExecutionStatus.Completed)
            {
                completedCount++;
            }
        }

        var balance = await AccountAsync(account);
        balance.HeldMicros.ShouldBe(0);
        balance.BalanceMicros.ShouldBe(10_000_000 - (completedCount * 30_000));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Endings_settled_together_leave_each_ledger_entry_with_the_money_just_after_it()
    {
        // On PostgreSQL a group's endings for one account settle in one statement, which works out each entry's figures.
        var account = await NewAccountAsync(10_000_000);
        var executions = new List<Execution>();
        for (var i = 0; i < 30; i++)
        {
            executions.Add(await ProcessingAsync(account, 100_000));
        }

        // Free, cheap, and over the hold (charged the hold): with no charge entry, a small one, a capped one.
        await Task.WhenAll(executions.Select((e, i) => Task.Run(() => Executions.TransitionAsync(Complete(e.Id, i % 3 == 0 ? 0 : i * 7_000), None))));

        var (balance, held) = (0L, 0L);
        // The setup's credit first (its id is the test's, not the store's, whose ids follow the order they were taken in).
        var entries = (await LedgerAsync(account)).OrderBy(e => e.Kind != LedgerKinds.Credit).ThenBy(e => e.Id, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            (balance, held) = entry.Kind switch
            {
                LedgerKinds.Credit => (balance + entry.AmountMicros, held),
                LedgerKinds.Hold => (balance, held + entry.AmountMicros),
                LedgerKinds.Release => (balance, held - entry.AmountMicros),
                LedgerKinds.Charge => (balance - entry.AmountMicros, held),
                _ => throw new ShouldAssertException($"unexpected ledger kind {entry.Kind}"),
            };
            (entry.BalanceMicros, entry.HeldMicros).ShouldBe((balance, held), $"{entry.Kind} {entry.Id} for {entry.ExecutionId}");
        }

        var money = await AccountAsync(account);
        (money.BalanceMicros, money.HeldMicros).ShouldBe((balance, 0L));
        balance.ShouldBe(10_000_000 - Enumerable.Range(0, 30).Sum(i => i % 3 == 0 ? 0 : Math.Min(i * 7_000, 100_000)));
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Pipelined_writes_apply_in_the_order_queued_even_when_the_first_has_not_committed()
    {
        // The dispatcher queues an attempt's start and, without waiting for it, the attempt's outcome: a retry (a move
        // between non-terminal states) or an ending. Each must find the execution as the start left it.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 40);
        var written = executions.Select((e, i) =>
        {
            var start = Executions.TransitionAsync(StartAttempt(e.Id, "node-a") with { Pipelined = true }, None);
            var outcome = Executions.TransitionAsync(
                (i % 2 == 0
                    ? ExecutionTransition.Retry(e.Id, [ExecutionStatus.Processing], Now + TimeSpan.FromMinutes(1), Timeout, Attempt(1, "failed"), "node-a")
                    : Complete(e.Id, 5_000)) with { Pipelined = true },
                None);
            return (start, outcome, Ends: i % 2 == 1);
        }).ToList();

        foreach (var (start, outcome, ends) in written)
        {
            (await start).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Processing);
            var after = (await outcome).ShouldNotBeNull("the outcome found the execution as its start left it");
            after.Status.ShouldBe(ends ? ExecutionStatus.Completed : ExecutionStatus.Pending);
            after.Attempts.ShouldBe(1);
            (await Executions.ListEventsAsync(after.Id, 0, None)).Select(e => e.Status)
                .ShouldBe([ExecutionStatus.Pending, ExecutionStatus.Processing, ends ? ExecutionStatus.Completed : ExecutionStatus.Pending]);
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_pipelined_attempt_answers_and_leaves_the_execution_as_its_writes_one_after_the_other_would()
    {
        // Two attempts (the first retried with an error, the second completed), each a start with its outcome queued
        // behind it, on one execution; the same writes awaited one by one on a twin. PostgreSQL writes a start and an
        // outcome that meet in one group as one statement: every answer, the stored row and the events must not show it.
        var account = await NewAccountAsync(10_000_000);
        var pairs = new List<(Execution Piped, Execution Sequential)>();
        for (var i = 0; i < 20; i++)
        {
            pairs.Add((await SubmitAsync(account, 10_000), await SubmitAsync(account, 10_000)));
        }

        var answers = new List<(string Piped, string Sequential)>();
        async Task AttemptAsync(Func<string, ExecutionTransition> outcomeOf)
        {
            (await Executions.ClaimDueAsync("node-a", 100, Now, Now + Lease, None)).Count.ShouldBe(pairs.Count * 2);
            var piped = pairs.Select(p => (
                Start: Executions.TransitionAsync(StartAttempt(p.Piped.Id, "node-a") with { Pipelined = true }, None),
                Outcome: Executions.TransitionAsync(outcomeOf(p.Piped.Id) with { Pipelined = true }, None))).ToList();
            foreach (var ((pipedStart, pipedOutcome), (_, sequential)) in piped.Zip(pairs))
            {
                var start = await Executions.TransitionAsync(StartAttempt(sequential.Id, "node-a"), None);
                var outcome = await Executions.TransitionAsync(outcomeOf(sequential.Id), None);
                answers.Add((Comparable(await pipedStart, sequential.Id), Comparable(start, sequential.Id)));
                answers.Add((Comparable(await pipedOutcome, sequential.Id), Comparable(outcome, sequential.Id)));
            }
        }

        await AttemptAsync(id => ExecutionTransition.Retry(id, [ExecutionStatus.Processing], Now + TimeSpan.FromSeconds(5), Timeout, Attempt(1, "failed"), "node-a"));
        Time.Advance(TimeSpan.FromSeconds(5));
        await AttemptAsync(id => Complete(id, 5_000) with { Attempt = Attempt(2, "completed") });

        foreach (var (piped, sequential) in answers)
        {
            piped.ShouldBe(sequential);
        }

        foreach (var (piped, sequential) in pairs)
        {
            var stored = (await Executions.GetAsync(piped.Id, null, None)).ShouldNotBeNull();
            stored.Status.ShouldBe(ExecutionStatus.Completed);
            stored.Attempts.ShouldBe(2);
            stored.AttemptLog.Count.ShouldBe(2);
            Comparable(stored, sequential.Id).ShouldBe(Comparable(await Executions.GetAsync(sequential.Id, null, None), sequential.Id));
            var events = await Executions.ListEventsAsync(piped.Id, 0, None);
            events.Select(e => e.Status).ShouldBe([
                ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Completed]);
            events.Select(e => e.Status).ShouldBe((await Executions.ListEventsAsync(sequential.Id, 0, None)).Select(e => e.Status));
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_cancel_queued_between_an_attempts_start_and_its_outcome_applies_between_them()
    {
        // PostgreSQL writes a start and its outcome as one statement when they meet in a group, but never across a write
        // queued between them: here the cancel ends the execution after the start, and the outcome finds it ended.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 10);
        var written = executions.Select(e => (
            Start: Executions.TransitionAsync(StartAttempt(e.Id, "node-a") with { Pipelined = true }, None),
            Cancel: Executions.TransitionAsync(ExecutionTransition.Cancel(e.Id, account), None),
            Outcome: Executions.TransitionAsync(Complete(e.Id, 5_000) with { Pipelined = true }, None))).ToList();

        foreach (var (start, cancel, outcome) in written)
        {
            (await start).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Processing);
            (await cancel).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Cancelled);
            (await outcome).ShouldBeNull("the cancel came first");
        }

        foreach (var e in executions)
        {
            (await Executions.ListEventsAsync(e.Id, 0, None)).Select(x => x.Status)
                .ShouldBe([ExecutionStatus.Pending, ExecutionStatus.Processing, ExecutionStatus.Cancelled]);
        }

        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Endings_queued_together_each_write_their_own_delivery_to_their_webhook_url()
    {
        // PostgreSQL writes a group's deliveries to webhook_urls as one insert: each ending must still get its own row,
        // for its own event, with its own execution in the body.
        var account = await NewAccountAsync(10_000_000);
        var executions = await SubmittedAndClaimedAsync(account, 30, i => NewExecution(account, 10_000) with { WebhookUrl = $"https://receiver.example/hook/{i}" });
        foreach (var e in executions)
        {
            (await Executions.TransitionAsync(StartAttempt(e.Id, "node-a"), None)).ShouldNotBeNull();
        }

        await Task.WhenAll(executions.Select(e => Executions.TransitionAsync(Complete(e.Id, 5_000), None)));

        var deliveries = await DeliveriesAsync();
        deliveries.Select(d => d.ExecutionId).Order().ShouldBe(executions.Select(e => e.Id).Order(), "one delivery per ending");
        foreach (var (executionId, eventId, eventType, payload) in deliveries)
        {
            eventType.ShouldBe("execution.completed");
            var completed = (await Executions.ListEventsAsync(executionId, 0, None)).Last();
            completed.Status.ShouldBe(ExecutionStatus.Completed);
            eventId.ShouldBe(completed.Id);
            using var body = System.Text.Json.JsonDocument.Parse(payload);
            body.RootElement.GetProperty("id").GetString().ShouldBe(eventId);
            body.RootElement.GetProperty("data").GetProperty("id").GetString().ShouldBe(executionId);
            body.RootElement.GetProperty("data").GetProperty("status").GetString().ShouldBe("COMPLETED");
        }
    }

    /// <summary>The execution as JSON, under <paramref name="id"/> and without its key, to compare twins.</summary>
    private static string Comparable(Execution? execution, string id) =>
        System.Text.Json.JsonSerializer.Serialize(execution.ShouldNotBeNull() with { Id = id, IdempotencyKey = "" });

    [Fact]
    public async Task A_retry_moves_processing_back_to_pending_until_its_time_and_clears_the_lease()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);
        var retryAt = Now + TimeSpan.FromSeconds(5);

        var retried = (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], retryAt, Timeout, Attempt(1, "failed"), "node-a"),
            None)).ShouldNotBeNull();

        retried.Status.ShouldBe(ExecutionStatus.Pending);
        retried.NextAttemptAt.ShouldBe(retryAt);
        retried.LeaseOwner.ShouldBeNull();
        retried.LeaseExpiresAt.ShouldBeNull();
        retried.Error.ShouldBe(Timeout);
        retried.Attempts.ShouldBe(1);
        retried.AttemptLog.ShouldHaveSingleItem().Outcome.ShouldBe("failed");
        retried.HeldMicros.ShouldBe(100_000);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000, "a retry keeps the hold");

        (await Executions.ClaimDueAsync("node-b", 10, Now, Now + Lease, None)).ShouldBeEmpty("not due yet");
        Time.Advance(TimeSpan.FromSeconds(5));
        await ClaimOneAsync(execution.Id, "node-b");
        var second = (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-b"), None)).ShouldNotBeNull();
        second.Attempts.ShouldBe(2);

        var completed = (await Executions.TransitionAsync(Complete(execution.Id, 20_000, owner: "node-b"), None)).ShouldNotBeNull();
        completed.Error.ShouldBeNull("a completed execution carries no error");
        completed.AttemptLog.Count.ShouldBe(2);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_retry_by_a_node_that_lost_the_lease_is_refused()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000, owner: "node-a");

        (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, Timeout, null, "node-b"),
            None)).ShouldBeNull();

        (await Executions.GetAsync(execution.Id, null, None))!.Status.ShouldBe(ExecutionStatus.Processing);
    }

    [Fact]
    public async Task Waiting_for_a_callback_is_polled_only_when_due()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);

        var awaiting = (await Executions.TransitionAsync(
            ExecutionTransition.AwaitCallback(execution.Id, "node-a", "job-1", Now + TimeSpan.FromSeconds(30), Attempt(1, "accepted")),
            None)).ShouldNotBeNull();

        awaiting.Status.ShouldBe(ExecutionStatus.AwaitingWebhook);
        awaiting.ProviderJobId.ShouldBe("job-1");
        awaiting.LeaseOwner.ShouldBeNull();
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(30));
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldHaveSingleItem().Id.ShouldBe(execution.Id);
        (await Executions.ClaimDuePollsAsync(10, Now, Now + TimeSpan.FromSeconds(30), None)).ShouldBeEmpty("the next poll was pushed back");

        // The callback completes it without a lease.
        (await Executions.TransitionAsync(Complete(execution.Id, 10_000, owner: null), None)).ShouldNotBeNull();
        await AssertLedgerBalancedAsync(account);
    }

    // ---------------------------------------------------------------- sweeping

    [Fact]
    public async Task Expired_lists_only_unfinished_executions_past_their_deadline()
    {
        var account = await NewAccountAsync(10_000_000);
        var processingLate = await ProcessingAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        var completedLate = await ProcessingAsync(account, 10_000, owner: "node-c", timeout: TimeSpan.FromSeconds(10));
        (await Executions.TransitionAsync(Complete(completedLate.Id, 1_000, owner: "node-c"), None)).ShouldNotBeNull();
        var pendingLate = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        var pendingInTime = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(60));
        var cancelledLate = await SubmitAsync(account, 10_000, timeout: TimeSpan.FromSeconds(10));
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelledLate.Id, account), None)).ShouldNotBeNull();

        (await Executions.ListExpiredAsync(Now, 100, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(11));

        var expired = await Executions.ListExpiredAsync(Now, 100, None);

        expired.ShouldBe([pendingLate.Id, processingLate.Id], ignoreOrder: true);
        expired.ShouldNotContain(pendingInTime.Id);
        (await Executions.ListExpiredAsync(Now, 1, None)).Count.ShouldBe(1);
        foreach (var id in expired)
        {
            (await Executions.TransitionAsync(ExecutionTransition.Expire(id), None)).ShouldNotBeNull();
        }

        (await Executions.ListExpiredAsync(Now, 100, None)).ShouldBeEmpty();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Abandoned_lists_processing_executions_whose_lease_ran_out_and_they_can_be_taken_back()
    {
        var account = await NewAccountAsync(10_000_000);
        var stale = await ProcessingAsync(account, 10_000, owner: "node-dead");
        var claimedOnly = await SubmitAsync(account, 10_000);
        await ClaimOneAsync(claimedOnly.Id, "node-dead"); // PENDING under a lease: not abandoned, just re-offered
        Time.Advance(TimeSpan.FromSeconds(20));
        var live = await ProcessingAsync(account, 10_000, owner: "node-live");

        (await Executions.ListAbandonedAsync(Now, 100, None)).ShouldBeEmpty();
        Time.Advance(TimeSpan.FromSeconds(11)); // node-dead's leases ran out 1 s ago; node-live's has 19 s left

        var abandoned = await Executions.ListAbandonedAsync(Now, 100, None);

        abandoned.ShouldHaveSingleItem().Id.ShouldBe(stale.Id);
        abandoned[0].LeaseOwner.ShouldBe("node-dead");

        var handBack = ExecutionTransition.Retry(stale.Id, [ExecutionStatus.Processing], Now, null, null) with { LeaseExpiredBy = Now };
        (await Executions.TransitionAsync(handBack, None)).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Pending);
        var liveHandBack = ExecutionTransition.Retry(live.Id, [ExecutionStatus.Processing], Now, null, null) with { LeaseExpiredBy = Now };
        (await Executions.TransitionAsync(liveHandBack, None)).ShouldBeNull("node-live still holds its lease");
        (await Executions.TransitionAsync(Complete(stale.Id, 1_000, owner: "node-dead"), None)).ShouldBeNull("the dead node no longer owns it");
        (await Executions.ListAbandonedAsync(Now, 100, None)).ShouldBeEmpty();

        var reclaimed = await Executions.ClaimDueAsync("node-live", 10, Now, Now + Lease, None);
        reclaimed.Select(e => e.Id).ShouldBe([stale.Id, claimedOnly.Id], ignoreOrder: true);
        await AssertLedgerBalancedAsync(account);
    }

    // ---------------------------------------------------------------- events

    [Fact]
    public async Task Events_record_each_status_change_once_in_order()
    {
        var account = await NewAccountAsync(1_000_000);
        var execution = await ProcessingAsync(account, 100_000);
        (await Executions.TransitionAsync(
            ExecutionTransition.Retry(execution.Id, [ExecutionStatus.Processing], Now, Timeout, Attempt(1, "failed"), "node-a"), None)).ShouldNotBeNull();
        await ClaimOneAsync(execution.Id, "node-a");
        (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-a"), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(
            ExecutionTransition.AwaitCallback(execution.Id, "node-a", "job-9", Now + Lease, Attempt(2, "accepted")), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(StartAttempt(execution.Id, "node-a"), None)).ShouldBeNull(); // refused: no event
        (await Executions.TransitionAsync(Complete(execution.Id, 5_000, owner: null), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(execution.Id, account), None)).ShouldBeNull(); // refused: no event

        var events = await Executions.ListEventsAsync(execution.Id, 0, None);

        events.Select(e => e.Status).ShouldBe(
        [
            ExecutionStatus.Pending,
            ExecutionStatus.Processing,
            ExecutionStatus.Pending,
            ExecutionStatus.Processing,
            ExecutionStatus.AwaitingWebhook,
            ExecutionStatus.Completed,
        ]);
        events.Select(e => e.Type).ShouldBe(events.Select(e => e.Status.EventType()));
        events.ShouldAllBe(e => e.ExecutionId == execution.Id && e.AccountId == account);
        events.Select(e => e.Sequence).ShouldBe(events.Select(e => e.Sequence).Order(), "in order");
        events.Select(e => e.Sequence).Distinct().Count().ShouldBe(events.Count);
        events.Select(e => e.Id).Distinct().Count().ShouldBe(events.Count);

        var later = await Executions.ListEventsAsync(execution.Id, events[3].Sequence, None);
        later.Select(e => e.Status).ShouldBe([ExecutionStatus.AwaitingWebhook, ExecutionStatus.Completed]);
        (await Executions.ListEventsAsync(execution.Id, events[^1].Sequence, None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task Events_of_one_execution_do_not_include_another_executions()
    {
        var account = await NewAccountAsync(1_000_000);
        var first = await SubmitAsync(account, 10_000);
        var second = await SubmitAsync(account, 10_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(second.Id, account), None)).ShouldNotBeNull();

        (await Executions.ListEventsAsync(first.Id, 0, None)).ShouldHaveSingleItem().Status.ShouldBe(ExecutionStatus.Pending);
        (await Executions.ListEventsAsync(second.Id, 0, None)).Count.ShouldBe(2);
    }

    // ---------------------------------------------------------------- credits

    [Fact]
    public async Task A_credit_with_a_repeated_reference_replays_without_adding_money()
    {
        var account = await NewAccountAsync(0);

        var first = (await Accounts.CreditAsync(Ids.New("txn"), account, 500_000, "invoice-7", Now, None)).ShouldNotBeNull();
        var again = (await Accounts.CreditAsync(Ids.New("txn"), account, 500_000, "invoice-7", Now, None)).ShouldNotBeNull();
        var different = (await Accounts.CreditAsync(Ids.New("txn"), account, 999_000, "invoice-7", Now, None)).ShouldNotBeNull();

        first.Replayed.ShouldBeFalse();
        first.Entry.Kind.ShouldBe(LedgerKinds.Credit);
        first.Entry.AmountMicros.ShouldBe(500_000);
        first.Entry.BalanceMicros.ShouldBe(500_000);
        again.Replayed.ShouldBeTrue();
        again.Entry.Id.ShouldBe(first.Entry.Id);
        different.Replayed.ShouldBeTrue();
        different.Entry.AmountMicros.ShouldBe(500_000);
        (await AccountAsync(account)).BalanceMicros.ShouldBe(500_000);
        (await LedgerAsync(account)).ShouldHaveSingleItem();
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task Credits_without_a_reference_always_add_and_references_are_per_account()
    {
        var a = await NewAccountAsync(0);
        var b = await NewAccountAsync(0);

        (await Accounts.CreditAsync(Ids.New("txn"), a, 100_000, null, Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), a, 100_000, null, Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), a, 1_000, "ref", Now, None))!.Replayed.ShouldBeFalse();
        (await Accounts.CreditAsync(Ids.New("txn"), b, 1_000, "ref", Now, None))!.Replayed.ShouldBeFalse();

        (await AccountAsync(a)).BalanceMicros.ShouldBe(201_000);
        (await AccountAsync(b)).BalanceMicros.ShouldBe(1_000);
        await AssertLedgerBalancedAsync(a);
        await AssertLedgerBalancedAsync(b);
    }

    [Fact]
    public async Task Concurrent_credits_with_one_reference_add_the_money_once()
    {
        var account = await NewAccountAsync(0);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ =>
            Task.Run(() => Accounts.CreditAsync(Ids.New("txn"), account, 250_000, "wire-1", Now, None))));

        outcomes.Count(o => o is { Replayed: false }).ShouldBe(1);
        outcomes.Count(o => o is { Replayed: true }).ShouldBe(9);
        outcomes.Select(o => o!.Entry.Id).Distinct().ShouldHaveSingleItem();
        (await AccountAsync(account)).BalanceMicros.ShouldBe(250_000);
        await AssertLedgerBalancedAsync(account);
    }

    [Fact]
    public async Task A_credit_to_an_unknown_account_is_refused()
    {
        (await Accounts.CreditAsync(Ids.New("txn"), "acct_missing", 1_000, "x", Now, None)).ShouldBeNull();
    }

    [Fact]
    public async Task Credited_money_becomes_available_for_holds_at_once()
    {
        var account = await NewAccountAsync(5_000);
        (await Executions.SubmitAsync(NewExecution(account, 10_000), None)).Result.ShouldBe(SubmitResult.InsufficientBalance);

        await Accounts.CreditAsync(Ids.New("txn"), account, 5_000, "more", Now, None);

        (await Executions.SubmitAsync(NewExecution(account, 10_000), None)).Result.ShouldBe(SubmitResult.Created);
        await AssertLedgerBalancedAsync(account);
    }
}

/// <summary>The contract on the embedded store: a new SQLite file in its own temporary directory.</summary>
public sealed class SqliteExecutionStoreContractTests : ExecutionStoreContract
{
    private string? _directory;
    private SqliteDatabase? _database;

    protected override async Task<(IExecutionStore Executions, IAccountStore Accounts)> CreateStoresAsync(TimeProvider time)
    {
        _directory = TestPaths.NewTempDirectory("store-contract");
        _database = new SqliteDatabase($"Data Source={Path.Combine(_directory, "modelroute.db")}");
        await _database.MigrateAsync(CancellationToken.None);
        var ids = new IdGenerator(time);
        var executions = Commits(new SqliteExecutionStore(_database, ids, Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time), time);
        return (executions, new SqliteAccountStore(_database));
    }

    protected override Task<IReadOnlyList<(string ExecutionId, string EventId, string EventType, string Payload)>> DeliveriesAsync() =>
        _database!.ReadAsync<IReadOnlyList<(string, string, string, string)>>(
            async c => [.. await Dapper.SqlMapper.QueryAsync<(string, string, string, string)>(c, DeliveriesSql)],
            CancellationToken.None);

    [Fact]
    public async Task Refused_and_replayed_submissions_change_nothing_so_no_group_runs_twice()
    {
        // The writer runs a group's writes without savepoints, and runs the whole group again for a write that changed
        // rows before it refused: a submission refused for money, or answered as a replay or a reused key, must not be one.
        var account = await NewAccountAsync(20 * 10_000);
        (await Executions.SubmitAsync(NewExecution(account, 10_000, key: "same", hash: "h"), None)).Result.ShouldBe(SubmitResult.Created);
        var submissions = Enumerable.Range(0, 40).Select(_ => NewExecution(account, 10_000))
            .Concat(Enumerable.Range(0, 10).Select(_ => NewExecution(account, 10_000, key: "same", hash: "h")))
            .Concat(Enumerable.Range(0, 10).Select(_ => NewExecution(account, 10_000, key: "same", hash: "other")));

        var outcomes = await Task.WhenAll(submissions.Select(x => Task.Run(() => Executions.SubmitAsync(x, None))));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(19);
        outcomes.Count(o => o.Result == SubmitResult.InsufficientBalance).ShouldBe(21);
        outcomes.Count(o => o.Result == SubmitResult.Replayed).ShouldBe(10);
        outcomes.Count(o => o.Result == SubmitResult.KeyReused).ShouldBe(10);
        _database!.GroupsRunAgain.ShouldBe(0);
        await AssertLedgerBalancedAsync(account);
    }

    protected override IExecutionStore CreateNodeStore(TimeProvider time, NodeIdentity node, DispatchHandoff dispatch) =>
        Commits(new SqliteExecutionStore(_database!, new IdGenerator(time), Microsoft.Extensions.Options.Options.Create(new ModelRoute.Server.Hosting.ModelRouteOptions()), time),
            time, node: node, dispatch: dispatch);

    protected override Task DisposeStoresAsync()
    {
        _database?.Dispose();
        if (_directory is not null)
        {
            TestPaths.TryDelete(_directory);
        }

        return Task.CompletedTask;
    }
}
