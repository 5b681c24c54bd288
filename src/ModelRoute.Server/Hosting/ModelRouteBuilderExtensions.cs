using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Configuration.Memory;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Console;
using ModelRoute.Server.Http;
using ModelRoute.Server.Http.OpenApi;
using ModelRoute.Server.Mcp;
using ModelRoute.Server.Operations;
using ModelRoute.Server.Providers;
using ModelRoute.Server.Providers.Simulator;
using ModelRoute.Server.Routing;
using ModelRoute.Server.Storage;
using ModelRoute.Server.Storage.Artifacts;
using ModelRoute.Server.Storage.Postgres;
using ModelRoute.Server.Storage.Sqlite;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Hosting;

public static class ModelRouteBuilderExtensions
{
    /// <summary>Registers the whole gateway: configuration, store, providers, workers and HTTP pieces.</summary>
    public static WebApplicationBuilder AddModelRoute(this WebApplicationBuilder builder)
    {
        // The simulator models are defaults beneath every other source, so the gateway works out of the box.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = BuiltInDefaults });

        var services = builder.Services;
        services.AddOptions<ModelRouteOptions>().Bind(builder.Configuration.GetSection(ModelRouteOptions.SectionName));
        services.AddSingleton<IValidateOptions<ModelRouteOptions>, ModelRouteOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IdGenerator>();
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<ProviderHealth>();
        services.AddSingleton<ExecutionChanges>();
        services.AddSingleton<NodeIdentity>();
        services.AddSingleton<WebhookHandoff>();
        services.AddSingleton<DispatchHandoff>();
        services.AddSingleton<InFlightExecutions>();
        services.AddSingleton<AccountConcurrencyCaps>();
        services.AddSingleton(sp => ModelCatalog.Build(sp.GetRequiredService<IOptions<ModelRouteOptions>>().Value).Catalog!);

        AddStore(services);
        AddProvidersAndDispatch(services);
        AddWebhookDelivery(services);
        AddHttpPieces(builder);
        builder.AddModelRouteTelemetry();
        // The gauges of docs/observability.md: created at start by the host, read at each scrape.
        services.AddSingleton<ProviderGauges>();
        services.AddHostedService(sp => sp.GetRequiredService<ProviderGauges>());
        services.AddSingleton<StoreGauges>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreGauges>());
        services.AddModelRouteMcp();
        return builder;
    }

    /// <summary>The store: embedded SQLite, or PostgreSQL for several nodes (docs/architecture.md), and what commits through it.</summary>
    private static void AddStore(IServiceCollection services)
    {
        // Storage: the embedded SQLite store, or PostgreSQL for several nodes (Store:Kind). The choice is
        // read from the bound options when first resolved, so configuration added after this call counts.
        services.AddSingleton(sp => new SqliteDatabase(ConnectionString(sp.GetRequiredService<IOptions<ModelRouteOptions>>().Value)));
        services.AddSingleton(sp => new PostgresDatabase(sp.GetRequiredService<IOptions<ModelRouteOptions>>().Value.Store.ConnectionString!));
        services.AddSingleton<PostgresNotifier>();
        services.AddSingleton<IStoreMigrations>(sp => UsesPostgres(sp) ? sp.GetRequiredService<PostgresDatabase>() : sp.GetRequiredService<SqliteDatabase>());
        services.AddSingleton<ISqlExecutionStore>(sp => UsesPostgres(sp)
            ? ActivatorUtilities.CreateInstance<PostgresExecutionStore>(sp)
            : ActivatorUtilities.CreateInstance<SqliteExecutionStore>(sp));
        services.AddSingleton<ISqlDialect>(sp => UsesPostgres(sp)
            ? ActivatorUtilities.CreateInstance<PostgresDialect>(sp)
            : ActivatorUtilities.CreateInstance<SqliteDialect>(sp));
        services.AddSingleton<IAccountStore>(sp => ActivatorUtilities.CreateInstance<AccountStore>(sp));
        services.AddSingleton<IUsageStore>(sp => ActivatorUtilities.CreateInstance<UsageStore>(sp));
        services.AddSingleton<IChangeBroadcast>(sp => UsesPostgres(sp) ? sp.GetRequiredService<PostgresNotifier>() : NoChangeBroadcast.Instance);
        services.AddSingleton<IExecutionStore>(sp => ActivatorUtilities.CreateInstance<ExecutionCommits>(sp));
        services.AddSingleton<IStoreHealth>(sp => UsesPostgres(sp)
            ? new PostgresStoreHealth(sp.GetRequiredService<PostgresDatabase>())
            : new SqliteStoreHealth(sp.GetRequiredService<SqliteDatabase>()));
        services.AddSingleton<StoreAvailability>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreAvailability>());
        services.AddSingleton<IWebhookOutbox>(sp => UsesPostgres(sp)
            ? ActivatorUtilities.CreateInstance<PostgresWebhookOutbox>(sp)
            : ActivatorUtilities.CreateInstance<SqliteWebhookOutbox>(sp));
        services.AddSingleton<IWebhookStore>(sp => ActivatorUtilities.CreateInstance<WebhookStore>(sp));
        services.AddSingleton<IOperationalCounts, OperationalCountsStore>();

        // Migrations run first among the hosted services; with PostgreSQL, the listener hears other nodes' changes.
        services.AddHostedService<StoreMigrator>();
        services.AddSingleton<IHostedService>(sp => UsesPostgres(sp)
            ? ActivatorUtilities.CreateInstance<PostgresNotificationListener>(sp)
            : new NoStoreListener());
        services.AddSingleton<ArtifactStores>();
        services.AddSingleton<IArtifactStore>(sp => sp.GetRequiredService<ArtifactStores>());
        services.AddSingleton<ArtifactStoreCheck>();
        services.AddSingleton<ArtifactMoves>();
        services.AddHostedService(sp => sp.GetRequiredService<ArtifactStoreCheck>());
    }

    /// <summary>The provider adapters, routing, artifact copies and the dispatcher.</summary>
    private static void AddProvidersAndDispatch(IServiceCollection services)
    {
        // Providers and dispatch.
        services.AddHttpClient(nameof(SimulatorAdapter));
        services.AddSingleton<IProviderInputValidator, SimulateValidator>(); // the simulator checks its own input.simulate
        foreach (var factory in ProviderKinds.FactoryTypes())
        {
            services.AddSingleton(typeof(IProviderAdapterFactory), factory);
        }

        services.AddSingleton<ProviderRegistry>();
        services.AddSingleton<ProviderCallbacks>();
        services.AddSingleton<ProviderCancellation>();
        services.AddSingleton<ExecutionOutcomes>();
        services.AddSingleton<RoutePlanner>();
        services.AddSingleton<ArtifactCopies>();
        services.AddSingleton<ArtifactDownloader>();
        services.AddSingleton<ArtifactUrlPolicy>();
        // Output URLs under the webhook network policy, checked again at connect time; trusted hosts may be private (docs/artifacts.md).
        services.AddHttpClient(ArtifactDownloader.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => ArtifactDownloader.CreateHandler(sp.GetRequiredService<ArtifactUrlPolicy>().MayConnect, sp.GetRequiredService<IHostResolver>()))
            .ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddHttpClient(ArtifactDownloader.TrustedHttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => ArtifactDownloader.CreateHandler(_ => true, sp.GetRequiredService<IHostResolver>()))
            .ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddSingleton<SubmissionValidator>();
        services.AddSingleton<ExecutionSubmitter>();
        services.AddSingleton<SubmissionLoad>();
        services.AddSingleton<SingleSubmission>();
        services.AddSingleton<BatchSubmission>();
        services.AddSingleton<ExecutionCancellation>();
        services.AddSingleton<ExecutionClaims>();
        services.AddSingleton<ProviderAttempt>();
        services.AddSingleton<LeasedExecutionRunner>();
        services.AddSingleton<DispatchUpkeep>();
        services.AddHostedService<Dispatcher>();
        services.AddHostedService<ExecutionSweeper>();
    }

    /// <summary>The webhook network policy and the delivery worker.</summary>
    private static void AddWebhookDelivery(IServiceCollection services)
    {
        // Webhooks: the outbox store, the URL policy (checked again at connect time) and the delivery worker.
        services.AddSingleton<IHostResolver, DnsHostResolver>();
        services.AddSingleton<WebhookUrlPolicy>();
        services.AddHttpClient(WebhookDeliveryWorker.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp => WebhookDeliveryWorker.CreateHandler(sp.GetRequiredService<WebhookUrlPolicy>(), sp.GetRequiredService<IHostResolver>()))
            .ConfigureHttpClient(c => c.Timeout = Timeout.InfiniteTimeSpan);
        services.AddHostedService<WebhookDeliveryWorker>();
    }

    /// <summary>Authentication, rate limits, JSON, problems, OpenAPI and Kestrel limits.</summary>
    private static void AddHttpPieces(WebApplicationBuilder builder)
    {
        var services = builder.Services;
        // HTTP: auth, rate limits, JSON, problems, OpenAPI.
        // Keys are cached for a minute on one node; with other nodes, for a second behind their notifications (docs/tenancy.md).
        services.AddSingleton(sp => new ApiKeyCache(
            sp.GetRequiredService<IAccountStore>(), sp.GetRequiredService<TimeProvider>(), UsesPostgres(sp) ? ApiKeyCache.SharedLifetime : ApiKeyCache.Lifetime));
        services.AddSingleton<ApiKeyUsage>();
        services.AddHostedService(sp => sp.GetRequiredService<ApiKeyUsage>());
        services.AddAuthentication(BearerAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(Policies.Account, p => p.RequireClaim(Claims.AccountIdType))
            .AddPolicy(Policies.Admin, p => p.RequireRole(Claims.AdminRole));
        services.AddRateLimiter(ConfigureRateLimits);
        services.ConfigureHttpJsonOptions(o => ApiJson.Configure(o.SerializerOptions));
        services.AddExceptionHandler<StoreUnavailableHandler>();
        services.AddProblemDetails(o => o.CustomizeProblemDetails = context =>
        {
            var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
            context.ProblemDetails.Extensions.TryAdd("code", Problem.CodeFor(status));
            Problem.NameTrace(context.ProblemDetails);
            if (status >= 500)
            {
                context.ProblemDetails.Detail = "An unexpected error occurred; it has been logged.";
            }
        });
        services.AddExceptionHandler<BadRequestExceptionHandler>();
        services.AddModelRouteOpenApi();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = 64 * 1024 * 1024;
            k.ConfigureEndpointDefaults(l => l.Use(ServerRejectionProblems.Wrap));
        });
    }

    /// <summary>
    /// Reads and validates the configuration now, so that a mistake stops the start with one line
    /// naming the setting instead of a stack trace at the first request.
    /// </summary>
    public static bool TryValidateModelRouteConfiguration(this WebApplication app, TextWriter errors)
    {
        try
        {
            BindStrictly(app.Configuration.GetSection(ModelRouteOptions.SectionName));
            // Reading the options runs ModelRouteOptionsValidator: every rule, the Production ones too, in one report.
            _ = app.Services.GetRequiredService<IOptions<ModelRouteOptions>>().Value;

            if (app.Services.GetRequiredService<ArtifactStoreCheck>().ProblemAsync(CancellationToken.None).GetAwaiter().GetResult() is { } problem)
            {
                errors.WriteLine($"modelroute: artifact store error: {problem}");
                return false;
            }

            return true;
        }
        catch (OptionsValidationException ex)
        {
            errors.WriteLine($"modelroute: configuration error: {string.Join("; ", ex.Failures)}");
        }
        catch (InvalidOperationException ex)
        {
            // The binder's message names the key and the value it could not convert.
            errors.WriteLine($"modelroute: configuration error: {ex.Message}");
        }

        return false;
    }

    /// <summary>
    /// The binder silently drops a dictionary or list entry it cannot convert (a provider with
    /// <c>MaxConcurrency=lots</c> would just vanish), so each entry is bound on its own, strictly.
    /// </summary>
    private static void BindStrictly(IConfigurationSection section)
    {
        static void Bind<T>(IConfigurationSection s)
        {
            try
            {
                s.Get<T>(b => b.ErrorOnUnknownConfiguration = true);
            }
            catch (InvalidOperationException ex) when (!ex.Message.Contains(s.Path, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"{s.Path}: {ex.Message}", ex);
            }
        }

        foreach (var provider in section.GetSection("Providers").GetChildren())
        {
            Bind<ProviderOptions>(provider);
        }

        foreach (var model in section.GetSection("Models").GetChildren())
        {
            foreach (var route in model.GetSection("Routes").GetChildren())
            {
                Bind<RouteOptions>(route);
            }

            Bind<ModelOptions>(model);
        }

        foreach (var delay in section.GetSection("Webhooks:RetrySchedule").GetChildren())
        {
            Bind<TimeSpan>(delay);
        }

        // Last, so that a bad entry above is reported by its own path rather than as a failure of the whole.
        Bind<ModelRouteOptions>(section);
    }

    public static WebApplication MapModelRoute(this WebApplication app)
    {
        app.Use(ServerRejectionProblems.MarkRequestAsync);
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();

        app.MapModelRouteApiReference();
        app.MapOperationsEndpoints();
        app.MapConsoleEndpoints();
        app.MapModelRouteMcp();

        var v1 = app.MapGroup("/v1");
        v1.MapProviderCallbacks();

        var account = v1.MapGroup("").RequireAuthorization(Policies.Account);
        ((IEndpointConventionBuilder)account).Add(LimitEveryRead);
        account.MapExecutionEndpoints();
        account.MapBalanceEndpoints();
        account.MapApiKeyEndpoints();
        account.MapModelEndpoints();
        account.MapWebhookEndpoints();
        account.MapUsageEndpoints();

        var admin = v1.MapGroup("/admin").RequireAuthorization(Policies.Admin).WithTags("Admin");
        admin.MapAdminEndpoints();
        admin.MapAccountLimitEndpoints();
        admin.MapAdminUsageEndpoints();
        admin.MapOverviewEndpoints();
        admin.MapArtifactMoveEndpoints();
        return app;
    }

    /// <summary>
    /// Every GET an account's key makes (executions, events, artifacts, deliveries, endpoints, balance,
    /// ledger, models) draws on that key's polling bucket, so no read can be polled unlimited (docs/api.md#errors-you-will-meet).
    /// </summary>
    private static void LimitEveryRead(EndpointBuilder endpoint)
    {
        if (endpoint.Metadata.OfType<Microsoft.AspNetCore.Routing.HttpMethodMetadata>().Any(m => m.HttpMethods.Contains(HttpMethods.Get)))
        {
            endpoint.Metadata.Add(new EnableRateLimitingAttribute(ExecutionEndpoints.PollingPolicy));
        }
    }

    private static void ConfigureRateLimits(RateLimiterOptions limiter)
    {
        limiter.AddPolicy(ExecutionEndpoints.PollingPolicy, context =>
        {
            var polling = context.RequestServices.GetRequiredService<IOptions<ModelRouteOptions>>().Value.Polling;
            var time = context.RequestServices.GetRequiredService<TimeProvider>();
            return RateLimitPartition.Get(context.User.ApiKeyId(), _ => new PollingTokenBucket(polling.Burst, polling.PermitsPerSecond, time));
        });
        limiter.OnRejected = (context, _) =>
        {
            var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
            context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return new ValueTask(new Problem(429, ErrorCodes.RateLimited, $"Polling is limited per API key; retry after {retryAfter} s, or use ?wait= or the events stream.")
                .WriteAsync(context.HttpContext));
        };
    }

    private static bool UsesPostgres(IServiceProvider sp) =>
        sp.GetRequiredService<IOptions<ModelRouteOptions>>().Value.Store.Kind == StoreKinds.Postgres;

    private static string ConnectionString(ModelRouteOptions options) =>
        string.IsNullOrWhiteSpace(options.Store.ConnectionString)
            ? $"Data Source={Path.Combine(options.DataDirectory, "modelroute.db")}"
            : options.Store.ConnectionString;

    private static readonly Dictionary<string, string?> BuiltInDefaults = new()
    {
        ["Logging:LogLevel:Default"] = "Information",
        ["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning",
        // HttpClient writes four lines per request at Information (two stack traces per failed one); a
        // webhook receiver that is down would fill the disk. Failed deliveries log one line of their own.
        ["Logging:LogLevel:System.Net.Http.HttpClient"] = "Warning",
        ["Logging:LogLevel:Microsoft.Extensions.Http"] = "Warning",
        ["ModelRoute:Providers:sim:Kind"] = "simulator",
        ["ModelRoute:Providers:sim:MaxConcurrency"] = "1024",
        ["ModelRoute:Providers:sim:Timeout"] = "00:01:00",
        ["ModelRoute:Models:sim/text:Modality"] = "text",
        ["ModelRoute:Models:sim/text:Pricing:InputPerMTok"] = "1.00",
        ["ModelRoute:Models:sim/text:Pricing:OutputPerMTok"] = "2.00",
        ["ModelRoute:Models:sim/text:DefaultTimeout"] = "00:05:00",
        ["ModelRoute:Models:sim/text:MaxTimeout"] = "01:00:00",
        ["ModelRoute:Models:sim/text:Routes:0:Provider"] = "sim",
        ["ModelRoute:Models:sim/text:Routes:0:Model"] = "text",
        ["ModelRoute:Models:sim/image:Modality"] = "image",
        ["ModelRoute:Models:sim/image:Pricing:PerImage"] = "0.02",
        ["ModelRoute:Models:sim/image:DefaultTimeout"] = "00:05:00",
        ["ModelRoute:Models:sim/image:MaxTimeout"] = "01:00:00",
        ["ModelRoute:Models:sim/image:Routes:0:Provider"] = "sim",
        ["ModelRoute:Models:sim/image:Routes:0:Model"] = "image",
        ["ModelRoute:Models:sim/video:Modality"] = "video",
        ["ModelRoute:Models:sim/video:Pricing:PerSecond"] = "0.05",
        ["ModelRoute:Models:sim/video:DefaultTimeout"] = "00:10:00",
        ["ModelRoute:Models:sim/video:MaxTimeout"] = "01:00:00",
        ["ModelRoute:Models:sim/video:Routes:0:Provider"] = "sim",
        ["ModelRoute:Models:sim/video:Routes:0:Model"] = "video",
    };
}

public static class Policies
{
    public const string Account = "account";
    public const string Admin = "admin";
}

/// <summary>Applies the chosen store's schema migrations before any worker starts.</summary>
public sealed partial class StoreMigrator(IStoreMigrations migrations, TimeProvider time, ILogger<StoreMigrator> logger) : IHostedService
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan Pause = TimeSpan.FromSeconds(2);

    /// <summary>Migrates, waiting a while for a database that is still starting (nodes and databases often start together).</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var giveUpAt = time.GetUtcNow() + Patience;
        while (true)
        {
            try
            {
                await migrations.MigrateAsync(cancellationToken);
                return;
            }
            catch (System.Data.Common.DbException ex) when (time.GetUtcNow() < giveUpAt && !cancellationToken.IsCancellationRequested)
            {
                LogStoreNotReady(logger, ex.Message);
                await Task.Delay(Pause, time, cancellationToken);
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Warning, Message = "The store is not reachable yet ({Reason}); trying again")]
    private static partial void LogStoreNotReady(ILogger logger, string reason);
}

/// <summary>Stands in for <see cref="PostgresNotificationListener"/> on SQLite, where every change is made in this process.</summary>
internal sealed class NoStoreListener : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
