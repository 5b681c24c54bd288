using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ModelRoute.Server.Operations;

/// <summary>
/// OpenTelemetry for the gateway (docs/observability.md): the <c>ModelRoute</c> meter with ASP.NET Core's, HttpClient's,
/// the runtime's and Npgsql's instruments, served as Prometheus text at <c>GET /metrics</c>; traces and metrics go out
/// by OTLP only when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. Without an exporter no trace is recorded: the
/// <c>ModelRoute</c> source then has no listener and starting an activity costs a null check.
/// </summary>
public static class TelemetrySetup
{
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <remarks>
    /// Four runtime instruments and Npgsql's connection count are renamed on the way out: Prometheus reserves the
    /// <c>_count</c> suffix for histograms, and <c>promtool check metrics</c> flags a gauge named so.
    /// </remarks>
    public static void AddModelRouteTelemetry(this WebApplicationBuilder builder)
    {
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointSetting]);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "modelroute"));
        builder.Services.ConfigureOpenTelemetryMeterProvider((services, metrics) => metrics.AddView(OnlyThisHostsMeters(services.GetRequiredService<IMeterFactory>())));
        telemetry.WithMetrics(metrics =>
        {
            metrics.AddMeter(Telemetry.Name)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddNpgsqlInstrumentation()
                .AddView("dotnet.assembly.count", new MetricStreamConfiguration { Name = "dotnet.assembly.loaded" })
                .AddView("dotnet.process.cpu.count", new MetricStreamConfiguration { Name = "dotnet.process.cpus" })
                .AddView("dotnet.thread_pool.thread.count", new MetricStreamConfiguration { Name = "dotnet.thread_pool.threads" })
                .AddView("dotnet.timer.count", new MetricStreamConfiguration { Name = "dotnet.timers" })
                .AddView("db.client.connection.count", new MetricStreamConfiguration { Name = "db.client.connections" })
                .AddPrometheusExporter(o =>
                {
                    // Every scrape sees the counts as they are now (the default keeps a response for 300 ms).
                    o.ScrapeResponseCacheDurationMilliseconds = 0;
                    o.DisableTotalNameSuffixForCounters = false;
                });
            if (otlp)
            {
                metrics.AddOtlpExporter();
            }
        });

        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(Telemetry.Name)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !IsOperational(context.Request.Path))
                .AddHttpClientInstrumentation()
                .AddNpgsql()
                .AddOtlpExporter());
        }
    }

    /// <summary>
    /// Drops the instruments of meters another host's meter factory made. The SDK listens by meter name, so with
    /// two hosts in one process (tests, or an embedding application) each would also take the other's
    /// <c>ModelRoute</c> and ASP.NET Core instruments, merge them with its own, and lose both when the other host stops.
    /// </summary>
    private static Func<Instrument, MetricStreamConfiguration?> OnlyThisHostsMeters(IMeterFactory own) =>
        instrument => instrument.Meter.Scope is IMeterFactory factory && !ReferenceEquals(factory, own) ? MetricStreamConfiguration.Drop : null;

    /// <summary><c>GET /metrics</c> in Prometheus text, behind <c>ModelRoute:Metrics:Token</c> when that is set.</summary>
    /// <remarks>
    /// A route handler around the exporter's pipeline rather than the exporter's own endpoint: that one is a bare
    /// request delegate, which the OpenAPI document leaves out (docs/api.md lists every endpoint there).
    /// </remarks>
    public static void MapMetrics(this IEndpointRouteBuilder app)
    {
        var scrape = app.CreateApplicationBuilder()
            .UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider: null, predicate: _ => true, path: null, configureBranchedPipeline: branch => branch.Use(RequireTokenAsync), optionsName: null)
            .Build();
        app.MapGet("/metrics", async (HttpContext context) =>
            {
                await scrape(context);
                return TypedResults.Empty;
            })
            .Produces<string>(StatusCodes.Status200OK, "text/plain").ProducesProblem(StatusCodes.Status401Unauthorized)
            .WithTags("Operations").WithName("getMetrics").WithSummary("This node's metrics in the Prometheus text format").AllowAnonymous()
            .WithDescription("The Prometheus text exposition of this node's metrics (docs/observability.md). When `ModelRoute:Metrics:Token` is set, that token must be sent as `Authorization: Bearer <token>`; else 401.");
    }

    private static async Task RequireTokenAsync(HttpContext context, RequestDelegate next)
    {
        var token = context.RequestServices.GetRequiredService<IOptions<ModelRouteOptions>>().Value.Metrics.Token;
        if (token is null || Matches(context.Request.Headers.Authorization.ToString(), token))
        {
            await next(context);
            return;
        }

        context.Response.Headers.WWWAuthenticate = "Bearer";
        await new Http.Problem(StatusCodes.Status401Unauthorized, Http.ErrorCodes.Unauthenticated, "GET /metrics needs Authorization: Bearer with the metrics token (ModelRoute:Metrics:Token).")
            .WriteAsync(context);
    }

    private static bool Matches(string header, string token) =>
        header.StartsWith("Bearer ", StringComparison.Ordinal)
        && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()), Encoding.UTF8.GetBytes(token));

    private static bool IsOperational(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz");
}
