using Microsoft.Extensions.Options;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Providers;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>The bytes of an output the provider gave as a URL, fetched before that URL expires.</summary>
public sealed class ArtifactDownloader(IHttpClientFactory httpClients, IOptions<ModelRouteOptions> options)
{
    public const string HttpClientName = "artifacts";

    /// <summary>The content, or null with a reason when it could not be fetched.</summary>
    public async Task<(byte[]? Data, string ContentType, string? Error)> FetchAsync(ArtifactContent artifact, CancellationToken cancellationToken)
    {
        if (artifact.Data is { } data)
        {
            return (data, artifact.ContentType ?? "application/octet-stream", null);
        }

        var limit = options.Value.Limits.MaxArtifactBytes;
        try
        {
            using var client = httpClients.CreateClient(HttpClientName);
            using var response = await client.GetAsync(artifact.Source, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return (null, "", $"Fetching the output '{artifact.Name}' answered {(int)response.StatusCode}.");
            }

            if (response.Content.Headers.ContentLength > limit)
            {
                return (null, "", $"The output '{artifact.Name}' is larger than {limit} bytes.");
            }

            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            using var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    return (null, "", $"The output '{artifact.Name}' is larger than {limit} bytes.");
                }

                buffer.Write(chunk, 0, read);
            }

            var type = artifact.ContentType ?? response.Content.Headers.ContentType?.MediaType ?? "application/octet-stream";
            return (buffer.ToArray(), type, null);
        }
        catch (HttpRequestException ex)
        {
            return (null, "", $"Fetching the output '{artifact.Name}' failed ({ex.HttpRequestError}).");
        }
        catch (Exception ex) when (ex is IOException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // A connection dropped mid-body, or the client's own timeout.
            return (null, "", $"Fetching the output '{artifact.Name}' failed ({ex.GetType().Name}).");
        }
    }
}
