using Dapper;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Server.Webhooks;
using Npgsql;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// PostgreSQL records the delivery attempts that arrive together as one statement. Whatever the mix, the outcome must be
/// the one of recording them one at a time in the same order: the deliveries, their attempts, and the endpoints' health.
/// </summary>
public sealed class PostgresAttemptGroupTests
{
    // Each attempt: "outcome:delivery:endpoint", in the order the worker finished them. Outcomes: ok (200), retry (500,
    // attempted again later), final (500, no attempt left), gone (410: disables the endpoint), lost (200, but another
    // node holds the lease). Endpoint e1 starts failing since long ago, e2 healthy, "-" is a submission's webhook_url.
    public static TheoryData<string> Groups => new()
    {
        "ok:d1:e1 ok:d2:e2 ok:d3:-",
        "ok:d1:e1 retry:d2:e1 retry:d3:e1",
        "retry:d1:e1 ok:d2:e1",
        "retry:d1:e2 final:d2:e2",
        "retry:d1:e2 ok:d2:e2 retry:d3:e2",
        "retry:d1:e1 gone:d2:e1 ok:d3:e2",
        "ok:d1:e1 ok:d1:e1 retry:d2:e2 retry:d2:e2",
        "lost:d1:e1 retry:d2:e2 final:d3:-",
    };

