using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers;

/// <summary>One provider call: the execution, where it is routed, and how the provider may call back.</summary>
public sealed record ProviderCall(Execution Execution, ModelDefinition Model, RouteDefinition Route, int AttemptNumber, Uri? CallbackUrl);
