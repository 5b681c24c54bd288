using System.Diagnostics;

namespace ModelRoute.Server.Operations;

/// <summary>
/// The gateway's one <see cref="ActivitySource"/> and the name of its one meter, both <c>ModelRoute</c>
/// (docs/observability.md). With nothing listening, starting an activity costs a null check.
/// </summary>
public static class Telemetry
{
    public const string Name = "ModelRoute";

    public static readonly ActivitySource Source = new(Name, typeof(Telemetry).Assembly.GetName().Version?.ToString(3));
}
