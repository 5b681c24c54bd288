using System.Buffers;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// The start of a receiver's response body, kept on the attempt for the account to see what it answered
/// (docs/webhooks.md#response-excerpts): at most <see cref="MaxBytes"/> bytes, decoded as UTF-8 with invalid bytes
/// replaced, and whether the body went on past them.
/// </summary>
public readonly record struct ResponseExcerpt(string? Body, bool Truncated)
{
    public const int MaxBytes = 1024;

    public static readonly ResponseExcerpt None = new(null, false);

    /// <summary>
    /// Reads at most <see cref="MaxBytes"/> + 1 bytes (the one more says the body was cut). A failed delivery's body is
    /// waited for until it ends or <paramref name="timeout"/> (the attempt's own) fires, keeping what arrived; a
    /// successful one's only as far as it has already arrived, so that a fast delivery never waits on its body.
    /// Throws only when <paramref name="stopping"/> is cancelled.
    /// </summary>
    public static async Task<ResponseExcerpt> ReadAsync(HttpContent content, bool waitForBody, CancellationToken timeout, CancellationToken stopping)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(MaxBytes + 1);
        try
        {
            var (read, ended) = await ReadIntoAsync(content, buffer, waitForBody, timeout, stopping);
            return read == 0 ? None : Decode(buffer.AsSpan(0, read), truncated: !ended || read > MaxBytes);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task<(int Read, bool Ended)> ReadIntoAsync(HttpContent content, byte[] buffer, bool waitForBody, CancellationToken timeout, CancellationToken stopping)
    {
        var read = 0;
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(timeout);
            await using var stream = await content.ReadAsStreamAsync(stop.Token);
            while (read <= MaxBytes)
            {
                var next = stream.ReadAsync(buffer.AsMemory(read, MaxBytes + 1 - read), stop.Token);
                if (!waitForBody && !next.IsCompleted)
                {
                    // Not here yet: stop waiting (the connection is closed rather than drained).
                    await stop.CancelAsync();
                }

                var n = await next;
                if (n == 0)
                {
                    return (read, true);
                }

                read += n;
            }
        }
        catch (Exception ex) when (!stopping.IsCancellationRequested && ex is OperationCanceledException or IOException or HttpRequestException)
        {
            // The timeout, a reset or our own stop: what arrived is kept.
        }

        return (read, false);
    }

    /// <summary>
    /// UTF-8 with invalid bytes as U+FFFD; a character cut at the end is left out rather than shown as one. NUL is
    /// replaced too: PostgreSQL's text cannot hold it.
    /// </summary>
    public static ResponseExcerpt Decode(ReadOnlySpan<byte> bytes, bool truncated)
    {
        var kept = bytes[..Math.Min(bytes.Length, MaxBytes)];
        var decoder = Encoding.UTF8.GetDecoder();
        var chars = new char[decoder.GetCharCount(kept, flush: !truncated)];
        var count = decoder.GetChars(kept, chars, flush: !truncated);
        return new ResponseExcerpt(new string(chars, 0, count).Replace('\0', '\uFFFD'), truncated);
    }
}
