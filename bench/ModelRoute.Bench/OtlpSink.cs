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
            var read = 0L;
            var buffer = new byte[16 * 1024];
            int n;
            while ((n = await context.Request.InputStream.ReadAsync(buffer)) > 0)
            {
                read += n;
            }

            Interlocked.Increment(ref _exports);
            Interlocked.Add(ref _bytes, read);
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
    }
}
