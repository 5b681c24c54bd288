using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace ModelRoute.Client;

/// <summary>Registers <see cref="ModelRouteClient"/> with <c>IHttpClientFactory</c>.</summary>
public static class ModelRouteServiceCollectionExtensions
{
    /// <summary>
    /// Adds a typed <see cref="ModelRouteClient"/> backed by <c>IHttpClientFactory</c>. Configure the base address and key here
    /// (or bind <see cref="ModelRouteClientOptions"/> from configuration); add handlers on the returned builder.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets the options.</param>
    /// <returns>The HTTP client builder, to add handlers or settings.</returns>
    public static IHttpClientBuilder AddModelRouteClient(this IServiceCollection services, Action<ModelRouteClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<ModelRouteClientOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return services.AddHttpClient(nameof(ModelRouteClient))
            .AddTypedClient((http, provider) => new ModelRouteClient(http, provider.GetRequiredService<IOptions<ModelRouteClientOptions>>().Value));
    }
}
