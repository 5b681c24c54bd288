namespace ModelRoute.Server.Routing;

/// <summary>
/// The accounts an operator capped (max_concurrency), as this node last read them: the dispatcher reads them again
/// every second, and an admin change made on this node applies here at once. Claims check caps in the store itself;
/// this is for executions a submission hands straight to this node's dispatcher (<see cref="DispatchHandoff"/>),
/// which pass no claim: a capped account's are given back to be claimed, where the cap is counted (docs/routing.md).
/// </summary>
public sealed class AccountConcurrencyCaps
{
    private IReadOnlyDictionary<string, int> _caps = new Dictionary<string, int>(StringComparer.Ordinal);

    /// <summary>How often a node reads the caps again, so that one set on another node applies here within this.</summary>
    public static readonly TimeSpan RefreshInterval = TimeSpan.FromSeconds(1);

    public bool IsCapped(string accountId) => Volatile.Read(ref _caps).ContainsKey(accountId);

    /// <summary>Every cap, as just read from the store.</summary>
    public void Replace(IReadOnlyDictionary<string, int> caps) => Volatile.Write(ref _caps, caps);

    /// <summary>One account's cap changed on this node (null: removed).</summary>
    public void Set(string accountId, int? cap)
    {
        while (true)
        {
            var current = Volatile.Read(ref _caps);
            var next = new Dictionary<string, int>(current, StringComparer.Ordinal);
            if (cap is { } value)
            {
                next[accountId] = value;
            }
            else
            {
                next.Remove(accountId);
            }

            if (ReferenceEquals(Interlocked.CompareExchange(ref _caps, next, current), current))
            {
                return;
            }
        }
    }
}
