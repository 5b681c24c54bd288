namespace ModelRoute.Tests.Storage;

/// <summary>docs/tenancy.md on both stores: a key's spending limit is held against atomically, and settlements move its figures.</summary>
public abstract partial class ExecutionStoreContract
{
    private async Task<string> KeyAsync(string accountId, long? maxSpendMicros)
    {
        var key = await Accounts.CreateApiKeyAsync(
            new ApiKeyRecord(Ids.New("key"), accountId, "mr_test…", "contract", Now, null, maxSpendMicros), Guid.NewGuid().ToString("N"), None);
        return key.Id;
    }

    private async Task<ApiKeyRecord> KeyRecordAsync(string accountId, string keyId) =>
        (await Accounts.ListApiKeysAsync(accountId, null, 100, None)).Single(k => k.Id == keyId);

    [Fact]
    public async Task A_hundred_concurrent_submissions_on_a_key_whose_limit_fits_ten_create_exactly_ten()
    {
        var account = await NewAccountAsync(10_000_000);
        var keyId = await KeyAsync(account, 105_000);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ =>
            Executions.SubmitAsync(NewExecution(account, 10_000) with { ApiKeyId = keyId, KeySpendLimited = true }, None)));

        outcomes.Count(o => o.Result == SubmitResult.Created).ShouldBe(10);
        outcomes.Count(o => o.Result == SubmitResult.KeySpendLimitExceeded).ShouldBe(90);
        (await KeyRecordAsync(account, keyId)).HeldMicros.ShouldBe(100_000);
        (await AccountAsync(account)).HeldMicros.ShouldBe(100_000);
        (await LedgerAsync(account)).Count(e => e.Kind == LedgerKinds.Hold).ShouldBe(10);
    }

    [Fact]
    public async Task A_replay_on_a_key_at_its_limit_is_answered_as_a_replay()
    {
        var account = await NewAccountAsync(10_000_000);
        var keyId = await KeyAsync(account, 10_000);
        var first = NewExecution(account, 10_000, key: "same") with { ApiKeyId = keyId, KeySpendLimited = true };
        (await Executions.SubmitAsync(first, None)).Result.ShouldBe(SubmitResult.Created);

        var again = await Executions.SubmitAsync(first with { Id = Ids.New("exe") }, None);
        var other = await Executions.SubmitAsync(NewExecution(account, 10_000) with { ApiKeyId = keyId, KeySpendLimited = true }, None);

        again.Result.ShouldBe(SubmitResult.Replayed);
        other.Result.ShouldBe(SubmitResult.KeySpendLimitExceeded);
    }

    [Fact]
    public async Task Settlements_add_charges_to_the_keys_spent_and_free_a_limited_keys_holds()
    {
        var account = await NewAccountAsync(10_000_000);
        var limited = await KeyAsync(account, 1_000_000);
        var open = await KeyAsync(account, null);
        var completed = (await Executions.SubmitAsync(NewExecution(account, 20_000) with { ApiKeyId = limited, KeySpendLimited = true }, None)).Execution!;
        completed.ApiKeyId.ShouldBe(limited);
        (await KeyRecordAsync(account, limited)).HeldMicros.ShouldBe(20_000);
        await CompleteAsync(completed.Id, 12_345);

        var cancelled = (await Executions.SubmitAsync(NewExecution(account, 30_000) with { ApiKeyId = limited, KeySpendLimited = true }, None)).Execution!;
        (await KeyRecordAsync(account, limited)).HeldMicros.ShouldBe(30_000);
        (await Executions.TransitionAsync(ExecutionTransition.Cancel(cancelled.Id, account), None)).ShouldNotBeNull();

        var unlimited = (await Executions.SubmitAsync(NewExecution(account, 40_000) with { ApiKeyId = open }, None)).Execution!;
        await CompleteAsync(unlimited.Id, 7_000);

        var limitedKey = await KeyRecordAsync(account, limited);
        limitedKey.HeldMicros.ShouldBe(0);
        limitedKey.SpentMicros.ShouldBe(12_345);
        var openKey = await KeyRecordAsync(account, open);
        openKey.HeldMicros.ShouldBe(0);
        openKey.SpentMicros.ShouldBe(7_000);
        (await LedgerAsync(account)).Where(e => e.Kind == LedgerKinds.Charge).Sum(e => e.AmountMicros).ShouldBe(19_345);
    }

    private async Task CompleteAsync(string id, long actualMicros)
    {
        await ClaimOneAsync(id, "node-a");
        (await Executions.TransitionAsync(StartAttempt(id, "node-a"), None)).ShouldNotBeNull();
        (await Executions.TransitionAsync(Complete(id, actualMicros), None)).ShouldNotBeNull().Status.ShouldBe(ExecutionStatus.Completed);
    }
}
