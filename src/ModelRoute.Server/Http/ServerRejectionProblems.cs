using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;

namespace ModelRoute.Server.Http;

/// <summary>
/// Gives the web server's own rejections (a request it could not parse: bad Content-Length, headers too large, a
/// request line too long, <c>%00</c> in the path) a problem body (docs/api.md, "Bad input"). Kestrel writes those
/// itself, as a bare status with <c>Content-Length: 0</c> and <c>Connection: close</c>. Only bytes written while no
/// request of the connection is in the gateway's pipeline are looked at, so they are Kestrel's alone; the gateway's
/// own responses pass straight through, uncopied.
/// </summary>
public static class ServerRejectionProblems
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ConnectionState> Connections = new(StringComparer.Ordinal);

    /// <summary>The connection middleware: wraps the connection's output with one that can rewrite a bare rejection.</summary>
    public static ConnectionDelegate Wrap(ConnectionDelegate next) => async connection =>
    {
        var state = new ConnectionState();
        Connections[connection.ConnectionId] = state;
        var transport = connection.Transport;
        connection.Transport = new DuplexPipe(transport.Input, new RejectionWriter(transport.Output, state));
        try
        {
            await next(connection);
        }
        finally
        {
            connection.Transport = transport;
            Connections.TryRemove(connection.ConnectionId, out _);
        }
    };

    /// <summary>The first middleware: marks the connection busy until the response has been written in full.</summary>
    public static Task MarkRequestAsync(HttpContext context, RequestDelegate next)
    {
        if (Connections.TryGetValue(context.Connection.Id, out var state))
        {
            // Completed runs after the response's last byte was written and before the next request is read.
            Interlocked.Increment(ref state.InPipeline);
            context.Response.OnCompleted(static s =>
            {
                Interlocked.Decrement(ref ((ConnectionState)s).InPipeline);
                return Task.CompletedTask;
            }, state);
        }

        return next(context);
    }

    /// <summary>The rejection with a problem body, or null when these bytes are not exactly a bare 4xx rejection.</summary>
    public static byte[]? Rewrite(ReadOnlySpan<byte> written)
    {
        var text = Encoding.Latin1.GetString(written);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0 || end + 4 != text.Length || !(text.StartsWith("HTTP/1.1 4", StringComparison.Ordinal) || text.StartsWith("HTTP/1.0 4", StringComparison.Ordinal)))
        {
            return null;
        }

        var lines = text[..end].Split("\r\n");
        if (!int.TryParse(lines[0].AsSpan(9, 3), out var status) || status is not (400 or 413 or 414 or 431)
            || !lines.Contains("Content-Length: 0", StringComparer.OrdinalIgnoreCase) || !lines.Contains("Connection: close", StringComparer.OrdinalIgnoreCase)
            || lines.Any(l => l.StartsWith("Content-Type:", StringComparison.OrdinalIgnoreCase) || l.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        var problem = new Problem(status, status == 413 ? ErrorCodes.PayloadTooLarge : ErrorCodes.ValidationError, status switch
        {
            414 => "The request line is too long.",
            431 => "The request headers are too large.",
            413 => "The request body is too large.",
            _ => "The request is malformed at the HTTP level (request line, headers or framing).",
        });
        var body = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(problem.ToProblemDetails(), System.Text.Json.JsonSerializerOptions.Web);
        var head = new StringBuilder(lines[0]).Append("\r\nContent-Type: application/problem+json\r\nContent-Length: ").Append(body.Length);
        foreach (var line in lines.Skip(1).Where(l => !l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)))
        {
            head.Append("\r\n").Append(line);
        }

        return [.. Encoding.Latin1.GetBytes(head.Append("\r\n\r\n").ToString()), .. body];
    }

    private sealed class ConnectionState
    {
        public int InPipeline;
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>
    /// Passes writes through while a request is in the pipeline; otherwise collects them until the flush and
    /// rewrites them if they are exactly a bare rejection. Kestrel writes nothing else between requests.
    /// </summary>
    private sealed class RejectionWriter(PipeWriter inner, ConnectionState state) : PipeWriter
    {
        private ArrayBufferWriter<byte>? _held;
        private bool _holding;

        public override void Advance(int bytes)
        {
            if (_holding)
            {
                _held!.Advance(bytes);
            }
            else
            {
                inner.Advance(bytes);
            }
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => Hold() ? _held!.GetMemory(sizeHint) : inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => Hold() ? _held!.GetSpan(sizeHint) : inner.GetSpan(sizeHint);

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes + (_holding ? _held!.WrittenCount : 0);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null)
        {
            Release();
            inner.Complete(exception);
        }

        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            Release();
            await inner.CompleteAsync(exception);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
        {
            Release();
            return inner.FlushAsync(cancellationToken);
        }

        /// <summary>Whether this write is collected: only when no request is in the pipeline (or one write already is).</summary>
        private bool Hold()
        {
            if (!_holding && Volatile.Read(ref state.InPipeline) == 0)
            {
                _held ??= new ArrayBufferWriter<byte>(256);
                _holding = true;
            }

            return _holding;
        }

        private void Release()
        {
            if (!_holding)
            {
                return;
            }

            _holding = false;
            var written = _held!.WrittenSpan;
            if (written.Length > 0)
            {
                inner.Write(Rewrite(written) ?? written);
            }

            _held.Clear();
        }
    }
}