    [Theory]
    [MemberData(nameof(Groups))]
    public async Task A_group_of_attempts_ends_as_the_same_attempts_recorded_one_at_a_time(string attempts)
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("attempts", async connection =>
        {
            await using var db = new PostgresDatabase(connection.ConnectionString);
            var ids = new IdGenerator(TimeProvider.System);

            await SeedAsync(connection, "alone", attempts);
            var alone = new List<bool>();
            foreach (var attempt in Parse("alone", attempts))
            {
                alone.AddRange(await PostgresWebhookOutbox.RecordAttemptsAsync(db, ids, [attempt]));
            }

            await SeedAsync(connection, "group", attempts);
            var together = await PostgresWebhookOutbox.RecordAttemptsAsync(db, ids, Parse("group", attempts));

            together.ShouldBe(alone, "which attempts were recorded");
            (await StateAsync(connection, "group")).ShouldBe(await StateAsync(connection, "alone"));
        });
    }

    [Theory]
    [InlineData("ok:d1:e1 ok:d2:-")]
    [InlineData("ok:d1:e1 retry:d2:e2 gone:d3:e1")]
    public async Task Attempts_commit_without_waiting_for_the_flush_and_the_connection_goes_back_durable(string attempts)
    {
        // Delivery is at least once, so an attempt's record may be lost in a database crash (its delivery is still
        // leased and is sent again); nothing else may: the setting is the transaction's own, on a pooled connection
        // that is not reset when it goes back.
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("attemptflush", async connection =>
        {
            // The test cluster itself runs with synchronous_commit off; this database's connections start durable.
            await connection.ExecuteAsync(
                """
                DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = on', current_database()); END $$;
                CREATE TABLE commit_settings (setting TEXT NOT NULL);
                CREATE FUNCTION note_commit_setting() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN INSERT INTO commit_settings VALUES (current_setting('synchronous_commit')); RETURN NULL; END $$;
                CREATE TRIGGER note_commit_setting AFTER INSERT ON webhook_attempts FOR EACH STATEMENT EXECUTE FUNCTION note_commit_setting();
                """);
            await SeedAsync(connection, "flush", attempts);
            await using var db = new PostgresDatabase(connection.ConnectionString + ";Maximum Pool Size=1");

            (await PostgresWebhookOutbox.RecordAttemptsAsync(db, new IdGenerator(TimeProvider.System), Parse("flush", attempts))).ShouldAllBe(recorded => recorded);

            (await connection.QueryAsync<string>("SELECT setting FROM commit_settings")).ShouldBe(["off"]);
            (await db.WriteStatementAsync(c => c.QuerySingleAsync<string>("SHOW synchronous_commit"), CancellationToken.None))
                .ShouldBe("on", "the next write on the same pooled connection commits durably");
        });
    }

    [Fact]
    public async Task One_read_gives_each_delivery_its_endpoints_current_secrets_and_none_for_a_disabled_endpoint()
    {
        var cluster = await PostgresCluster.SharedAsync();
        await cluster.WithMigratedDatabaseAsync("secrets", async connection =>
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO webhook_endpoints (id, account_id, url, events, secret, previous_secret, previous_secret_expires_at, status, created_at) VALUES
                ('whe_a', 'acct', 'https://a.example', '[]', 'whsec_a', NULL, NULL, 'enabled', 0),
                ('whe_b', 'acct', 'https://b.example', '[]', 'whsec_b2', 'whsec_b1', 5000, 'enabled', 0),
                ('whe_c', 'acct', 'https://c.example', '[]', 'whsec_c', NULL, NULL, 'disabled', 0)
                """);
            await using var db = new PostgresDatabase(connection.ConnectionString);

            var read = await PostgresWebhookOutbox.ReadSecretsAsync(db, ["whe_b", "whe_a", "whe_c", "whe_missing", "whe_a"]);

            read.Select(s => s?.Secret).ShouldBe(["whsec_b2", "whsec_a", null, null, "whsec_a"]);
            read[0]!.PreviousSecret.ShouldBe("whsec_b1");
            read[0]!.PreviousSecretExpiresAt.ShouldBe(5000);

            // Through the store, many deliveries asking at once: each gets its own endpoint's secrets.
            var store = new WebhookStore(
                new PostgresDialect(db),
                new PostgresWebhookOutbox(db, new IdGenerator(TimeProvider.System)));
            var endpoints = Enumerable.Range(0, 60).Select(i => new[] { "whe_a", "whe_b", "whe_c" }[i % 3]).ToList();
            var secrets = await Task.WhenAll(endpoints.Select(e => store.SigningSecretsAsync(
                new WebhookDelivery(
                    "whd_" + e, "evt", "acct", "exe", e, "https://x.example", "execution.completed", "{}", DeliveryStatuses.Pending, 0,
                    DateTimeOffset.UnixEpoch, null, null, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, null),
                DateTimeOffset.FromUnixTimeMilliseconds(4000),
                CancellationToken.None)));
            for (var i = 0; i < endpoints.Count; i++)
            {
                secrets[i].ShouldBe(endpoints[i] switch
                {
                    "whe_a" => ["whsec_a"],
                    "whe_b" => ["whsec_b2", "whsec_b1"],
                    _ => null,
                });
            }
        });
    }

    private static List<AttemptResult> Parse(string prefix, string attempts) =>
        [.. attempts.Split(' ').Select((attempt, i) =>
        {
            var (outcome, delivery) = (attempt.Split(':')[0], attempt.Split(':')[1]);
            var at = DateTimeOffset.FromUnixTimeMilliseconds(100_000 + (i * 10));
            return outcome switch
            {
                "ok" => new AttemptResult($"{prefix}_{delivery}", "node", at, 200, 5, null, true, null, null),
                "lost" => new AttemptResult($"{prefix}_{delivery}", "other-node", at, 200, 5, null, true, null, null),
                "retry" => new AttemptResult($"{prefix}_{delivery}", "node", at, 500, 5, "The receiver answered 500.", false, at.AddMinutes(1), null),
                "final" => new AttemptResult($"{prefix}_{delivery}", "node", at, 500, 5, "The receiver answered 500.", false, null, null),
                "gone" => new AttemptResult($"{prefix}_{delivery}", "node", at, 410, 5, "The receiver answered 410.", false, null, "The receiver answered 410 Gone."),
                _ => throw new ArgumentException(outcome),
            };
        })];

    /// <summary>Two endpoints, each attempt's delivery (leased to "node"), and one more pending delivery per endpoint that no attempt touches.</summary>
    private static async Task SeedAsync(NpgsqlConnection connection, string prefix, string attempts)
    {
        await connection.ExecuteAsync(
            """
            INSERT INTO webhook_endpoints (id, account_id, url, events, secret, status, failing_since, created_at) VALUES
            (@prefix || '_e1', 'acct', 'https://e1.example', '[]', 'whsec_1', 'enabled', 1000, 0),
            (@prefix || '_e2', 'acct', 'https://e2.example', '[]', 'whsec_2', 'enabled', NULL, 0)
            """,
            new { prefix });
        var deliveries = attempts.Split(' ').Select(a => (Id: a.Split(':')[1], Endpoint: a.Split(':')[2])).Distinct()
            .Concat([("idle1", "e1"), ("idle2", "e2")]);
        foreach (var (id, endpoint) in deliveries)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO webhook_deliveries (id, event_id, account_id, execution_id, endpoint_id, url, event_type, payload, status,
                    next_attempt_at, created_at, updated_at, lease_owner, lease_expires_at)
                VALUES (@Id, 'evt', 'acct', 'exe', @Endpoint, 'https://x.example', 'execution.completed', '{}', 'pending', 0, 0, 0,
                    CASE WHEN @Idle THEN NULL ELSE 'node' END, CASE WHEN @Idle THEN NULL ELSE 900000 END)
                """,
                new { Id = $"{prefix}_{id}", Endpoint = endpoint == "-" ? null : $"{prefix}_{endpoint}", Idle = id.StartsWith("idle", StringComparison.Ordinal) });
        }
    }

    /// <summary>Every column an attempt may change, with the prefix taken off the ids.</summary>
    private static async Task<string> StateAsync(NpgsqlConnection connection, string prefix)
    {
        var endpoints = await connection.QueryAsync<(string Id, string Status, string? DisabledReason, long? FailingSince)>(
            "SELECT substr(id, length(@prefix) + 2), status, disabled_reason, failing_since FROM webhook_endpoints WHERE id LIKE @prefix || '\\_%' ORDER BY id",
            new { prefix });
        var deliveries = await connection.QueryAsync<(string Id, string Status, long Attempts, long NextAttemptAt, long? LastStatusCode, string? LastError, long? CompletedAt, string? LeaseOwner, long Recorded)>(
            """
            SELECT substr(d.id, length(@prefix) + 2), d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.completed_at, d.lease_owner,
                (SELECT count(*) FROM webhook_attempts a WHERE a.delivery_id = d.id)
            FROM webhook_deliveries d WHERE d.id LIKE @prefix || '\_%' ORDER BY d.id
            """,
            new { prefix });
        return string.Join('\n', endpoints.Select(e => e.ToString()).Concat(deliveries.Select(d => d.ToString())));
    }
}
