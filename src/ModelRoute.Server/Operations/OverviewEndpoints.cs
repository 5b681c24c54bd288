using Microsoft.AspNetCore.Http.HttpResults;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Providers;

namespace ModelRoute.Server.Operations;

/// <summary>
/// The operator's overview (docs/api.md#operator-overview): the store-wide figures from the last <see cref="StoreGauges"/>
/// count, with when it was taken, and this node's providers and throughput from <see cref="ProviderHealth"/>. It reads
/// only what is already in memory, never the store, so the console may refresh it every few seconds at no cost.
/// </summary>
public static class OverviewEndpoints
{
    public static void MapOverviewEndpoints(this RouteGroupBuilder admin) =>
        admin.MapGet("/overview", GetOverview)
            .WithName("getOverview")
            .WithSummary("Get the operator's overview")
            .WithDescription("The store's outbox backlog, active executions and money held as last counted (with when), and this node's providers and throughput; never queries the store.")
            .Produces<OverviewView>(200);

    private static Ok<OverviewView> GetOverview(StoreGauges gauges, ProviderRegistry providers, ProviderHealth health, TimeProvider time, IOptions<ModelRouteOptions> options)
    {
        var (ended, completed) = health.Throughput();
        return TypedResults.Ok(new OverviewView(
            "overview",
            StoreOverviewView.Of(gauges.LastSample, time.GetUtcNow(), options.Value.Metrics.SampleInterval),
            new ThroughputView(ProviderHealth.ThroughputSeconds, Math.Round(ended, 2), Math.Round(completed, 2)),
            [.. providers.All.Select(p => ProviderView.From(p, health.Calls(p.Name)))]));
    }
}

/// <summary>The overview: the store as last counted (null before the first count), and this node's throughput and providers.</summary>
public sealed record OverviewView(string Object, StoreOverviewView? Store, ThroughputView Throughput, IReadOnlyList<ProviderView> Providers);

/// <summary>
/// The store-wide figures of one count, every node's work together: ages are worked out now, so an old delivery or hold
/// keeps ageing between counts, as the gauges do (docs/observability.md#store-gauges).
/// </summary>
public sealed record StoreOverviewView(
    string SampledAt, int SampleIntervalSeconds, ActiveExecutionsView ExecutionsActive, OutboxView Outbox, string Held, long? OldestHoldAgeSeconds)
{
    public static StoreOverviewView? Of(StoreSample? sample, DateTimeOffset now, TimeSpan interval)
    {
        if (sample is null)
        {
            return null;
        }

        var counts = sample.Counts;
        return new StoreOverviewView(
            ExecutionView.Timestamp(sample.TakenAt),
            (int)interval.TotalSeconds,
            new ActiveExecutionsView(counts.Pending, counts.Processing, counts.AwaitingWebhook),
            new OutboxView(counts.OutboxBacklog, AgeSeconds(counts.OldestDeliveryAt, now)),
            Money.Format(counts.HeldMicros),
            AgeSeconds(counts.OldestHoldAt, now));
    }

    /// <summary>Whole seconds since a unix-milliseconds time; null when there is none.</summary>
    private static long? AgeSeconds(long? since, DateTimeOffset now) =>
        since is { } at ? Math.Max(0, (now.ToUnixTimeMilliseconds() - at) / 1000) : null;
}

/// <summary>Unfinished executions in the store by status.</summary>
public sealed record ActiveExecutionsView(long Pending, long Processing, long AwaitingWebhook);

/// <summary>Webhook deliveries not yet delivered nor given up, and the oldest one's age (null when there is none).</summary>
public sealed record OutboxView(long Backlog, long? OldestAgeSeconds);
