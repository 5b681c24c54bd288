namespace ModelRoute.Server.Hosting;

/// <summary>The <c>ModelRoute</c> configuration section (docs/configuration.md). Names are the contract.</summary>
public sealed class ModelRouteOptions
{
    public const string SectionName = "ModelRoute";

    /// <summary>Operator token for <c>/v1/admin</c>; admin endpoints are disabled when unset.</summary>
    public string? AdminKey { get; set; }

    /// <summary>Holds the SQLite file (unless the connection string says otherwise) and artifacts.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>
    /// The address providers use to call back (e.g. <c>https://gateway.example.com</c>). When unset the
    /// first address the server listens on is used, which suits a single host.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    public StoreOptions Store { get; set; } = new();

    /// <summary>How long an ended execution (and so its idempotency key and artifacts) is kept.</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    public Dictionary<string, ProviderOptions> Providers { get; set; } = new(StringComparer.Ordinal);

    public Dictionary<string, ModelOptions> Models { get; set; } = new(StringComparer.Ordinal);

    public WebhookOptions Webhooks { get; set; } = new();

    public PollingOptions Polling { get; set; } = new();

    public DispatchOptions Dispatch { get; set; } = new();

    public LimitsOptions Limits { get; set; } = new();

    public ArtifactOptions Artifacts { get; set; } = new();

    public MetricsOptions Metrics { get; set; } = new();
}

/// <summary><c>GET /metrics</c> and the gauges read from the store (docs/observability.md).</summary>
public sealed class MetricsOptions
{
    /// <summary>When set, <c>GET /metrics</c> answers only <c>Authorization: Bearer</c> this token; open when unset.</summary>
    public string? Token { get; set; }

    /// <summary>How often the store is counted for the gauges (executions by status, outbox backlog, money held).</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(15);
}

/// <summary>How provider outputs given as URLs are copied into the artifact store (docs/artifacts.md).</summary>
public sealed class ArtifactOptions
{
    /// <summary>One fetch of one output, redirects included, must finish within this.</summary>
    public TimeSpan FetchTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Plain-http output URLs; unset means as <see cref="WebhookOptions.AllowHttp"/>.</summary>
    public bool? AllowHttp { get; set; }

    /// <summary>Output URLs on loopback and private networks; unset means as <see cref="WebhookOptions.AllowPrivateNetworks"/>.</summary>
    public bool? AllowPrivateNetworks { get; set; }

    /// <summary>
    /// Hosts (<c>name</c> or <c>name:port</c>) the operator trusts to serve outputs even on a private address, beside
    /// each provider's own BaseUrl host and port, which is always trusted for that provider's outputs.
    /// </summary>
    public List<string> TrustedHosts { get; set; } = [];

    /// <summary>The wait before each retry of a failed copy; the last one repeats until the execution's deadline.</summary>
    public List<TimeSpan> RetrySchedule { get; set; } = [];

    public static readonly IReadOnlyList<TimeSpan> DefaultSchedule =
        [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(2)];

    public IReadOnlyList<TimeSpan> Schedule => RetrySchedule.Count > 0 ? RetrySchedule : DefaultSchedule;

    /// <summary>Where new artifacts are kept: <c>file</c> (under DataDirectory, default) or <c>s3</c> (docs/artifacts.md#s3-compatible-storage).</summary>
    public string Kind { get; set; } = ArtifactStoreKinds.File;

    /// <summary>S3: the endpoint of an S3-compatible store (MinIO, R2, Ceph); unset means AWS itself, by <see cref="Region"/>.</summary>
    public string? ServiceUrl { get; set; }

    public string? Bucket { get; set; }

    /// <summary>S3: the region requests are signed for (AWS: the bucket's region; most others accept <c>us-east-1</c>).</summary>
    public string? Region { get; set; }

    /// <summary>S3: with <see cref="SecretAccessKey"/>; both unset means the SDK's usual credential chain (environment, profile, instance role).</summary>
    public string? AccessKeyId { get; set; }

    public string? SecretAccessKey { get; set; }

    /// <summary>S3: <c>{ServiceUrl}/{Bucket}/{key}</c> addresses instead of <c>{Bucket}.{host}</c> (MinIO and most self-hosted stores).</summary>
    public bool ForcePathStyle { get; set; }

    /// <summary>S3: put before every object key, e.g. <c>modelroute/</c>, to share a bucket.</summary>
    public string KeyPrefix { get; set; } = "";

    /// <summary>S3: downloads answer a redirect to a short-lived presigned URL instead of streaming through the gateway.</summary>
    public bool RedirectToPresigned { get; set; }

    /// <summary>How long a presigned download URL stays valid.</summary>
    public TimeSpan PresignedLifetime { get; set; } = TimeSpan.FromMinutes(5);
}

public static class ArtifactStoreKinds
{
    public const string File = "file";
    public const string S3 = "s3";
}

public static class StoreKinds
{
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";
}

public sealed class StoreOptions
{
    /// <summary><c>sqlite</c> (embedded, default) or <c>postgres</c>.</summary>
    public string Kind { get; set; } = "sqlite";

