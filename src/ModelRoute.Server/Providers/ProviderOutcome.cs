namespace ModelRoute.Server.Providers;

/// <summary>What a provider answered, already normalized.</summary>
public abstract record ProviderOutcome
{
    private ProviderOutcome()
    {
    }

    /// <summary>The result. <see cref="Output"/> is canonical JSON; binary outputs travel as artifacts.</summary>
    public sealed record Completed(string Output, Usage Usage, IReadOnlyList<ArtifactContent> Artifacts) : ProviderOutcome;

    /// <summary>An async provider took the job and will call back (or be polled).</summary>
    public sealed record Accepted(string JobId) : ProviderOutcome;

    /// <summary>A poll found the job still running.</summary>
    public sealed record Running : ProviderOutcome;

    public sealed record Failed(ExecutionError Error, TimeSpan? RetryAfter = null) : ProviderOutcome;
}
