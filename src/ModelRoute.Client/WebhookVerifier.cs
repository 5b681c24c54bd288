using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ModelRoute.Client;

/// <summary>A webhook whose signature or timestamp did not check out.</summary>
public sealed class WebhookVerificationException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why verification failed.</param>
    public WebhookVerificationException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// Verifies webhooks signed per the Standard Webhooks specification, as the gateway signs them: <c>webhook-signature</c>
/// holds one or more space-separated <c>v1,</c> + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")) and
/// <c>webhook-timestamp</c> must be within the tolerance of now. Several secrets may be given (during a rotation).
/// </summary>
public sealed class WebhookVerifier
{
    /// <summary>The header with the message (event) id.</summary>
    public const string IdHeader = "webhook-id";

    /// <summary>The header with the unix timestamp of the attempt.</summary>
    public const string TimestampHeader = "webhook-timestamp";

    /// <summary>The header with the signatures.</summary>
    public const string SignatureHeader = "webhook-signature";

    private const string SecretPrefix = "whsec_";
    private readonly IReadOnlyList<byte[]> _keys;
    private readonly TimeProvider _time;

    /// <summary>Creates a verifier for one secret.</summary>
    /// <param name="secret">The signing secret, <c>whsec_</c> + base64 (the prefix is optional).</param>
    public WebhookVerifier(string secret)
        : this([secret])
    {
    }

    /// <summary>Creates a verifier accepting any of several secrets.</summary>
    /// <param name="secrets">The signing secrets, <c>whsec_</c> + base64 (the prefix is optional).</param>
    /// <param name="tolerance">How far the timestamp may be from now; default 5 minutes.</param>
    /// <param name="timeProvider">The clock; default the system's.</param>
    public WebhookVerifier(IEnumerable<string> secrets, TimeSpan? tolerance = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(secrets);
        _keys = [.. secrets.Select(Key)];
        if (_keys.Count == 0)
        {
            throw new ArgumentException("Give at least one secret.", nameof(secrets));
        }

        Tolerance = tolerance ?? TimeSpan.FromMinutes(5);
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>How far the timestamp may be from now, either way.</summary>
    public TimeSpan Tolerance { get; }

    /// <summary>Signs a message as the gateway would (for tests and tools).</summary>
    /// <param name="secret">The secret, <c>whsec_</c> + base64.</param>
    /// <param name="id">The message id.</param>
    /// <param name="timestamp">The unix timestamp.</param>
    /// <param name="body">The exact body.</param>
    /// <returns>The signature, <c>v1,</c> + base64.</returns>
    public static string Sign(string secret, string id, long timestamp, string body) =>
        "v1," + Convert.ToBase64String(HMACSHA256.HashData(Key(secret), Encoding.UTF8.GetBytes($"{id}.{timestamp.ToString(CultureInfo.InvariantCulture)}.{body}")));

    /// <summary>Verifies a webhook; throws when it does not check out.</summary>
    /// <param name="id">The <c>webhook-id</c> header.</param>
    /// <param name="timestamp">The <c>webhook-timestamp</c> header.</param>
    /// <param name="signature">The <c>webhook-signature</c> header.</param>
    /// <param name="body">The exact body as received.</param>
    /// <exception cref="WebhookVerificationException">A header is missing, the timestamp is out of tolerance or no signature matches.</exception>
    public void Verify(string? id, string? timestamp, string? signature, string body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (string.IsNullOrEmpty(id) || string.IsNullOrEmpty(timestamp) || string.IsNullOrEmpty(signature))
        {
            throw new WebhookVerificationException("Missing webhook-id, webhook-timestamp or webhook-signature.");
        }

        if (!long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
        {
            throw new WebhookVerificationException("webhook-timestamp is not a unix time.");
        }

        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        if (Math.Abs(now - seconds) > (long)Tolerance.TotalSeconds)
        {
            throw new WebhookVerificationException(seconds < now ? "The webhook timestamp is too old." : "The webhook timestamp is in the future.");
        }

        var signed = Encoding.UTF8.GetBytes($"{id}.{seconds.ToString(CultureInfo.InvariantCulture)}.{body}");
        var expected = _keys.Select(k => HMACSHA256.HashData(k, signed)).ToList();
        foreach (var candidate in signature.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var comma = candidate.IndexOf(',', StringComparison.Ordinal);
            if (comma < 0 || candidate[..comma] != "v1")
            {
                continue;
            }

            byte[] given;
            try
            {
                given = Convert.FromBase64String(candidate[(comma + 1)..]);
            }
            catch (FormatException)
            {
                continue;
            }

            if (expected.Any(e => CryptographicOperations.FixedTimeEquals(e, given)))
            {
                return;
            }
        }

        throw new WebhookVerificationException("No webhook signature matches.");
    }

    /// <summary>Verifies a webhook and reads its body.</summary>
    /// <param name="id">The <c>webhook-id</c> header.</param>
    /// <param name="timestamp">The <c>webhook-timestamp</c> header.</param>
    /// <param name="signature">The <c>webhook-signature</c> header.</param>
    /// <param name="body">The exact body as received.</param>
    /// <returns>The event.</returns>
    /// <exception cref="WebhookVerificationException">It does not check out, or the body is not an event.</exception>
    public ExecutionEvent VerifyEvent(string? id, string? timestamp, string? signature, string body)
    {
        Verify(id, timestamp, signature, body);
        try
        {
            return JsonSerializer.Deserialize<ExecutionEvent>(body, ModelRouteJson.SerializerOptions)
                ?? throw new WebhookVerificationException("The webhook body is not an event.");
        }
        catch (JsonException e)
        {
            throw new WebhookVerificationException("The webhook body is not an event: " + e.Message);
        }
    }

    /// <summary>Verifies a webhook without throwing.</summary>
    /// <param name="id">The <c>webhook-id</c> header.</param>
    /// <param name="timestamp">The <c>webhook-timestamp</c> header.</param>
    /// <param name="signature">The <c>webhook-signature</c> header.</param>
    /// <param name="body">The exact body as received.</param>
    /// <returns>True when it checks out.</returns>
    public bool TryVerify(string? id, string? timestamp, string? signature, string body)
    {
        try
        {
            Verify(id, timestamp, signature, body);
            return true;
        }
        catch (WebhookVerificationException)
        {
            return false;
        }
    }

    private static byte[] Key(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        try
        {
            return Convert.FromBase64String(secret.StartsWith(SecretPrefix, StringComparison.Ordinal) ? secret[SecretPrefix.Length..] : secret);
        }
        catch (FormatException)
        {
            throw new ArgumentException("A webhook secret is whsec_ followed by base64.", nameof(secret));
        }
    }
}