    /// <summary>
    /// SQLite: when empty, <c>Data Source={DataDirectory}/modelroute.db</c>. PostgreSQL (required):
    /// an Npgsql connection string, e.g. <c>Host=db;Username=modelroute;Password=…;Database=modelroute</c>.
    /// </summary>
    public string? ConnectionString { get; set; }
}

public sealed class ProviderOptions
{
    public string Kind { get; set; } = "";
    public string? BaseUrl { get; set; }
    public string? ApiKey { get; set; }
    public int MaxConcurrency { get; set; } = 64;
    public TimeSpan Timeout { get; set; } = TimeSpan.FromMinutes(2);
    public CircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>The provider's webhook signing secret (Replicate: the <c>whsec_…</c> of <c>GET /v1/webhooks/default/secret</c>); unset: only the callback URL's token is checked.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>fal only: where fal publishes its webhook signing keys (a JWKS); unset: fal's own address.</summary>
    public string? WebhookJwksUrl { get; set; }
}

/// <summary>When a provider is skipped for failing (docs/api.md#providers-and-routing): Polly's advanced circuit breaker.</summary>
public sealed class CircuitBreakerOptions
{
    /// <summary>The share of failed calls in the sampling window that opens the circuit (a ratio, not money).</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>Calls in the window before the ratio counts.</summary>
    public int MinimumThroughput { get; set; } = 10;

    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit skips the provider before one trial call.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class ModelOptions
{
    public string Modality { get; set; } = "";
    public Dictionary<string, string> Pricing { get; set; } = new(StringComparer.OrdinalIgnoreCase);
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromMinutes(10);
    public TimeSpan MaxTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Output tokens assumed for the hold when a text request gives no <c>max_tokens</c>.</summary>
    public int DefaultMaxOutputTokens { get; set; } = 1024;

    /// <summary>Seconds assumed for the hold when a video or audio request gives no duration.</summary>
    public int DefaultDurationSeconds { get; set; } = 5;

    public List<RouteOptions> Routes { get; set; } = [];
}

public sealed class RouteOptions
{
    public string Provider { get; set; } = "";
    public string Model { get; set; } = "";
    public int Priority { get; set; }
    public int Weight { get; set; } = 1;
}

public sealed class WebhookOptions
{
    /// <summary>The delay before each attempt, the first included (docs/api.md#webhooks default when empty).</summary>
    public List<TimeSpan> RetrySchedule { get; set; } = [];

    /// <summary>A delivery succeeds only on a 2xx within this time.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Allow webhook URLs on loopback and private networks (the development profile does).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>Allow plain-http webhook URLs (the development profile does); otherwise https only.</summary>
    public bool AllowHttp { get; set; }

    /// <summary>An endpoint whose every delivery has failed for this long is disabled.</summary>
    public TimeSpan DisableAfter { get; set; } = TimeSpan.FromDays(5);

    /// <summary>How long a rotated-out secret keeps signing beside the new one.</summary>
    public TimeSpan RotationOverlap { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Deliveries in flight on one node. Each one waits for its receiver and then for the commit of
    /// its attempt, so this, not CPU, caps the delivery rate when receivers are slow.
    /// </summary>
    public int MaxInFlight { get; set; } = 256;

    public static readonly IReadOnlyList<TimeSpan> DefaultSchedule =
    [
        TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(2), TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    public IReadOnlyList<TimeSpan> Schedule => RetrySchedule.Count > 0 ? RetrySchedule : DefaultSchedule;
}

public sealed class PollingOptions
{
    public int PermitsPerSecond { get; set; } = 10;
    public int Burst { get; set; } = 20;
}

public sealed class DispatchOptions
{
    /// <summary>How long a claim on an execution lasts before another worker may take it over.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often idle workers look for due work that no in-process signal announced.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Attempts in all (first try included, every route together) before a retryable failure becomes final.</summary>
    public int MaxAttempts { get; set; } = 10;

    /// <summary>Attempts on one route before failing over to the next.</summary>
    public int MaxAttemptsPerRoute { get; set; } = 3;

    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the gateway asks an async provider for a result whose callback has not come.</summary>
    public TimeSpan CallbackPollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the expiry and lease sweeper runs.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Executions in flight on one node, all providers together. Model calls are slow (seconds to
    /// minutes) and cost little while they wait, so this is generous; each provider's
    /// MaxConcurrency is what protects the provider.
    /// </summary>
    public int MaxInFlight { get; set; } = 1024;
}

public sealed class LimitsOptions
{
    public long MaxRequestBytes { get; set; } = 1024 * 1024;
    public long MaxBatchRequestBytes { get; set; } = 32 * 1024 * 1024;
    public int MaxInputBytes { get; set; } = 1024 * 1024;

    /// <summary>The largest binary output copied from a provider.</summary>
    public long MaxArtifactBytes { get; set; } = 256L * 1024 * 1024;
    public int MaxBatchSize { get; set; } = 1000;
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the account event feed stays open before the client reconnects (docs/api.md#the-account-event-feed).</summary>
    public TimeSpan EventFeedLifetime { get; set; } = TimeSpan.FromMinutes(5);
}
