using System.Security.Cryptography;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

public sealed class WebhookSignerTests
{
    // The test vector published with the Standard Webhooks specification (and used by its libraries' own tests).
    private const string VectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private const string VectorId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    private const long VectorTimestamp = 1614265330;
    private const string VectorBody = """{"test": 2432232314}""";
    private const string VectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    [Fact]
    public void Sign_reproduces_the_standard_webhooks_published_test_vector()
    {
        WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp, VectorBody).ShouldBe(VectorSignature);
    }

    [Fact]
    public void Sign_is_hmac_sha256_keyed_with_the_base64_part_of_the_secret_over_id_dot_timestamp_dot_body()
    {
        var key = Convert.FromBase64String(VectorSecret["whsec_".Length..]);
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{VectorId}.{VectorTimestamp}.{VectorBody}")));

        WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp, VectorBody).ShouldBe(expected);
    }

    [Fact]
    public void Sign_changes_when_any_signed_part_changes()
    {
        var signatures = new[]
        {
            WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp, VectorBody),
            WebhookSigner.Sign(VectorSecret, VectorId + "x", VectorTimestamp, VectorBody),
            WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp + 1, VectorBody),
            WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp, VectorBody + " "),
            WebhookSigner.Sign(WebhookSigner.NewSecret(), VectorId, VectorTimestamp, VectorBody),
        };

        signatures.Distinct().Count().ShouldBe(signatures.Length);
    }

    [Fact]
    public void Sign_encodes_the_body_as_utf8()
    {
        const string body = """{"text":"héllo — ☃ 🚀"}""";
        var key = Convert.FromBase64String(VectorSecret["whsec_".Length..]);
        var expected = "v1," + Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{VectorId}.{VectorTimestamp}.{body}")));

        WebhookSigner.Sign(VectorSecret, VectorId, VectorTimestamp, body).ShouldBe(expected);
    }

    [Fact]
    public void NewSecret_is_whsec_then_base64_of_24_random_bytes_and_differs_on_every_call()
    {
        var secrets = Enumerable.Range(0, 50).Select(_ => WebhookSigner.NewSecret()).ToList();

        foreach (var secret in secrets)
        {
            secret.ShouldStartWith("whsec_");
            var raw = secret["whsec_".Length..];
            raw.Length.ShouldBe(32); // 24 bytes → 32 base64 characters, no padding
            Convert.FromBase64String(raw).Length.ShouldBe(24);
        }

        secrets.Distinct(StringComparer.Ordinal).Count().ShouldBe(secrets.Count);
    }

    [Fact]
    public void A_new_secret_signs_in_a_way_the_vector_secret_does_not_verify()
    {
        var secret = WebhookSigner.NewSecret();

        var signature = WebhookSigner.Sign(secret, VectorId, VectorTimestamp, VectorBody);

        signature.ShouldStartWith("v1,");
        Convert.FromBase64String(signature["v1,".Length..]).Length.ShouldBe(32);
        signature.ShouldNotBe(VectorSignature);
    }

    [Fact]
    public void Header_with_two_secrets_carries_two_space_separated_signatures_each_verifying_with_its_secret()
    {
        var second = WebhookSigner.NewSecret();

        var header = WebhookSigner.Header([VectorSecret, second], VectorId, VectorTimestamp, VectorBody);

        var parts = header.Split(' ');
        parts.Length.ShouldBe(2);
        parts.ShouldAllBe(p => p.StartsWith("v1,", StringComparison.Ordinal));
        parts[0].ShouldBe(VectorSignature);
        parts[1].ShouldBe(WebhookSigner.Sign(second, VectorId, VectorTimestamp, VectorBody));
        Verifies(VectorSecret, header).ShouldBeTrue();
        Verifies(second, header).ShouldBeTrue();
        Verifies(WebhookSigner.NewSecret(), header).ShouldBeFalse();
    }

    [Fact]
    public void Header_with_one_secret_is_exactly_its_signature()
    {
        WebhookSigner.Header([VectorSecret], VectorId, VectorTimestamp, VectorBody).ShouldBe(VectorSignature);
    }

    /// <summary>How a receiver checks: any v1 signature in the header equal, in constant time, to its own.</summary>
    private static bool Verifies(string secret, string header)
    {
        var key = Convert.FromBase64String(secret["whsec_".Length..]);
        var expected = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes($"{VectorId}.{VectorTimestamp}.{VectorBody}"));
        return header.Split(' ')
            .Where(p => p.StartsWith("v1,", StringComparison.Ordinal))
            .Any(p => CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(p["v1,".Length..]), expected));
    }
}
