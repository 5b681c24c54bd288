using System.Net;
using System.Text;

namespace ModelRoute.Client.Tests;

/// <summary>The SDK reads the events stream as the server-sent events standard says, whoever wrote it.</summary>
public sealed class EventStreamTests
{
    private const string Pending = """{"id":"evt_1","type":"execution.pending","data":{"id":"exe_1","object":"execution","status":"PENDING"}}""";

    [Fact]
    public async Task Only_one_space_after_the_colon_is_dropped_and_comments_multi_line_data_and_event_ids_are_read_as_the_standard_says()
    {
        var first = new StringBuilder()
            .Append(": a comment, then a keep-alive\n\n: keep-alive\n\n")
            .Append("id:  7\n").Append("event: execution.pending\n").Append("data:").Append(Pending).Append("\n\n")
            .Append("data: {\"id\":\"evt_2\",\n")
            .Append(": a comment inside an event changes nothing\n")
            .Append("data:  \"type\":\"execution.processing\",\n")
            .Append("data:\"data\":{\"id\":\"exe_1\",\"object\":\"execution\",\"status\":\"PROCESSING\"}}\n\n")
            .ToString();
        var second = "id: 9\ndata: {\"id\":\"evt_3\",\"type\":\"execution.completed\",\"data\":{\"id\":\"exe_1\",\"object\":\"execution\",\"status\":\"COMPLETED\"}}\n\n";
        var server = new ScriptedEvents(first, second);
        using var client = new ModelRouteClient(new HttpClient(server), new ModelRouteClientOptions
        {
            BaseAddress = new Uri("http://gateway.test/"),
            InitialBackoff = TimeSpan.FromMilliseconds(1),
        });

        var events = new List<ExecutionEvent>();
        await foreach (var e in client.StreamEventsAsync("exe_1").WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token))
        {
            events.Add(e);
        }

        events.Select(e => e.Id).ShouldBe(["evt_1", "evt_2", "evt_3"]);
        events.Select(e => e.Type).ShouldBe(["execution.pending", "execution.processing", "execution.completed"]);
        events.Select(e => e.Sequence).ShouldBe([" 7", " 7", "9"], "one space is dropped; the id stays until another id line");
        server.LastEventIds.ShouldBe([null, " 7"], "the reconnection resumes after the last id, as it was sent");
    }

    /// <summary>Answers each events request with the next scripted stream; the stream then ends.</summary>
    private sealed class ScriptedEvents(params string[] streams) : HttpMessageHandler
    {
        private int _next;

        public List<string?> LastEventIds { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            LastEventIds.Add(request.Headers.TryGetValues("Last-Event-ID", out var values) ? values.Single() : null);
            var body = new StringContent(streams[Math.Min(_next++, streams.Length - 1)], Encoding.UTF8, "text/event-stream");
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = body });
        }
    }
}
