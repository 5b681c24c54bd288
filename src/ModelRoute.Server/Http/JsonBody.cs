using System.Buffers;
using Microsoft.AspNetCore.Http.Features;

namespace ModelRoute.Server.Http;

/// <summary>
/// Reads a request body as JSON ourselves, so that every way a body can be wrong (too big,
/// not JSON, too deep, wrong content type) becomes one of our problems rather than a framework 400.
/// </summary>
public static class JsonBody
{
    // Duplicate names are refused in every body (last-wins would let a second "amount_usd" or "url"
    // slip past whatever read the first); see docs/api.md, "Bad input".
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };

    public static async Task<(JsonDocument? Document, Problem? Problem)> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        var (document, problem, _) = await ReadWithRawAsync(request, maxBytes, cancellationToken);
        return (document, problem);
    }

    /// <summary>As <see cref="ReadAsync"/>, also giving the body's exact bytes (for signature checks).</summary>
    public static async Task<(JsonDocument? Document, Problem? Problem, ReadOnlyMemory<byte> Raw)> ReadWithRawAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        if (Precheck(request, maxBytes) is { } refused)
        {
            return (null, refused, default);
        }

        // Sized from Content-Length when there is one (plus a byte to see the end), so that a typical
        // submission of a few hundred bytes is one small array instead of a 16 KiB one per request.
        var buffer = new ArrayBufferWriter<byte>(request.ContentLength is { } length and >= 0 ? (int)length + 1 : 4096);
        try
        {
            while (true)
            {
                var memory = buffer.GetMemory();
                var read = await request.Body.ReadAsync(memory, cancellationToken);
                if (read == 0)
                {
                    break;
                }

                buffer.Advance(read);
                if (buffer.WrittenCount > maxBytes)
                {
                    return (null, TooLarge(maxBytes), default);
                }
            }
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return (null, TooLarge(maxBytes), default);
        }
        catch (Exception ex) when (ex is BadHttpRequestException or IOException && !cancellationToken.IsCancellationRequested)
        {
            // Broken framing: a bad chunk header, a chunk longer than declared, or the connection ending
            // before Content-Length bytes arrived; Kestrel reports a chunk size beyond 64 bits as a bare IOException.
            // The client sent no readable body, and nothing was stored.
            return (null, Problem.Validation("body", "The request body is malformed (bad chunked encoding or fewer bytes than Content-Length)."), default);
        }

        var (document, problem) = Parse(buffer);
        return (document, problem, document is null ? default : buffer.WrittenMemory);
    }

    /// <summary>What can be refused before a byte is read: the content type and a declared length over the limit.</summary>
    private static Problem? Precheck(HttpRequest request, long maxBytes)
    {
        if (request.ContentType is { Length: > 0 } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return new Problem(415, ErrorCodes.UnsupportedMediaType, "The body must be JSON (Content-Type: application/json).");
        }

        if (request.ContentLength > maxBytes)
        {
            return TooLarge(maxBytes);
        }

        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = maxBytes;
        }

        return null;
    }

    /// <summary>The body's bytes as a document under our rules (UTF-8, no duplicate names, numbers we can read).</summary>
    private static (JsonDocument? Document, Problem? Problem) Parse(ArrayBufferWriter<byte> buffer)
    {
        if (buffer.WrittenCount == 0)
        {
            return (null, Problem.Validation("body", "The request body is empty; a JSON object is required."));
        }

        if (!System.Text.Unicode.Utf8.IsValid(buffer.WrittenSpan))
        {
            return (null, Problem.Validation("body", "The body is not valid UTF-8."));
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(buffer.WrittenMemory, DocumentOptions);
        }
        catch (JsonException ex)
        {
            // A duplicate name is reported by the path of the name; anything else by the parser's message.
            return (null, JsonBodyRules.FindViolation(buffer.WrittenSpan) ?? Problem.Validation("body", $"The body is not valid JSON: {Sanitize(ex.Message)}"));
        }
        catch (InvalidOperationException)
        {
            // The duplicate-name check unescapes names, and a name such as "\ud800" decodes to no string.
            return (null, JsonBodyRules.FindViolation(buffer.WrittenSpan) ?? Problem.Validation("body", "The body contains an escaped unpaired surrogate (invalid Unicode)."));
        }

        if (!JsonBodyRules.PassesQuickCheck(buffer.WrittenSpan, DocumentOptions.MaxDepth))
        {
            document.Dispose();
            return (null, JsonBodyRules.FindViolation(buffer.WrittenSpan) ?? Problem.Validation("body", "The body holds a value that cannot be read."));
        }

        return (document, null);
    }

    private static Problem TooLarge(long maxBytes) => Problem.TooLarge($"The request body exceeds {maxBytes} bytes.");

    // JsonException messages quote path and position only, never body content; keep them short anyway.
    private static string Sanitize(string message) => message.Length > 200 ? message[..200] : message;
}
