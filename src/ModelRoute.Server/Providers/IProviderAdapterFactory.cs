using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

public interface IProviderAdapterFactory
{
    string Kind { get; }

    /// <summary>The modalities its adapter translates; a route of another modality's model to it is refused at start-up.</summary>
    IReadOnlySet<Modality> Modalities { get; }

    IProviderAdapter Create(string name, ProviderOptions options);
}
