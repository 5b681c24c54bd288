using System.Diagnostics;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// docs/tenancy.md: a key revoked, or an account disabled, on one node is refused on every other node within a second,
/// though each node caches the keys it has seen.
/// </summary>
public sealed class PostgresKeyRevocationTests : IAsyncLifetime
{
    private TwoPostgresNodes _nodes = null!;

    private GatewayFactory NodeA => _nodes.A;

    private GatewayFactory NodeB => _nodes.B;

    public async Task InitializeAsync() => _nodes = await TwoPostgresNodes.StartAsync("revoke");

    public Task DisposeAsync() => _nodes.DisposeAsync().AsTask();

    [Fact]
    public async Task A_revoked_key_is_refused_on_the_other_node_within_a_second()
    {
        using var account = await NodeA.CreateAccountAsync();
        using var onB = NodeB.WithBearer(account.Key);
        (await onB.GetApiAsync("/v1/balance")).Status.ShouldBe(200); // Node B caches the key.
        var keyId = (await account.Client.GetApiAsync("/v1/api-keys")).Json.GetProperty("data")[0].GetProperty("id").GetString()!;

        (await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{keyId}", null)).Status.ShouldBe(200);
        var revoked = Stopwatch.StartNew();

        await RefusedWithinASecondAsync(onB, revoked, 401);
    }

    [Fact]
    public async Task A_disabled_account_is_refused_on_the_other_node_within_a_second_and_served_again_once_enabled()
    {
        using var account = await NodeA.CreateAccountAsync();
        using var onB = NodeB.WithBearer(account.Key);
        (await onB.GetApiAsync("/v1/balance")).Status.ShouldBe(200);
        using var admin = NodeA.Admin();

        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/disable", "{}")).Status.ShouldBe(200);
        var disabled = Stopwatch.StartNew();
        await RefusedWithinASecondAsync(onB, disabled, 403);

        (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/enable", "{}")).Status.ShouldBe(200);
        await Eventually.HoldsAsync(async () => (await onB.GetApiAsync("/v1/balance")).Status == 200, "node B serves the enabled account", seconds: 2);
    }

    /// <summary>Polls node B until it refuses; the first refusal must come within a second of the change.</summary>
    private static async Task RefusedWithinASecondAsync(HttpClient onB, Stopwatch since, int status)
    {
        while (true)
        {
            var response = await onB.GetApiAsync("/v1/balance");
            if (response.Status == status)
            {
                since.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1));
                return;
            }

            response.Status.ShouldBe(200, response.Body);
            since.Elapsed.ShouldBeLessThan(TimeSpan.FromSeconds(1), "node B still served the key");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task A_notification_of_a_revoked_key_or_a_changed_account_drops_them_from_the_cache_at_once()
    {
        var store = new CountingKeyStore();
        var keys = new ModelRoute.Server.Accounts.ApiKeyCache(store, TimeProvider.System, TimeSpan.FromHours(1));
        var listener = new ModelRoute.Server.Storage.Postgres.PostgresNotificationListener(
            null!, new ModelRoute.Server.Executions.ExecutionChanges(new ModelRoute.Server.Operations.GatewayMetrics()), TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<ModelRoute.Server.Storage.Postgres.PostgresNotificationListener>.Instance,
            new ModelRoute.Server.Executions.NodeIdentity(), keys: keys);
        await keys.FindAsync("h1", CancellationToken.None);
        await keys.FindAsync("h2", CancellationToken.None);
        await keys.FindAsync("h1", CancellationToken.None);
        store.Reads.ShouldBe(2);

        listener.Handle(ModelRoute.Server.Storage.Postgres.PostgresNotifier.Pack(
            [ModelRoute.Server.Storage.Postgres.PostgresNotifier.KeyPayload("key_h1")], "other-node").ShouldHaveSingleItem());
        await keys.FindAsync("h1", CancellationToken.None);
        await keys.FindAsync("h2", CancellationToken.None);
        store.Reads.ShouldBe(3);

        listener.Handle(ModelRoute.Server.Storage.Postgres.PostgresNotifier.Pack(
            [ModelRoute.Server.Storage.Postgres.PostgresNotifier.AccountPayload("acct_h2")], "other-node").ShouldHaveSingleItem());
        await keys.FindAsync("h2", CancellationToken.None);
        store.Reads.ShouldBe(4);
    }

    /// <summary>Finds key "key_&lt;hash&gt;" of account "acct_&lt;hash&gt;" for any hash, counting reads.</summary>
    private sealed class CountingKeyStore : ModelRoute.Server.Storage.IAccountStore
    {
        public int Reads { get; private set; }

        public Task<ModelRoute.Server.Storage.ApiKeyLookup?> FindApiKeyAsync(string keyHash, CancellationToken cancellationToken)
        {
            Reads++;
            return Task.FromResult<ModelRoute.Server.Storage.ApiKeyLookup?>(new("key_" + keyHash, "acct_" + keyHash, null, false, false, false));
        }

        public Task<ModelRoute.Server.Storage.Account> CreateAccountAsync(string id, string? name, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.Account?> GetAccountAsync(string id, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.ApiKeyRecord> CreateApiKeyAsync(ModelRoute.Server.Storage.ApiKeyRecord key, string keyHash, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.CreditOutcome?> CreditAsync(string entryId, string accountId, long amountMicros, string? reference, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ModelRoute.Server.Storage.LedgerEntry>> ListLedgerAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ModelRoute.Server.Storage.Account>> ListAccountsAsync(string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.Account?> SetAccountDisabledAsync(string id, bool disabled, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyList<ModelRoute.Server.Storage.ApiKeyRecord>> ListApiKeysAsync(string accountId, string? before, int limit, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.ApiKeyRecord?> RevokeApiKeyAsync(string accountId, string keyId, DateTimeOffset now, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task RecordKeyUsesAsync(IReadOnlyCollection<KeyValuePair<string, DateTimeOffset>> uses, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<ModelRoute.Server.Storage.Account?> SetMaxConcurrencyAsync(string id, int? maxConcurrency, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IReadOnlyDictionary<string, int>> ListConcurrencyCapsAsync(CancellationToken cancellationToken) => throw new NotSupportedException();
    }
}
