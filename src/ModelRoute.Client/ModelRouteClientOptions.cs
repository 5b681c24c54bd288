namespace ModelRoute.Client;

/// <summary>How a <see cref="ModelRouteClient"/> reaches the gateway and retries.</summary>
public sealed class ModelRouteClientOptions
{
    /// <summary>The gateway's base URL, e.g. <c>https://gateway.example.com</c>.</summary>
    public Uri? BaseAddress { get; set; }

    /// <summary>The API key (<c>mr_…</c>), or the admin key for the operator's calls.</summary>
    public string? ApiKey { get; set; }

    /// <summary>How many times a request answered 429 or 502/503/504, or not answered at all, is tried again. Default 5.</summary>
    public int MaxRetries { get; set; } = 5;

    /// <summary>The first backoff delay; it doubles each retry (with jitter). Default 500 ms.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest delay between retries, also the cap on a server's <c>Retry-After</c>. Default 30 s.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest single long-poll <c>?wait=</c> in seconds (the server allows up to 60). Default 30.</summary>
    public int LongPollSeconds { get; set; } = 30;

    /// <summary>The clock for waits and backoff; replace it in tests.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
