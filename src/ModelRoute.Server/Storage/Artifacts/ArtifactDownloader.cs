using System.Net;
using System.Net.Sockets;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>Why a fetch gave no bytes: worth trying again, or never (docs/artifacts.md).</summary>
public enum ArtifactFetchFailure
{
    None,

    /// <summary>A connection failure, a 5xx, 408 or 429, or the fetch timeout: the copy is tried again later.</summary>
    Transient,

    /// <summary>The URL, or a redirect's target, is refused by the network policy: it was never fetched.</summary>
    Refused,

    /// <summary>Any other 4xx, too many redirects, or an output over the size cap: trying again would not help.</summary>
    Permanent,
}

/// <summary>One output copied into the artifact store, or why it is not; <see cref="Error"/> names the output, never more of an address than its host.</summary>
public sealed record ArtifactFetch(Artifact? Stored, ArtifactFetchFailure Failure, string? Error);

/// <summary>
/// Copies an output the provider gave as a URL into the artifact store, streaming, before that URL expires, under
/// <see cref="ArtifactUrlPolicy"/>: redirects are followed here, at most <see cref="MaxRedirects"/>, each target
/// checked again; the size is capped (Limits:MaxArtifactBytes) and the whole fetch bounded by Artifacts:FetchTimeout.
/// </summary>
public sealed class ArtifactDownloader(IHttpClientFactory httpClients, ArtifactUrlPolicy policy, IOptions<ModelRouteOptions> options, TimeProvider time)
{
    /// <summary>The client whose connections are checked against the policy when made.</summary>
    public const string HttpClientName = "artifacts";

    /// <summary>The client for hosts the operator trusts (<see cref="ArtifactUrlPolicy.IsTrusted"/>), which may be private.</summary>
    public const string TrustedHttpClientName = "artifacts-trusted";

    public const int MaxRedirects = 5;

    /// <summary>Fetches <paramref name="source"/>, an output of <paramref name="provider"/>, into <paramref name="store"/>.</summary>
    public async Task<ArtifactFetch> FetchAsync(IArtifactStore store, string executionId, string name, string? contentType, Uri source, string? provider, CancellationToken cancellationToken)
    {
        using var timeout = new CancellationTokenSource(options.Value.Artifacts.FetchTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var url = source;
        try
        {
            for (var redirects = 0; ; redirects++)
            {
                var trusted = policy.IsTrusted(url, provider);
                if (await policy.RefusalAsync(url, trusted, linked.Token) is { } refusal)
                {
                    return Failed(ArtifactFetchFailure.Refused, $"The output '{name}' was not fetched: its URL (host '{url.IdnHost}') {refusal}.");
                }

                using var request = new HttpRequestMessage(HttpMethod.Get, url);
                using var client = httpClients.CreateClient(trusted ? TrustedHttpClientName : HttpClientName);
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token);
                var status = (int)response.StatusCode;
                if (status is 301 or 302 or 303 or 307 or 308 && response.Headers.Location is { } location)
                {
                    if (redirects == MaxRedirects)
                    {
                        return Failed(ArtifactFetchFailure.Permanent, $"Fetching the output '{name}' was redirected more than {MaxRedirects} times.");
                    }

                    url = location.IsAbsoluteUri ? location : new Uri(url, location);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                {
                    var failure = status is >= 500 or 408 or 429 ? ArtifactFetchFailure.Transient : ArtifactFetchFailure.Permanent;
                    return Failed(failure, $"Fetching the output '{name}' answered {status}.");
                }

                return await SaveAsync(store, executionId, name, contentType, response, linked.Token);
            }
        }
        catch (HttpRequestException ex) when (Refused(ex) is { } refused)
        {
            return Failed(ArtifactFetchFailure.Refused, $"The output '{name}' was not fetched: host '{url.IdnHost}' {refused.Message}.");
        }
        catch (HttpRequestException ex)
        {
            return Failed(ArtifactFetchFailure.Transient, $"Fetching the output '{name}' failed ({ex.HttpRequestError}).");
        }
        catch (IOException ex)
        {
            return Failed(ArtifactFetchFailure.Transient, $"Fetching the output '{name}' failed ({ex.GetType().Name}).");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return Failed(ArtifactFetchFailure.Transient, $"Fetching the output '{name}' took longer than {options.Value.Artifacts.FetchTimeout}.");
        }
    }

    /// <summary>Streams the body into the store; a store that fails (S3 unreachable) fails the copy for now, not for good.</summary>
    private async Task<ArtifactFetch> SaveAsync(IArtifactStore store, string executionId, string name, string? contentType, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var limit = options.Value.Limits.MaxArtifactBytes;
        var tooLarge = Failed(ArtifactFetchFailure.Permanent, $"The output '{name}' is larger than {limit} bytes.");
        if (response.Content.Headers.ContentLength > limit)
        {
            return tooLarge;
        }

        var type = contentType ?? response.Content.Headers.ContentType?.MediaType ?? "application/octet-stream";
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        try
        {
            return new ArtifactFetch(await store.SaveAsync(executionId, name, type, body, limit, cancellationToken), ArtifactFetchFailure.None, null);
        }
        catch (ArtifactTooLargeException)
        {
            return tooLarge;
        }
        catch (Amazon.Runtime.AmazonServiceException ex)
        {
            return Failed(ArtifactFetchFailure.Transient, $"Storing the output '{name}' failed ({ex.ErrorCode ?? ex.StatusCode.ToString()}).");
        }
        catch (Amazon.Runtime.AmazonClientException ex)
        {
            return Failed(ArtifactFetchFailure.Transient, $"Storing the output '{name}' failed ({(ex.InnerException ?? ex).GetType().Name}).");
        }
        catch (HttpRequestException ex)
        {
            // The provider's body or the bucket (S3 unreachable): either way it is worth trying again.
            return Failed(ArtifactFetchFailure.Transient, $"Copying the output '{name}' failed ({ex.HttpRequestError}).");
        }
    }

    private static ArtifactFetch Failed(ArtifactFetchFailure failure, string error) => new(null, failure, error);

    private static ArtifactAddressRefusedException? Refused(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is ArtifactAddressRefusedException refused)
            {
                return refused;
            }
        }

        return null;
    }

    /// <summary>
    /// A handler that follows no redirect itself and connects only to addresses <paramref name="mayConnect"/> allows,
    /// judged on the address actually connected to (a DNS answer that changed since the check is caught here).
    /// </summary>
    public static SocketsHttpHandler CreateHandler(Func<IPAddress, bool> mayConnect, IHostResolver resolver) => new()
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        UseCookies = false,
        AutomaticDecompression = DecompressionMethods.None,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ConnectCallback = (context, cancellationToken) => Webhooks.GuardedConnection.ConnectAsync(
            context, resolver, mayConnect, _ => new ArtifactAddressRefusedException("resolves to a loopback, private, link-local or metadata address"), cancellationToken),
    };
}

public sealed class ArtifactAddressRefusedException(string message) : Exception(message);
