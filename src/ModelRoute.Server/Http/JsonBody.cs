using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace ModelRoute.Server.Http;

/// <summary>
/// Reads a request body as JSON ourselves, so that every way a body can be wrong (too big,
/// not JSON, too deep, wrong content type) becomes one of our problems rather than a framework 400.
/// </summary>
public static class JsonBody
{
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 64 };

    public static async Task<(JsonDocument? Document, Problem? Problem)> ReadAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        var (document, problem, _) = await ReadWithRawAsync(request, maxBytes, cancellationToken);
        return (document, problem);
    }

    /// <summary>As <see cref="ReadAsync"/>, also giving the body's exact bytes (for signature checks).</summary>
    public static async Task<(JsonDocument? Document, Problem? Problem, ReadOnlyMemory<byte> Raw)> ReadWithRawAsync(HttpRequest request, long maxBytes, CancellationToken cancellationToken)
    {
        if (request.ContentType is { Length: > 0 } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, new Problem(415, ErrorCodes.UnsupportedMediaType, "The body must be JSON (Content-Type: application/json)."), default);
        }

        if (request.ContentLength > maxBytes)
        {
            return (null, TooLarge(maxBytes), default);
        }

        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = maxBytes;
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

        if (buffer.WrittenCount == 0)
        {
            return (null, Problem.Validation("body", "The request body is empty; a JSON object is required."), default);
        }

        if (!System.Text.Unicode.Utf8.IsValid(buffer.WrittenSpan))
        {
            return (null, Problem.Validation("body", "The body is not valid UTF-8."), default);
        }

        try
        {
            var document = JsonDocument.Parse(buffer.WrittenMemory, DocumentOptions);
            if (HasUnpairedSurrogates(buffer.WrittenSpan))
            {
                document.Dispose();
                return (null, Problem.Validation("body", "The body contains an escaped unpaired surrogate (invalid Unicode)."), default);
            }

            return (document, null, buffer.WrittenMemory);
        }
        catch (JsonException ex)
        {
            return (null, Problem.Validation("body", $"The body is not valid JSON: {Sanitize(ex.Message)}"), default);
        }
    }

    /// <summary>
    /// JSON allows escapes such as <c>"\ud800"</c> that decode to no valid string; the parser accepts
    /// them and reading the value later throws. Only escaped strings can hold one (raw UTF-8 was checked).
    /// </summary>
    private static bool HasUnpairedSurrogates(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = DocumentOptions.MaxDepth });
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
            {
                try
                {
                    reader.GetString();
                }
                catch (InvalidOperationException)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static Problem TooLarge(long maxBytes) => Problem.TooLarge($"The request body exceeds {maxBytes} bytes.");

    // JsonException messages quote path and position only, never body content; keep them short anyway.
    private static string Sanitize(string message) => message.Length > 200 ? message[..200] : message;
}
