using System.Net;
using System.Net.Sockets;

namespace ModelRoute.Bench;

/// <summary>
/// A local OTLP/HTTP receiver for <c>--otlp</c>: it accepts every export and throws it away, so a run measures what
/// exporting traces and metrics costs the gateway (docs/observability.md), not a collector's speed.
/// </summary>
public sealed class OtlpSink : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _serving;
    private long _exports;
    private long _bytes;
    private long _spans;

    private OtlpSink(int port)
    {
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _serving = Task.Run(ServeAsync);
    }

    public string Endpoint { get; }

    /// <summary>Exports received so far, and their bytes.</summary>
    public (long Exports, long Bytes) Received => (Interlocked.Read(ref _exports), Interlocked.Read(ref _bytes));

    /// <summary>Starts a sink and points every gateway this process starts at it (they inherit the environment).</summary>
    public static OtlpSink Start()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        var sink = new OtlpSink(port);
        Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT", sink.Endpoint);
        Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        return sink;
    }

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            if (context.Request.Url?.AbsolutePath.EndsWith("/v1/traces", StringComparison.Ordinal) == true)
            {
                // Counted so that a run shows whether the gateway's batch processor dropped spans (its queue is bounded).
                Interlocked.Add(ref _spans, CountSpans(body.GetBuffer().AsSpan(0, (int)body.Length)));
            }

            Interlocked.Increment(ref _exports);
            Interlocked.Add(ref _bytes, body.Length);
            // An empty body is a valid, empty Export*ServiceResponse in protobuf.
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/x-protobuf";
            context.Response.ContentLength64 = 0;
            context.Response.Close();
        }
        catch (Exception ex) when (ex is HttpListenerException or IOException or ObjectDisposedException)
        {
            // The gateway stopped mid-export: nothing to answer.
        }
    }

    public void Dispose()
    {
        _listener.Close();
        _serving.Wait(TimeSpan.FromSeconds(5));
        Console.WriteLine($"OTLP sink: {Interlocked.Read(ref _spans)} spans received");
    }

    /// <summary>
    /// The spans of an ExportTraceServiceRequest: field 1 (resource spans) holds field 2 (scope spans), which holds
    /// field 2 (spans), all length-delimited.
    /// </summary>
    private static long CountSpans(ReadOnlySpan<byte> message, int depth = 0)
    {
        var count = 0L;
        var at = 0;
        while (at < message.Length)
        {
            var key = ReadVarint(message, ref at);
            var wireType = (int)(key & 7);
            var field = key >> 3;
            switch (wireType)
            {
                case 0: ReadVarint(message, ref at); break;
                case 1: at += 8; break;
                case 5: at += 4; break;
                case 2:
                    var length = (int)ReadVarint(message, ref at);
                    var inner = message.Slice(at, length);
                    at += length;
                    count += (depth, field) switch
                    {
                        (0, 1) or (1, 2) => CountSpans(inner, depth + 1),
                        (2, 2) => 1,
                        _ => 0,
                    };
                    break;
                default: return count;
            }
        }

        return count;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> message, ref int at)
    {
        var value = 0UL;
        for (var shift = 0; at < message.Length; shift += 7)
        {
            var b = message[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                break;
            }
        }

        return value;
    }
}
