using System.Security.Cryptography;
using NSec.Cryptography;

namespace ModelRoute.Server.Providers.Fal;

/// <summary>
/// fal's webhook signature (docs/providers/fal.md): <c>X-Fal-Webhook-Signature</c> is the hex ED25519 signature of
/// request id, user id, timestamp and the hex SHA-256 of the raw body, joined by newlines, under one of the keys of
/// fal's JWKS; the timestamp must be within five minutes. The key set is fetched on first use and kept for
/// <see cref="KeysLifetime"/>; a signature no kept key verifies fetches it again (a key rotation), at most once per
/// <see cref="MinRefetch"/>, so a flood of bad signatures cannot turn into a flood of fetches.
/// </summary>
public sealed partial class FalWebhookVerifier(string jwksUrl, IHttpClientFactory httpClients, TimeProvider time, ILogger logger)
{
    public const string DefaultJwksUrl = "https://rest.alpha.fal.ai/.well-known/jwks.json";
    public const string HttpClientName = "fal-jwks";

    public static readonly TimeSpan KeysLifetime = TimeSpan.FromHours(1);
    public static readonly TimeSpan MinRefetch = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(5);
    private const int MaxJwksBytes = 64 * 1024;
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _fetching = new(1, 1);
    private volatile KeySet? _keys;
    private DateTimeOffset _lastTry = DateTimeOffset.MinValue;

    /// <summary>Whether the callback's headers carry a fresh signature of <paramref name="rawBody"/> by one of fal's keys.</summary>
    public async Task<bool> VerifyAsync(IReadOnlyDictionary<string, string> headers, string rawBody, CancellationToken cancellationToken)
    {
        if (Message(headers, rawBody, time.GetUtcNow()) is not var (message, signature))
        {
            return false;
        }

        var keys = _keys;
        if (keys is null || time.GetUtcNow() - keys.FetchedAt >= KeysLifetime)
        {
            keys = await RefreshAsync(keys, cancellationToken);
        }

        if (keys is not null && keys.Verifies(message, signature))
        {
            return true;
        }

        // Perhaps signed by a key published since the set was fetched: look once more.
        var newer = await RefreshAsync(keys, cancellationToken);
        return newer is not null && !ReferenceEquals(newer, keys) && newer.Verifies(message, signature);
    }

    /// <summary>The signed message and the signature, or null when a header is missing or malformed or the timestamp is stale.</summary>
    internal static (byte[] Message, byte[] Signature)? Message(IReadOnlyDictionary<string, string> headers, string rawBody, DateTimeOffset now)
    {
        if (!headers.TryGetValue("x-fal-webhook-request-id", out var requestId) || requestId.Length == 0
            || !headers.TryGetValue("x-fal-webhook-user-id", out var userId) || userId.Length == 0
            || !headers.TryGetValue("x-fal-webhook-timestamp", out var stamp)
            || !long.TryParse(stamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            || !headers.TryGetValue("x-fal-webhook-signature", out var hex) || hex.Length != 128)
        {
            return null;
        }

        if (seconds > DateTimeOffset.MaxValue.ToUnixTimeSeconds() || (now - DateTimeOffset.FromUnixTimeSeconds(seconds)).Duration() > Tolerance)
        {
            return null;
        }

        byte[] signature;
        try
        {
            signature = Convert.FromHexString(hex);
        }
        catch (FormatException)
        {
            return null;
        }

        var digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(rawBody)));
        return (Encoding.UTF8.GetBytes($"{requestId}\n{userId}\n{stamp}\n{digest}"), signature);
    }

    /// <summary>
    /// Fetches the key set, unless another caller did since <paramref name="seen"/> was read or the last try was less
    /// than <see cref="MinRefetch"/> ago. When the fetch fails the set kept (if any) stays, and is returned.
    /// </summary>
    private async Task<KeySet?> RefreshAsync(KeySet? seen, CancellationToken cancellationToken)
    {
        await _fetching.WaitAsync(cancellationToken);
        try
        {
            var current = _keys;
            var now = time.GetUtcNow();
            if (!ReferenceEquals(current, seen) || now - _lastTry < MinRefetch)
            {
                return current;
            }

            _lastTry = now;
            try
            {
                var fetched = await FetchAsync(cancellationToken);
                _keys = fetched;
                return fetched;
            }
            catch (Exception ex) when (ex is HttpRequestException or JsonException or InvalidDataException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                LogJwksFailed(logger, jwksUrl, ex.GetType().Name, ex.Message);
                return current;
            }
        }
        finally
        {
            _fetching.Release();
        }
    }

    private async Task<KeySet> FetchAsync(CancellationToken cancellationToken)
    {
        using var client = httpClients.CreateClient(HttpClientName);
        using var timeout = new CancellationTokenSource(FetchTimeout, time);
        using var both = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        cancellationToken = both.Token;
        using var response = await client.GetAsync(jwksUrl, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        var buffer = new byte[MaxJwksBytes + 1];
        var length = 0;
        for (int read; length < buffer.Length && (read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0;)
        {
            length += read;
        }

        if (length > MaxJwksBytes)
        {
            throw new InvalidDataException($"The key set is larger than {MaxJwksBytes} bytes.");
        }

        using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
        var keys = new List<PublicKey>();
        if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("keys", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var jwk in list.EnumerateArray())
            {
                if (Ed25519Key(jwk) is { } key)
                {
                    keys.Add(key);
                }
            }
        }

        LogJwksFetched(logger, keys.Count, jwksUrl);
        return new KeySet(keys, time.GetUtcNow());
    }

    /// <summary>An <c>OKP</c>/<c>Ed25519</c> JWK's public key (<c>x</c>, base64url); null for any other key.</summary>
    private static PublicKey? Ed25519Key(JsonElement jwk)
    {
        if (jwk.ValueKind != JsonValueKind.Object
            || !jwk.TryGetProperty("kty", out var kty) || kty.ValueKind != JsonValueKind.String || kty.GetString() != "OKP"
            || !jwk.TryGetProperty("crv", out var crv) || crv.ValueKind != JsonValueKind.String || crv.GetString() != "Ed25519"
            || !jwk.TryGetProperty("x", out var x) || x.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        try
        {
            var raw = Convert.FromBase64String(Base64(x.GetString()!));
            return PublicKey.TryImport(SignatureAlgorithm.Ed25519, raw, KeyBlobFormat.RawPublicKey, out var key) ? key : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static string Base64(string base64Url)
    {
        var s = base64Url.Replace('-', '+').Replace('_', '/');
        return s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '=');
    }

    private sealed class KeySet(List<PublicKey> keys, DateTimeOffset fetchedAt)
    {
        public DateTimeOffset FetchedAt { get; } = fetchedAt;

        public bool Verifies(byte[] message, byte[] signature) =>
            keys.Any(key => SignatureAlgorithm.Ed25519.Verify(key, message, signature));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Fetched {Count} fal webhook signing keys from {Url}")]
    private static partial void LogJwksFetched(ILogger logger, int count, string url);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not fetch fal's webhook signing keys from {Url} ({Error}: {Reason}); callbacks that no kept key verifies are refused")]
    private static partial void LogJwksFailed(ILogger logger, string url, string error, string reason);
}
