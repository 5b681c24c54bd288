using System.Diagnostics.Metrics;
using ModelRoute.Server.Providers;

namespace ModelRoute.Server.Operations;

/// <summary>
/// Each configured provider's circuit state and calls in flight on this node, read when scraped
/// (docs/observability.md#provider-gauges). <c>modelroute_provider_circuit_state</c> has one series per provider and
/// state, 1 for the current state and 0 for the others, so <c>{state="open"} == 1</c> is an alert expression.
/// A hosted service only so that the host creates it, and with it the gauges, at start.
/// </summary>
public sealed class ProviderGauges : IHostedService
{
    private static readonly string[] States = ["closed", "half_open", "open"];

    private readonly ProviderEndpoint[] _providers;

    public ProviderGauges(ProviderRegistry providers, GatewayMetrics metrics)
    {
        _providers = [.. providers.All];
        metrics.Meter.CreateObservableGauge("modelroute.provider.circuit.state", ObserveCircuits, unit: null,
            "1 for the provider's circuit state on this node (closed, half_open, open), 0 for the other two.");
        metrics.Meter.CreateObservableGauge("modelroute.provider.in_flight", ObserveInFlight, "{call}",
            "Calls to the provider running on this node.");
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private IEnumerable<Measurement<int>> ObserveCircuits()
    {
        var measurements = new Measurement<int>[_providers.Length * States.Length];
        var i = 0;
        foreach (var provider in _providers)
        {
            var current = provider.Circuit;
            foreach (var state in States)
            {
                measurements[i++] = new Measurement<int>(
                    state == current ? 1 : 0,
                    new KeyValuePair<string, object?>("provider", provider.Name),
                    new KeyValuePair<string, object?>("state", state));
            }
        }

        return measurements;
    }

    private IEnumerable<Measurement<int>> ObserveInFlight()
    {
        var measurements = new Measurement<int>[_providers.Length];
        for (var i = 0; i < _providers.Length; i++)
        {
            measurements[i] = new Measurement<int>(_providers[i].InFlight, new KeyValuePair<string, object?>("provider", _providers[i].Name));
        }

        return measurements;
    }
}
