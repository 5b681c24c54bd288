using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;

namespace ModelRoute.Client;

/// <summary>
/// A typed client of the ModelRoute gateway's HTTP API. Thread-safe; register it with
/// <see cref="ModelRouteServiceCollectionExtensions.AddModelRouteClient"/> or construct it around your own <see cref="HttpClient"/>.
/// Requests answered 429 are retried after <c>Retry-After</c>; problems become <see cref="ModelRouteApiException"/>.
/// </summary>
public sealed class ModelRouteClient : IDisposable
{
    private static readonly JsonSerializerOptions Json = ModelRouteJson.SerializerOptions;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly ModelRouteClientOptions _options;

    /// <summary>Creates a client around an <see cref="HttpClient"/> (typically from <c>IHttpClientFactory</c>).</summary>
    /// <param name="httpClient">The HTTP client; its <see cref="HttpClient.BaseAddress"/> is set from the options when empty.</param>
    /// <param name="options">The base address, API key and retry settings.</param>
    public ModelRouteClient(HttpClient httpClient, ModelRouteClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        ArgumentNullException.ThrowIfNull(options);
        _http = httpClient;
        _options = options;
        if (_http.BaseAddress is null)
        {
            _http.BaseAddress = options.BaseAddress ?? throw new ArgumentException("Set BaseAddress on the options or the HttpClient.", nameof(options));
        }
    }

    /// <summary>Creates a client with its own <see cref="HttpClient"/>, disposed with the client.</summary>
    /// <param name="baseAddress">The gateway's base URL.</param>
    /// <param name="apiKey">The API key (or the admin key).</param>
    public ModelRouteClient(Uri baseAddress, string? apiKey)
        : this(new HttpClient { Timeout = TimeSpan.FromSeconds(100) }, new ModelRouteClientOptions { BaseAddress = baseAddress, ApiKey = apiKey }) => _ownsHttp = true;

    /// <summary>The options in use.</summary>
    public ModelRouteClientOptions Options => _options;

