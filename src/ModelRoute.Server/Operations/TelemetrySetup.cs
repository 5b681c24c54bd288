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
    /// Four runtime instruments are renamed on the way out: Prometheus reserves the <c>_count</c> suffix for
    /// histograms, and <c>promtool check metrics</c> flags a gauge named so.
    /// </remarks>
    public static void AddModelRouteTelemetry(this WebApplicationBuilder builder)
    {
        var otlp = !string.IsNullOrWhiteSpace(builder.Configuration[OtlpEndpointSetting]);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(builder.Configuration["OTEL_SERVICE_NAME"] ?? "modelroute"));
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

    /// <summary><c>GET /metrics</c> in Prometheus text, behind <c>ModelRoute:Metrics:Token</c> when that is set.</summary>
    public static void MapMetrics(this IEndpointRouteBuilder app) =>
        app.MapPrometheusScrapingEndpoint("/metrics", meterProvider: null, configureBranchedPipeline: branch => branch.Use(RequireTokenAsync), optionsName: null)
            .WithTags("Operations").WithName("getMetrics").WithSummary("This node's metrics in the Prometheus text format").AllowAnonymous();

    private static async Task RequireTokenAsync(HttpContext context, RequestDelegate next)
    {
        var token = context.RequestServices.GetRequiredService<IOptions<ModelRouteOptions>>().Value.Metrics.Token;
        if (token is null || Matches(context.Request.Headers.Authorization.ToString(), token))
        {
            await next(context);
            return;
        }

        context.Response.Headers.WWWAuthenticate = "Bearer";
        await Results.Problem(
            statusCode: StatusCodes.Status401Unauthorized,
            title: "Unauthorized",
            detail: "GET /metrics needs Authorization: Bearer with the metrics token (ModelRoute:Metrics:Token).",
            extensions: new Dictionary<string, object?> { ["code"] = Http.Problem.CodeFor(StatusCodes.Status401Unauthorized) })
            .ExecuteAsync(context);
    }

    private static bool Matches(string header, string token) =>
        header.StartsWith("Bearer ", StringComparison.Ordinal)
        && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim()), Encoding.UTF8.GetBytes(token));

    private static bool IsOperational(PathString path) =>
        path.StartsWithSegments("/metrics") || path.StartsWithSegments("/healthz") || path.StartsWithSegments("/readyz");
}
