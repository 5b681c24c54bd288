using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

public static class ProviderKinds
{
    public const string OpenAI = "openai";
    public const string Anthropic = "anthropic";
    public const string Gemini = "gemini";
    public const string Replicate = "replicate";
    public const string Fal = "fal";
    public const string Simulator = "simulator";

    public static bool NeedsApiKey(string kind) => kind != Simulator;

    /// <summary>Every modality, for adapters that translate them all.</summary>
    public static readonly IReadOnlySet<Modality> AllModalities = Enum.GetValues<Modality>().ToHashSet();

    public static readonly IReadOnlySet<Modality> TextOnly = new HashSet<Modality> { Modality.Text };

    /// <summary>Every adapter factory in this assembly: adding an adapter needs no registration elsewhere.</summary>
    public static IEnumerable<Type> FactoryTypes() =>
        typeof(ProviderKinds).Assembly.GetTypes().Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IProviderAdapterFactory).IsAssignableFrom(t));
}
