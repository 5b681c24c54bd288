using ModelRoute.Server.Providers;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Hosting;

/// <summary>Checks the whole configuration at start-up so that a mistake names its setting at once.</summary>
/// <param name="environment">The host's environment, for the rules that differ in Production; none is taken as not Production.</param>
public sealed class ModelRouteOptionsValidator(IReadOnlyDictionary<string, IReadOnlySet<Modality>> modalitiesByKind, IHostEnvironment? environment = null)
    : IValidateOptions<ModelRouteOptions>
{
    /// <summary>The shortest admin key the Production environment accepts (elsewhere 16 characters).</summary>
    public const int ProductionAdminKeyLength = 32;

    private readonly IReadOnlySet<string> _kinds = modalitiesByKind.Keys.ToHashSet(StringComparer.Ordinal);

    /// <summary>Validates against the kinds whose adapters are registered, and the modalities each translates.</summary>
    [ActivatorUtilitiesConstructor]
    public ModelRouteOptionsValidator(IEnumerable<IProviderAdapterFactory> factories, IHostEnvironment environment)
        : this(factories.ToDictionary(f => f.Kind, f => f.Modalities, StringComparer.Ordinal), environment)
    {
    }

    /// <summary>Validates against <paramref name="kinds"/>, each taken to serve every modality.</summary>
    public ModelRouteOptionsValidator(IReadOnlySet<string> kinds, IHostEnvironment? environment = null)
        : this(kinds.ToDictionary(k => k, _ => ProviderKinds.AllModalities, StringComparer.Ordinal), environment)
    {
    }

    public ValidateOptionsResult Validate(string? name, ModelRouteOptions options)
    {
        var errors = new List<string>();
        AddStoreErrors(options.Store, errors);
        foreach (var (provider, p) in options.Providers)
        {
            AddProviderErrors($"ModelRoute:Providers:{provider}", p, errors);
        }

        errors.AddRange(ModelCatalog.Build(options).Errors);
        AddModalityMismatches(options, errors);
        AddDispatchErrors(options.Dispatch, errors);
        AddWebhookErrors(options.Webhooks, errors);
        AddArtifactErrors(options.Artifacts, errors);
        AddHttpErrors(options, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void AddStoreErrors(StoreOptions store, List<string> errors)
    {
        if (store.Kind is not (StoreKinds.Sqlite or StoreKinds.Postgres))
        {
            // Refuse clearly rather than fall back to SQLite: a node that meant to share a database must not run alone.
            errors.Add($"ModelRoute:Store:Kind '{store.Kind}' is not one of {StoreKinds.Sqlite}, {StoreKinds.Postgres}");
        }
        else if (store.Kind == StoreKinds.Postgres && string.IsNullOrWhiteSpace(store.ConnectionString))
        {
            errors.Add("ModelRoute:Store:ConnectionString is required when ModelRoute:Store:Kind is 'postgres'");
        }
    }

    private void AddProviderErrors(string key, ProviderOptions p, List<string> errors)
    {
        if (!_kinds.Contains(p.Kind))
        {
            errors.Add($"{key}:Kind '{p.Kind}' is not one of {string.Join(", ", _kinds.Order(StringComparer.Ordinal))}");
            return;
        }

        if (ProviderKinds.NeedsApiKey(p.Kind) && string.IsNullOrWhiteSpace(p.ApiKey))
        {
            errors.Add($"{key}:ApiKey is required for a '{p.Kind}' provider");
        }

        if (p.MaxConcurrency < 1)
        {
            errors.Add($"{key}:MaxConcurrency must be at least 1");
        }

        if (p.Timeout <= TimeSpan.Zero)
        {
            errors.Add($"{key}:Timeout must be positive");
        }

        var breaker = p.CircuitBreaker;
        if (breaker.FailureRatio is <= 0 or > 1 || breaker.MinimumThroughput < 2
            || breaker.SamplingDuration < TimeSpan.FromMilliseconds(500) || breaker.BreakDuration < TimeSpan.FromMilliseconds(500))
        {
            errors.Add($"{key}:CircuitBreaker needs FailureRatio in (0, 1], MinimumThroughput ≥ 2, SamplingDuration and BreakDuration ≥ 0.5 s");
        }

        if (p.BaseUrl is { Length: > 0 } url && !Uri.TryCreate(url, UriKind.Absolute, out _))
        {
            errors.Add($"{key}:BaseUrl '{url}' is not an absolute URL");
        }

        if (p.WebhookJwksUrl is { Length: > 0 } jwks && (!Uri.TryCreate(jwks, UriKind.Absolute, out var jwksUri) || jwksUri.Scheme is not ("https" or "http")))
        {
            errors.Add($"{key}:WebhookJwksUrl '{jwks}' is not an absolute http(s) URL");
        }
    }

    private static void AddDispatchErrors(DispatchOptions d, List<string> errors)
    {
        if (d.LeaseDuration <= TimeSpan.Zero || d.PollInterval <= TimeSpan.Zero || d.SweepInterval <= TimeSpan.Zero || d.CallbackPollInterval <= TimeSpan.Zero)
        {
            errors.Add("ModelRoute:Dispatch intervals (LeaseDuration, PollInterval, SweepInterval, CallbackPollInterval) must be positive");
        }

        if (d.MaxAttempts < 1 || d.MaxInFlight < 1 || d.MaxAttemptsPerRoute < 1)
        {
            errors.Add("ModelRoute:Dispatch:MaxAttempts, MaxAttemptsPerRoute and MaxInFlight must be at least 1");
        }
    }

    private static void AddWebhookErrors(WebhookOptions webhooks, List<string> errors)
    {
        if (webhooks.MaxInFlight < 1 || webhooks.Timeout <= TimeSpan.Zero || webhooks.DisableAfter <= TimeSpan.Zero
            || webhooks.RotationOverlap < TimeSpan.Zero || webhooks.RetrySchedule.Any(d => d < TimeSpan.Zero))
        {
            errors.Add("ModelRoute:Webhooks needs MaxInFlight ≥ 1, a positive Timeout and DisableAfter, and no negative RetrySchedule entry or RotationOverlap");
        }
    }

    private static void AddArtifactErrors(ArtifactOptions artifacts, List<string> errors)
    {
        if (artifacts.FetchTimeout <= TimeSpan.Zero || artifacts.FetchTimeout > TimeSpan.FromHours(1))
        {
            errors.Add("ModelRoute:Artifacts:FetchTimeout must be above zero and at most 01:00:00");
        }

        if (artifacts.RetrySchedule.Any(d => d < TimeSpan.Zero))
        {
            errors.Add("ModelRoute:Artifacts:RetrySchedule must have no negative entry");
        }

        foreach (var host in artifacts.TrustedHosts.Where(h => Storage.Artifacts.ArtifactUrlPolicy.ParseTrustedHost(h) is null))
        {
            errors.Add($"ModelRoute:Artifacts:TrustedHosts entry '{host}' is not 'name' or 'name:port'");
        }

        AddArtifactStoreErrors(artifacts, errors);
    }

    /// <summary>Where artifacts are kept (docs/artifacts.md#s3-compatible-storage); never echoes the secret.</summary>
    private static void AddArtifactStoreErrors(ArtifactOptions artifacts, List<string> errors)
    {
        if (artifacts.Kind is not (ArtifactStoreKinds.File or ArtifactStoreKinds.S3))
        {
            errors.Add($"ModelRoute:Artifacts:Kind '{artifacts.Kind}' is not one of {ArtifactStoreKinds.File}, {ArtifactStoreKinds.S3}");
            return;
        }

        if (artifacts.PresignedLifetime <= TimeSpan.Zero || artifacts.PresignedLifetime > TimeSpan.FromDays(7))
        {
            errors.Add("ModelRoute:Artifacts:PresignedLifetime must be above zero and at most 7.00:00:00");
        }

        if (artifacts.Kind != ArtifactStoreKinds.S3)
        {
            return;
        }

        if (string.IsNullOrWhiteSpace(artifacts.Bucket))
        {
            errors.Add("ModelRoute:Artifacts:Bucket is required when ModelRoute:Artifacts:Kind is 's3'");
        }

        if (artifacts.ServiceUrl is { } url && !(Uri.TryCreate(url, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"))
        {
            errors.Add($"ModelRoute:Artifacts:ServiceUrl '{url}' is not an absolute http or https URL");
        }
        else if (artifacts.ServiceUrl is null && string.IsNullOrWhiteSpace(artifacts.Region))
        {
            errors.Add("ModelRoute:Artifacts:Region is required when ModelRoute:Artifacts:ServiceUrl is unset (AWS S3)");
        }

        if (string.IsNullOrEmpty(artifacts.AccessKeyId) != string.IsNullOrEmpty(artifacts.SecretAccessKey))
        {
            errors.Add("ModelRoute:Artifacts:AccessKeyId and ModelRoute:Artifacts:SecretAccessKey are set together, or neither (the SDK's credential chain)");
        }

        if (artifacts.KeyPrefix.StartsWith('/') || artifacts.KeyPrefix.Contains("..", StringComparison.Ordinal))
        {
            errors.Add("ModelRoute:Artifacts:KeyPrefix must not start with '/' nor contain '..'");
        }
    }

    /// <summary>The HTTP front's settings: polling limits, the public address, retention and the admin key.</summary>
    private void AddHttpErrors(ModelRouteOptions options, List<string> errors)
    {
        if (options.Polling.PermitsPerSecond < 1 || options.Polling.Burst < 1)
        {
            errors.Add("ModelRoute:Polling:PermitsPerSecond and Burst must be at least 1");
        }

        if (options.Metrics.Token is { } token && (token.Length < 16 || token.Any(char.IsWhiteSpace)))
        {
            errors.Add("ModelRoute:Metrics:Token must be at least 16 characters with no spaces");
        }

        if (options.Metrics.SampleInterval < TimeSpan.FromSeconds(1))
        {
            errors.Add("ModelRoute:Metrics:SampleInterval must be at least 1 second");
        }

        if (options.PublicBaseUrl is { Length: > 0 } baseUrl && !Uri.TryCreate(baseUrl, UriKind.Absolute, out _))
        {
            errors.Add($"ModelRoute:PublicBaseUrl '{baseUrl}' is not an absolute URL");
        }

        if (options.Limits.EventFeedLifetime < TimeSpan.FromSeconds(1) || options.Limits.EventFeedLifetime > TimeSpan.FromHours(24))
        {
            errors.Add("ModelRoute:Limits:EventFeedLifetime must be from 1 second to 24 hours");
        }

        if (options.Retention < TimeSpan.FromMinutes(1))
        {
            errors.Add("ModelRoute:Retention must be at least one minute");
        }

        if (environment?.IsProduction() == true && options.AdminKey is { Length: > 0 and < ProductionAdminKeyLength })
        {
            // A production operator token is guessed offline from leaks and logs; docs/deploy.md#the-production-environment.
            errors.Add($"ModelRoute:AdminKey must be at least {ProductionAdminKeyLength} characters in the Production environment");
        }
        else if (options.AdminKey is { Length: > 0 and < 16 })
        {
            errors.Add("ModelRoute:AdminKey must be at least 16 characters");
        }
    }

    /// <summary>
    /// A route to a provider whose adapter cannot translate the model's modality (an image model routed to an
    /// Anthropic provider) would fail every execution; it is refused here instead (docs/providers.md).
    /// </summary>
    private void AddModalityMismatches(ModelRouteOptions options, List<string> errors)
    {
        foreach (var (name, model) in options.Models)
        {
            if (!Enum.TryParse<Modality>(model.Modality, ignoreCase: true, out var modality) || !Enum.IsDefined(modality))
            {
                continue; // Reported by the catalog.
            }

            for (var i = 0; i < model.Routes.Count; i++)
            {
                var provider = model.Routes[i].Provider;
                if (options.Providers.TryGetValue(provider, out var p) && modalitiesByKind.TryGetValue(p.Kind, out var served) && !served.Contains(modality))
                {
                    var wire = modality.ToString().ToLowerInvariant();
                    var list = string.Join(", ", served.Order().Select(m => m.ToString().ToLowerInvariant()));
                    errors.Add($"ModelRoute:Models:{name}:Routes:{i}:Provider '{provider}' is a '{p.Kind}' provider, which cannot serve the {wire} model '{name}' (it serves {list})");
                }
            }
        }
    }
}
