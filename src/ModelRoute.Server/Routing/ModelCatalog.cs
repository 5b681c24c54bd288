using System.Text.Json.Serialization;

namespace ModelRoute.Server.Routing;

[JsonConverter(typeof(JsonStringEnumConverter<Modality>))]
public enum Modality
{
    Text,
    Image,
    Video,
    Audio,
    Embedding,
}

public sealed record RouteDefinition(string Provider, string ProviderModel, int Priority, int Weight);

public sealed record ModelDefinition(
    string Name,
    Modality Modality,
    Price Price,
    TimeSpan DefaultTimeout,
    TimeSpan MaxTimeout,
    int DefaultMaxOutputTokens,
    int DefaultDurationSeconds,
    IReadOnlyList<RouteDefinition> Routes);

/// <summary>The models of the configuration, parsed once at start-up.</summary>
public sealed class ModelCatalog
{
    private readonly Dictionary<string, ModelDefinition> _models;

    public ModelCatalog(IEnumerable<ModelDefinition> models)
    {
        _models = models.ToDictionary(m => m.Name, StringComparer.Ordinal);
        All = [.. _models.Values.OrderBy(m => m.Name, StringComparer.Ordinal)];
    }

    public IReadOnlyList<ModelDefinition> All { get; }

    public ModelDefinition? Find(string name) => _models.GetValueOrDefault(name);

    /// <summary>Parses the configuration, or lists every setting that is wrong, each naming its key.</summary>
    public static (ModelCatalog? Catalog, List<string> Errors) Build(ModelRouteOptions options)
    {
        var errors = new List<string>();
        var models = new List<ModelDefinition>();
        foreach (var (name, model) in options.Models)
        {
            var key = $"ModelRoute:Models:{name}";
            if (!Enum.TryParse<Modality>(model.Modality, ignoreCase: true, out var modality) || !Enum.IsDefined(modality) || int.TryParse(model.Modality, out _))
            {
                errors.Add($"{key}:Modality '{model.Modality}' is not one of text, image, video, audio, embedding");
                continue;
            }

            var price = ParsePrice(key, model.Pricing, errors);
            if (model.DefaultTimeout <= TimeSpan.Zero || model.MaxTimeout < model.DefaultTimeout)
            {
                errors.Add($"{key}:DefaultTimeout must be positive and no more than MaxTimeout");
            }

            var routes = ParseRoutes(key, name, model.Routes, options.Providers, errors);
            models.Add(new ModelDefinition(
                name,
                modality,
                price,
                model.DefaultTimeout,
                model.MaxTimeout,
                Math.Max(1, model.DefaultMaxOutputTokens),
                Math.Max(1, model.DefaultDurationSeconds),
                [.. routes.OrderBy(r => r.Priority)]));
        }

        return errors.Count == 0 ? (new ModelCatalog(models), errors) : (null, errors);
    }

    private static Price ParsePrice(string key, Dictionary<string, string> pricing, List<string> errors)
    {
        var price = new Price();
        foreach (var (priceKey, value) in pricing)
        {
            if (!Price.KeyNames.TryGetValue(priceKey, out var property))
            {
                errors.Add($"{key}:Pricing:{priceKey} is not a known price (InputPerMTok, OutputPerMTok, CachedInputPerMTok, PerImage, PerSecond, PerRequest)");
                continue;
            }

            if (!Money.TryParseUsd(value, out var micros))
            {
                errors.Add($"{key}:Pricing:{priceKey} '{value}' is not a non-negative USD amount with at most six decimals");
                continue;
            }

            price = property switch
            {
                nameof(Price.InputPerMTok) => price with { InputPerMTok = micros },
                nameof(Price.OutputPerMTok) => price with { OutputPerMTok = micros },
                nameof(Price.CachedInputPerMTok) => price with { CachedInputPerMTok = micros },
                nameof(Price.PerImage) => price with { PerImage = micros },
                nameof(Price.PerSecond) => price with { PerSecond = micros },
                _ => price with { PerRequest = micros },
            };
        }

        return price;
    }

    private static List<RouteDefinition> ParseRoutes(
        string key, string modelName, List<Hosting.RouteOptions> configured, Dictionary<string, ProviderOptions> providers, List<string> errors)
    {
        if (configured.Count == 0)
        {
            errors.Add($"{key}:Routes must list at least one route");
        }

        var routes = new List<RouteDefinition>();
        for (var i = 0; i < configured.Count; i++)
        {
            var route = configured[i];
            if (!providers.ContainsKey(route.Provider))
            {
                errors.Add($"{key}:Routes:{i}:Provider '{route.Provider}' is not a configured provider");
            }

            if (route.Weight < 1)
            {
                errors.Add($"{key}:Routes:{i}:Weight must be at least 1");
            }

            routes.Add(new RouteDefinition(route.Provider, string.IsNullOrEmpty(route.Model) ? modelName : route.Model, route.Priority, Math.Max(1, route.Weight)));
        }

        return routes;
    }
}
