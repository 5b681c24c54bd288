namespace ModelRoute.Server.Providers;

/// <summary>Translates canonical executions to one provider's protocol and its answers back.</summary>
public interface IProviderAdapter
{
    Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>
    /// Whether the answer to <paramref name="call"/> may come through its callback URL (or a later poll) rather than in
    /// the call's own reply. If it may, the attempt's start, with the callback's token, is committed before the call;
    /// if not, the call begins while the start is still being written, and a quick answer commits with it.
    /// </summary>
    bool MayCallBack(ProviderCall call) => true;

    /// <summary>Asks an async provider where an accepted job stands (when its callback is late).</summary>
    Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>Best effort: asks the provider to stop an accepted job.</summary>
    Task CancelAsync(ProviderCall call, CancellationToken cancellationToken);

    /// <summary>
    /// Checks the provider's own signature on a callback, where it has one. The per-attempt token in
    /// the callback URL has already been checked by the gateway; adapters without a scheme return true.
    /// </summary>
    bool VerifyCallback(ProviderCall call, ProviderCallback callback);

    /// <summary>
    /// <see cref="VerifyCallback"/> for a scheme that may need the network (fal's keys come from a JWKS); the callback
    /// endpoint calls this one.
    /// </summary>
    Task<bool> VerifyCallbackAsync(ProviderCall call, ProviderCallback callback, CancellationToken cancellationToken) =>
        Task.FromResult(VerifyCallback(call, callback));

    /// <summary>Reads a verified callback: the result, a failure, or <see cref="ProviderOutcome.Running"/> for progress news.</summary>
    ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback);
}
