using System.Net.Http.Headers;

namespace ModelRoute.Server.Providers;

/// <summary>
/// The HTTP plumbing the asynchronous adapters (Replicate, fal) share: JSON requests to the provider's API under its
/// own authorization scheme, answers read as JSON objects, and the key kept out of anything passed on.
/// </summary>
public sealed class AsyncJobClient(IHttpClientFactory httpClients, string clientName, string baseUrl, string scheme, string? apiKey)
{
    /// <summary>
    /// Sends <paramref name="json"/> (when given) to <paramref name="pathAndQuery"/> under the API's base URL, with the
    /// <c>traceparent</c> of <paramref name="call"/>'s execution (docs/observability.md#traces).
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, string? json, ProviderCall call, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, baseUrl + pathAndQuery);
        request.Headers.Authorization = new AuthenticationHeaderValue(scheme, apiKey);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        Operations.TraceContext.Propagate(request.Headers, call.Execution.TraceParent);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        var client = httpClients.CreateClient(clientName);
        return await client.SendAsync(request, cancellationToken);
    }

    /// <summary>Never let the key travel into an error message, should an answer echo it.</summary>
    public string Redact(string text) =>
        string.IsNullOrEmpty(apiKey) ? text : text.Replace(apiKey, "[redacted]", StringComparison.Ordinal);

    /// <summary>The body as a JSON object, or null when it is not one.</summary>
    public static JsonElement? Object(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == JsonValueKind.Object ? doc.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>An async provider answers through the callback URL: without one the call cannot be made.</summary>
    public static ProviderOutcome.Failed NoCallbackAddress(string provider) =>
        new(new ExecutionError(ExecutionErrorCodes.InternalError, "The gateway has no callback address (set ModelRoute:PublicBaseUrl).", false, provider));
}
