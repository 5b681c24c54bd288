namespace ModelRoute.Tests.Infrastructure;

/// <summary>One server-sent event as a client parses it.</summary>
public sealed record StreamedEvent(long Id, string Type, string Data)
{
    public JsonElement Json => JsonDocument.Parse(Data).RootElement;

    /// <summary>The execution the event is about.</summary>
    public string ExecutionId => Json.GetProperty("data").GetProperty("id").GetString()!;

    public string Status => Json.GetProperty("data").GetProperty("status").GetString()!;
}

/// <summary>
/// A server-sent event stream read in the background as it arrives, as a browser's EventSource would: every event
/// kept in order, and <see cref="Ended"/> completing when the server closes the stream.
/// </summary>
public sealed class EventStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<StreamedEvent> _events = new();
    private readonly ConcurrentQueue<string> _comments = new();

    private EventStream(HttpResponseMessage response)
    {
        _response = response;
        Ended = Task.Run(ReadAsync);
    }

    public IReadOnlyList<StreamedEvent> Events => [.. _events];

    /// <summary>Comment lines (<c>: keep-alive</c>) and <c>retry:</c> lines, as sent.</summary>
    public IReadOnlyList<string> Comments => [.. _comments];

    /// <summary>Completes when the server ends the stream (or it is disposed).</summary>
    public Task Ended { get; }

    public int Status => (int)_response.StatusCode;

    public string? ContentType => _response.Content.Headers.ContentType?.MediaType;

    /// <summary>Opens <paramref name="path"/>, with <c>Last-Event-ID</c> when given.</summary>
    public static async Task<EventStream> OpenAsync(HttpClient client, string path, long? lastEventId = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (lastEventId is { } last)
        {
            request.Headers.Add("Last-Event-ID", last.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        return new EventStream(response);
    }

    /// <summary>Waits until the events received satisfy <paramref name="condition"/>.</summary>
    public Task WaitForAsync(Func<IReadOnlyList<StreamedEvent>, bool> condition, string what, int seconds = 20) =>
        Eventually.HoldsAsync(() => condition(Events), what, seconds);

    private async Task ReadAsync()
    {
        try
        {
            using var reader = new StreamReader(await _response.Content.ReadAsStreamAsync(_stop.Token));
            long id = 0;
            string? type = null;
            var data = new StringBuilder();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (type is not null)
                    {
                        _events.Enqueue(new StreamedEvent(id, type, data.ToString()));
                    }

                    type = null;
                    data.Clear();
                }
                else if (line.StartsWith(':') || line.StartsWith("retry:", StringComparison.Ordinal))
                {
                    _comments.Enqueue(line);
                }
                else if (line.StartsWith("id: ", StringComparison.Ordinal))
                {
                    id = long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
                }
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                {
                    type = line[7..];
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    data.Append(line[6..]);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or HttpRequestException or ObjectDisposedException)
        {
            // Disposed, or the connection went away.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _response.Dispose();
        await Ended;
        _stop.Dispose();
    }
}