    /// <summary>Submits an execution (<c>POST /v1/executions</c>). Resubmitting the same key and body answers the same execution.</summary>
    /// <param name="request">The submission.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The execution, usually PENDING.</returns>
    /// <exception cref="ModelRouteApiException">The gateway refused it, e.g. <c>MODEL_NOT_FOUND</c> or <c>INSUFFICIENT_BALANCE</c>.</exception>
    public async Task<Execution> SubmitAsync(SubmitExecutionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request.IdempotencyKey is null ? request with { IdempotencyKey = NewKey() } : request;
        return await SendAsync<Execution>(HttpMethod.Post, "v1/executions", body, idempotent: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Submits up to 1000 executions at once (<c>POST /v1/executions/batch</c>); each is accepted or refused on its own.</summary>
    /// <param name="requests">The submissions; those without a key get one.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One result per submission, in order.</returns>
    /// <exception cref="ModelRouteApiException">The batch as a whole was refused (e.g. empty or too large).</exception>
    public async Task<IReadOnlyList<BatchItemResult>> SubmitBatchAsync(IEnumerable<SubmitExecutionRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        var items = requests.Select(r => r.IdempotencyKey is null ? r with { IdempotencyKey = NewKey() } : r).ToList();
        var batch = await SendAsync<BatchEnvelope>(HttpMethod.Post, "v1/executions/batch", new { executions = items }, idempotent: true, cancellationToken).ConfigureAwait(false);
        return batch.Data;
    }

    /// <summary>Reads an execution (<c>GET /v1/executions/{id}</c>).</summary>
    /// <param name="id">The execution id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The execution.</returns>
    /// <exception cref="ModelRouteApiException"><c>NOT_FOUND</c> and the like.</exception>
    public Task<Execution> GetAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync<Execution>(HttpMethod.Get, $"v1/executions/{Uri.EscapeDataString(id)}", null, idempotent: true, cancellationToken);

    /// <summary>
    /// Waits until the execution ends, by long-polling <c>?wait=</c>; backs off when the server answers early and honours
    /// <c>Retry-After</c> on 429.
    /// </summary>
    /// <param name="id">The execution id.</param>
    /// <param name="timeout">How long to wait at most; null waits until it ends (or <paramref name="cancellationToken"/>).</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The execution: terminal, unless <paramref name="timeout"/> passed first.</returns>
    public async Task<Execution> WaitAsync(string id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = timeout is { } t ? _options.TimeProvider.GetUtcNow() + t : DateTimeOffset.MaxValue;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            var remaining = deadline == DateTimeOffset.MaxValue ? TimeSpan.FromSeconds(_options.LongPollSeconds) : deadline - _options.TimeProvider.GetUtcNow();
            var wait = (int)Math.Clamp(Math.Ceiling(remaining.TotalSeconds), 0, Math.Clamp(_options.LongPollSeconds, 1, 60));
            var started = _options.TimeProvider.GetUtcNow();
            var execution = await SendAsync<Execution>(
                HttpMethod.Get, $"v1/executions/{Uri.EscapeDataString(id)}?wait={wait.ToString(CultureInfo.InvariantCulture)}", null, idempotent: true, cancellationToken).ConfigureAwait(false);
            if (execution.IsTerminal || _options.TimeProvider.GetUtcNow() >= deadline)
            {
                return execution;
            }

            // The server holds the poll for the whole wait; an early answer (a proxy, a restart) means back off.
            if (_options.TimeProvider.GetUtcNow() - started < TimeSpan.FromSeconds(wait) - TimeSpan.FromMilliseconds(250))
            {
                await Task.Delay(backoff, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            }
            else
            {
                backoff = TimeSpan.FromMilliseconds(100);
            }
        }
    }

    /// <summary>Cancels an execution that has not ended (<c>POST /v1/executions/{id}/cancel</c>).</summary>
    /// <param name="id">The execution id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The execution, CANCELLED.</returns>
    /// <exception cref="ModelRouteApiException"><c>INVALID_STATE</c> when it already ended; <c>NOT_FOUND</c>.</exception>
    public Task<Execution> CancelAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync<Execution>(HttpMethod.Post, $"v1/executions/{Uri.EscapeDataString(id)}/cancel", null, idempotent: false, cancellationToken);

    /// <summary>Reads one page of executions, newest first (<c>GET /v1/executions</c>).</summary>
    /// <param name="options">Filters, page size and cursor.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page and the cursor of the next.</returns>
    public Task<Page<Execution>> ListPageAsync(ListExecutionsOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ListExecutionsOptions();
        var query = new List<string>();
        Add(query, "status", options.Status);
        Add(query, "model", options.Model);
        Add(query, "created_after", options.CreatedAfter?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        Add(query, "created_before", options.CreatedBefore?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        Add(query, "idempotency_key", options.IdempotencyKey);
        foreach (var (key, value) in options.Metadata ?? new Dictionary<string, string>())
        {
            Add(query, $"metadata[{Uri.EscapeDataString(key)}]", value);
        }

        Add(query, "limit", options.PageSize?.ToString(CultureInfo.InvariantCulture));
        Add(query, "cursor", options.Cursor);
        return SendAsync<Page<Execution>>(HttpMethod.Get, "v1/executions" + (query.Count == 0 ? "" : "?" + string.Join('&', query)), null, idempotent: true, cancellationToken);
    }

    /// <summary>Every execution matching the filters, newest first, following the cursor across pages as you enumerate.</summary>
    /// <param name="options">Filters and page size.</param>
    /// <param name="cancellationToken">Cancels the enumeration.</param>
    /// <returns>The executions.</returns>
    public async IAsyncEnumerable<Execution> ListAsync(ListExecutionsOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        options ??= new ListExecutionsOptions();
        while (true)
        {
            var page = await ListPageAsync(options, cancellationToken).ConfigureAwait(false);
            foreach (var execution in page.Data)
            {
                yield return execution;
            }

            if (!page.HasMore || page.NextCursor is null)
            {
                yield break;
            }

            options = options with { Cursor = page.NextCursor };
        }
    }

    /// <summary>
    /// The execution's status changes as server-sent events (<c>GET /v1/executions/{id}/events</c>), until it ends. A dropped
    /// stream is resumed from the last event seen (<c>Last-Event-ID</c>).
    /// </summary>
    /// <param name="id">The execution id.</param>
    /// <param name="cancellationToken">Stops the stream.</param>
    /// <returns>The events; the last one carries the whole terminal execution.</returns>
    public async IAsyncEnumerable<ExecutionEvent> StreamEventsAsync(string id, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? lastEventId = null;
        var failures = 0;
        while (true)
        {
            using var response = await OpenEventsAsync(id, lastEventId, cancellationToken).ConfigureAwait(false);
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                // The standard parser: one leading space after the colon is dropped, data lines are joined with '\n',
                // comments are skipped, and the event id carries over to later events until another id line.
                var parser = SseParser.Create(stream);
                var items = parser.EnumerateAsync(cancellationToken).GetAsyncEnumerator(cancellationToken);
                await using (items.ConfigureAwait(false))
                {
                    while (await NextEventAsync(items, failures).ConfigureAwait(false) is { } item)
                    {
                        var sequence = string.IsNullOrEmpty(parser.LastEventId) ? null : parser.LastEventId;
                        var e = JsonSerializer.Deserialize<ExecutionEvent>(item.Data, Json)! with { Sequence = sequence };
                        lastEventId = sequence ?? lastEventId;
                        failures = 0;
                        yield return e;
                        if (e.Data.IsTerminal)
                        {
                            yield break;
                        }
                    }

                    failures++; // the stream ended, or broke, before the execution did
                }
            }

            if (failures > _options.MaxRetries)
            {
                throw new HttpRequestException($"The events stream of {id} ended before the execution did.");
            }

            await Task.Delay(Backoff(failures - 1), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<HttpResponseMessage> OpenEventsAsync(string id, string? lastEventId, CancellationToken cancellationToken)
    {
        var response = await SendRawAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, $"v1/executions/{Uri.EscapeDataString(id)}/events");
                request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
                if (lastEventId is not null)
                {
                    request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
                }

                return request;
            },
            idempotent: true,
            HttpCompletionOption.ResponseHeadersRead,
            cancellationToken).ConfigureAwait(false);
        try
        {
            await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>The next event with data, or null when the stream ends or breaks (a break once the retries are spent throws).</summary>
    private async Task<SseItem<string>?> NextEventAsync(IAsyncEnumerator<SseItem<string>> items, int failures)
    {
        try
        {
            while (await items.MoveNextAsync().ConfigureAwait(false))
            {
                if (items.Current.Data.Length > 0)
                {
                    return items.Current;
                }
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException && failures < _options.MaxRetries)
        {
        }

        return null;
    }

    /// <summary>The account's money (<c>GET /v1/balance</c>).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Balance, held and available, in USD.</returns>
    public Task<AccountBalance> GetBalanceAsync(CancellationToken cancellationToken = default) =>
        SendAsync<AccountBalance>(HttpMethod.Get, "v1/balance", null, idempotent: true, cancellationToken);

    /// <summary>Every ledger entry of the account, newest first, following the cursor (<c>GET /v1/ledger</c>).</summary>
    /// <param name="pageSize">Entries per page (1–100).</param>
    /// <param name="cancellationToken">Cancels the enumeration.</param>
    /// <returns>The entries.</returns>
    public async IAsyncEnumerable<LedgerEntry> ListLedgerAsync(int pageSize = 100, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? cursor = null;
        do
        {
            var page = await SendAsync<Page<LedgerEntry>>(
                HttpMethod.Get, $"v1/ledger?limit={pageSize.ToString(CultureInfo.InvariantCulture)}" + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)),
                null, idempotent: true, cancellationToken).ConfigureAwait(false);
            foreach (var entry in page.Data)
            {
                yield return entry;
            }

            cursor = page.HasMore ? page.NextCursor : null;
        }
        while (cursor is not null);
    }

    /// <summary>The account's default webhook secret, which signs deliveries to a submission's <c>webhook_url</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The secret (<c>whsec_…</c>).</returns>
    public async Task<string> GetDefaultWebhookSecretAsync(CancellationToken cancellationToken = default) =>
        (await SendAsync<SecretEnvelope>(HttpMethod.Get, "v1/webhooks/default-secret", null, idempotent: true, cancellationToken).ConfigureAwait(false)).Secret;

    /// <summary>Registers a webhook endpoint (<c>POST /v1/webhook-endpoints</c>).</summary>
    /// <param name="request">The URL and event types.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The endpoint, with its secret (shown only here).</returns>
    public Task<WebhookEndpoint> CreateWebhookEndpointAsync(CreateWebhookEndpointRequest request, CancellationToken cancellationToken = default) =>
        SendAsync<WebhookEndpoint>(HttpMethod.Post, "v1/webhook-endpoints", request, idempotent: false, cancellationToken);

    /// <summary>Deletes a webhook endpoint (<c>DELETE /v1/webhook-endpoints/{id}</c>).</summary>
    /// <param name="id">The endpoint id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is deleted.</returns>
    public Task DeleteWebhookEndpointAsync(string id, CancellationToken cancellationToken = default) =>
        SendAsync<JsonElement>(HttpMethod.Delete, $"v1/webhook-endpoints/{Uri.EscapeDataString(id)}", null, idempotent: true, cancellationToken);

    /// <summary>Operator: creates an account (<c>POST /v1/admin/accounts</c>; needs the admin key).</summary>
    /// <param name="name">The account's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The account.</returns>
    public Task<Account> CreateAccountAsync(string? name = null, CancellationToken cancellationToken = default) =>
        SendAsync<Account>(HttpMethod.Post, "v1/admin/accounts", name is null ? new { } : new { name }, idempotent: false, cancellationToken);

    /// <summary>Operator: reads an account (<c>GET /v1/admin/accounts/{id}</c>).</summary>
    /// <param name="accountId">The account id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The account.</returns>
    public Task<Account> GetAccountAsync(string accountId, CancellationToken cancellationToken = default) =>
        SendAsync<Account>(HttpMethod.Get, $"v1/admin/accounts/{Uri.EscapeDataString(accountId)}", null, idempotent: true, cancellationToken);

    /// <summary>Operator: creates an API key for an account (<c>POST /v1/admin/accounts/{id}/api-keys</c>).</summary>
    /// <param name="accountId">The account id.</param>
    /// <param name="name">The key's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The key; <see cref="ApiKey.Key"/> is shown only here.</returns>
    public Task<ApiKey> CreateApiKeyAsync(string accountId, string? name = null, CancellationToken cancellationToken = default) =>
        SendAsync<ApiKey>(HttpMethod.Post, $"v1/admin/accounts/{Uri.EscapeDataString(accountId)}/api-keys", name is null ? new { } : new { name }, idempotent: false, cancellationToken);

    /// <summary>Operator: credits an account (<c>POST /v1/admin/accounts/{id}/credits</c>). The same reference never credits twice.</summary>
    /// <param name="accountId">The account id.</param>
    /// <param name="amountUsd">The amount in USD (at most six decimals).</param>
    /// <param name="reference">An idempotency reference, e.g. an invoice number.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ledger entry.</returns>
    public Task<LedgerEntry> AddCreditAsync(string accountId, decimal amountUsd, string? reference = null, CancellationToken cancellationToken = default) =>
        SendAsync<LedgerEntry>(
            HttpMethod.Post,
            $"v1/admin/accounts/{Uri.EscapeDataString(accountId)}/credits",
            new { amount_usd = amountUsd.ToString(CultureInfo.InvariantCulture), reference },
            idempotent: reference is not null,
            cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>
    /// Sends a request and answers the gateway's JSON as it is, for tools that pass the API's own objects on (the CLI's
    /// MCP server does). Retries as the typed calls do.
    /// </summary>
    /// <param name="method">The HTTP method.</param>
    /// <param name="path">The path and query under the base address, e.g. <c>v1/executions?limit=10</c>.</param>
    /// <param name="body">The JSON body, if any.</param>
    /// <param name="idempotent">Whether a failed connection may be retried (true for reads and keyed submissions).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The response's JSON.</returns>
    /// <exception cref="ModelRouteApiException">The gateway answered a problem.</exception>
    public async Task<JsonElement> SendJsonAsync(HttpMethod method, string path, JsonElement? body, bool idempotent, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(
            () => new HttpRequestMessage(method, path) { Content = body is { } b ? JsonContent.Create(b, options: Json) : null },
            idempotent,
            HttpCompletionOption.ResponseContentRead,
            cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync<JsonElement>(Json, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Downloads an artifact (<c>GET /v1/executions/{id}/artifacts/{name}</c>).</summary>
    /// <param name="id">The execution id.</param>
    /// <param name="name">The artifact's name.</param>
    /// <param name="cancellationToken">Cancels the download.</param>
    /// <returns>The artifact's bytes.</returns>
    /// <exception cref="ModelRouteApiException"><c>NOT_FOUND</c> and the like.</exception>
    public async Task<byte[]> DownloadArtifactAsync(string id, string name, CancellationToken cancellationToken = default)
    {
        using var response = await SendRawAsync(
            () => new HttpRequestMessage(HttpMethod.Get, $"v1/executions/{Uri.EscapeDataString(id)}/artifacts/{Uri.EscapeDataString(name)}"),
            idempotent: true,
            HttpCompletionOption.ResponseContentRead,
            cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    private static string NewKey() => "sdk_" + Guid.NewGuid().ToString("N");

    private static void Add(List<string> query, string name, string? value)
    {
        if (value is not null)
        {
            query.Add(name + "=" + Uri.EscapeDataString(value));
        }
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, object? body, bool idempotent, CancellationToken cancellationToken)
    {
        using var response = await SendRawAsync(
            () => new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body, body.GetType(), options: Json) },
            idempotent,
            HttpCompletionOption.ResponseContentRead,
            cancellationToken).ConfigureAwait(false);
        await ThrowIfProblemAsync(response, cancellationToken).ConfigureAwait(false);
        return (await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken).ConfigureAwait(false))!;
    }

    /// <summary>Sends with retries: 429 always (the server did nothing), 502/503/504 and connection failures when idempotent.</summary>
    private async Task<HttpResponseMessage> SendRawAsync(Func<HttpRequestMessage> create, bool idempotent, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var request = create();
            if (_options.ApiKey is { Length: > 0 } key)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }

            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, completion, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException) when (idempotent && attempt < _options.MaxRetries)
            {
                await Task.Delay(Backoff(attempt), _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                continue;
            }

            var retryable = response.StatusCode == HttpStatusCode.TooManyRequests
                || (idempotent && response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout);
            if (!retryable || attempt >= _options.MaxRetries)
            {
                return response;
            }

            var delay = RetryAfter(response) is { } after ? (after > _options.MaxBackoff ? _options.MaxBackoff : after) : Backoff(attempt);
            response.Dispose();
            await Task.Delay(delay, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    private TimeSpan Backoff(int attempt)
    {
        var exponential = _options.InitialBackoff.TotalMilliseconds * Math.Pow(2, Math.Clamp(attempt, 0, 20));
        var capped = Math.Min(exponential, _options.MaxBackoff.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + (Random.Shared.NextDouble() / 2)));
    }

    private TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - _options.TimeProvider.GetUtcNow() is var d && d > TimeSpan.Zero ? d : TimeSpan.Zero,
        _ => null,
    };

    private async Task ThrowIfProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        ApiProblem? problem = null;
        try
        {
            problem = text.Length > 0 ? JsonSerializer.Deserialize<ApiProblem>(text, Json) : null;
        }
        catch (JsonException)
        {
        }

        var status = (int)response.StatusCode;
        problem = (problem ?? new ApiProblem { Detail = text.Length > 500 ? text[..500] : text }) with { Status = status };
        if (problem.Code is null)
        {
            problem = problem with { Code = CodeFor(status) };
        }

        throw new ModelRouteApiException(response.StatusCode, problem, RetryAfter(response));
    }

    private static string CodeFor(int status) => status switch
    {
        400 => "VALIDATION_ERROR",
        401 => "UNAUTHENTICATED",
        402 => "INSUFFICIENT_BALANCE",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "INVALID_STATE",
        413 => "PAYLOAD_TOO_LARGE",
        429 => "RATE_LIMITED",
        _ => "HTTP_" + status.ToString(CultureInfo.InvariantCulture),
    };

    private sealed record BatchEnvelope(IReadOnlyList<BatchItemResult> Data);

    private sealed record SecretEnvelope(string Secret);
}
