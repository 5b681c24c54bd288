using System.Collections;
using System.Diagnostics;
using OpenTelemetry.Trace;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// The spans of the <c>ModelRoute</c> source one in-process gateway ended, captured with OpenTelemetry's in-memory
/// exporter (docs/observability.md#traces); safe to read while the gateway is still adding to it.
/// </summary>
public sealed class TracingCapture : ICollection<Activity>
{
    private readonly List<Activity> _spans = [];

    /// <summary>What a <see cref="GatewayFactory"/> is given to export its spans here.</summary>
    public Action<IServiceCollection> Services => services =>
        services.AddOpenTelemetry().WithTracing(tracing => tracing.AddSource("ModelRoute").AddInMemoryExporter(this));

    /// <summary>A W3C traceparent of a new trace, sampled, as a submitter's tracer would send it.</summary>
    public static (string TraceParent, string TraceId, string SpanId) NewSubmitterContext()
    {
        var traceId = ActivityTraceId.CreateRandom().ToHexString();
        var spanId = ActivitySpanId.CreateRandom().ToHexString();
        return ($"00-{traceId}-{spanId}-01", traceId, spanId);
    }

    /// <summary>Submits <paramref name="input"/> to <paramref name="model"/> with a <c>traceparent</c> header; the new execution's id.</summary>
    public static async Task<string> SubmitAsync(HttpClient client, string? traceParent, string model, string input, string extra = "")
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/executions")
        {
            Content = new StringContent(
                $$"""{"model":"{{model}}","input":{{input}},"idempotency_key":"{{Guid.NewGuid()}}"{{extra}}}""", Encoding.UTF8, "application/json"),
        };
        if (traceParent is not null)
        {
            request.Headers.Add("traceparent", traceParent);
        }

        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).ShouldBe(202, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>A text execution the simulator answers as <paramref name="simulate"/> says, its webhook to <paramref name="webhookUrl"/>.</summary>
    public static Task<string> SubmitTextAsync(HttpClient client, string? traceParent, string simulate, string? webhookUrl = null) =>
        SubmitAsync(
            client,
            traceParent,
            "sim/text",
            $$"""{"messages":[{"role":"user","content":"hello"}],"simulate":{{simulate}}}""",
            webhookUrl is null ? "" : $",\"webhook_url\":\"{webhookUrl}\"");

    /// <summary>The spans ended so far named <paramref name="name"/>.</summary>
    public IReadOnlyList<Activity> Named(string name)
    {
        lock (_spans)
        {
            return [.. _spans.Where(s => s.OperationName == name)];
        }
    }

    /// <summary>
    /// The spans of <paramref name="spans"/> that record a settlement (a run's, or a settlement span of its own), in the
    /// order they started.
    /// </summary>
    public static IReadOnlyList<Activity> Settlements(IEnumerable<Activity> spans) =>
        [.. spans.Where(s => s.GetTagItem("modelroute.execution.status") is not null).OrderBy(s => s.StartTimeUtc)];

    /// <summary>The spans ended so far that tag <paramref name="executionId"/>.</summary>
    public IReadOnlyList<Activity> Of(string executionId)
    {
        lock (_spans)
        {
            return [.. _spans.Where(s => s.GetTagItem("modelroute.execution.id") as string == executionId)];
        }
    }

    public int Count
    {
        get
        {
            lock (_spans)
            {
                return _spans.Count;
            }
        }
    }

    public bool IsReadOnly => false;

    public void Add(Activity item)
    {
        lock (_spans)
        {
            _spans.Add(item);
        }
    }

    public void Clear()
    {
        lock (_spans)
        {
            _spans.Clear();
        }
    }

    public bool Contains(Activity item)
    {
        lock (_spans)
        {
            return _spans.Contains(item);
        }
    }

    public void CopyTo(Activity[] array, int arrayIndex)
    {
        lock (_spans)
        {
            _spans.CopyTo(array, arrayIndex);
        }
    }

    public bool Remove(Activity item)
    {
        lock (_spans)
        {
            return _spans.Remove(item);
        }
    }

    public IEnumerator<Activity> GetEnumerator()
    {
        lock (_spans)
        {
            return _spans.ToList().GetEnumerator();
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
