using System.Text.Json;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Webhooks;

/// <summary>
/// docs/webhooks.md#response-excerpts: each attempt keeps the first 1 KiB of what the receiver answered, as text, read
/// within the attempt's timeout and never waited for on a success.
/// </summary>
public sealed class ResponseExcerptTests : IAsyncLifetime
{
    private const int TimeoutMs = 2000;

    private readonly GatewayFactory _gateway = new(new Dictionary<string, string?>
    {
        ["ModelRoute:Webhooks:RetrySchedule:0"] = "00:00:00",
        ["ModelRoute:Webhooks:Timeout"] = "00:00:02",
    });

    private WebhookReceiver _receiver = null!;

    public async Task InitializeAsync() => _receiver = await WebhookReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _receiver.DisposeAsync();
    }

    [Fact]
    public async Task A_receiver_answering_500_with_a_text_body_has_that_body_on_the_attempt()
    {
        _receiver.Answer = (_, _) => ReceiverAnswer.Text(500, "database is down\nretry later"u8.ToArray());
        var attempt = await OnlyAttemptAsync("failed");

        attempt.GetProperty("status_code").GetInt32().ShouldBe(500);
        attempt.GetProperty("response_body").GetString().ShouldBe("database is down\nretry later");
        attempt.GetProperty("response_body_truncated").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public async Task A_body_over_1_KiB_is_cut_at_1024_bytes_and_flagged()
    {
        var body = string.Concat(Enumerable.Range(0, 300).Select(i => $"{i % 10}-ab"));
        _receiver.Answer = (_, _) => ReceiverAnswer.Text(503, Encoding.UTF8.GetBytes(body));
        var attempt = await OnlyAttemptAsync("failed");

        attempt.GetProperty("response_body").GetString().ShouldBe(body[..1024]);
        attempt.GetProperty("response_body_truncated").GetBoolean().ShouldBeTrue();
    }

    [Fact]
    public async Task A_successful_answers_short_body_is_kept_too()
    {
        _receiver.Answer = (_, _) => ReceiverAnswer.Text(200, """{"received":true}"""u8.ToArray());
        var attempt = await OnlyAttemptAsync("succeeded");

        attempt.GetProperty("response_body").GetString().ShouldBe("""{"received":true}""");
        attempt.GetProperty("response_body_truncated").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public async Task A_failed_answer_whose_body_never_ends_ends_within_the_timeout_with_what_arrived()
    {
        _receiver.Answer = (_, _) => ReceiverAnswer.NeverEnding(500);
        var attempt = await OnlyAttemptAsync("failed");

        attempt.GetProperty("status_code").GetInt32().ShouldBe(500);
        attempt.GetProperty("error").GetString().ShouldBe("The receiver answered 500.");
        attempt.GetProperty("response_body").GetString().ShouldBe("partial answer");
        attempt.GetProperty("response_body_truncated").GetBoolean().ShouldBeTrue();
        attempt.GetProperty("latency_ms").GetInt64().ShouldBeInRange(TimeoutMs - 200, TimeoutMs + 1500);
    }

    [Fact]
    public async Task A_successful_answer_whose_body_never_ends_is_not_waited_for()
    {
        _receiver.Answer = (_, _) => ReceiverAnswer.NeverEnding(200);
        var attempt = await OnlyAttemptAsync("succeeded");

        attempt.GetProperty("latency_ms").GetInt64().ShouldBeLessThan(TimeoutMs / 2);
    }

    [Fact]
    public async Task Invalid_utf8_and_nul_bytes_are_shown_as_replacement_characters_on_both_stores()
    {
        _receiver.Answer = (_, _) => ReceiverAnswer.Text(400, [(byte)'o', (byte)'k', 0xFF, 0xFE, 0x00, 0xC3, (byte)'!']);
        var attempt = await OnlyAttemptAsync("failed");

        attempt.GetProperty("response_body").GetString().ShouldBe("ok\uFFFD\uFFFD\uFFFD\uFFFD!");
        attempt.GetProperty("response_body_truncated").GetBoolean().ShouldBeFalse();
    }

    [Fact]
    public void A_character_cut_at_the_1024th_byte_is_left_out_rather_than_replaced()
    {
        var bytes = Encoding.UTF8.GetBytes(new string('a', 1023) + "é");
        bytes.Length.ShouldBe(1025);

        var excerpt = ResponseExcerpt.Decode(bytes, truncated: true);

        excerpt.Body.ShouldBe(new string('a', 1023));
        excerpt.Truncated.ShouldBeTrue();
    }

    /// <summary>Submits with the receiver as webhook_url and waits for the delivery to reach <paramref name="status"/>; its one attempt.</summary>
    private async Task<JsonElement> OnlyAttemptAsync(string status)
    {
        using var account = await _gateway.CreateAccountAsync();
        var submitted = await account.Client.SubmitTextAsync(extra: $$""","webhook_url":"{{_receiver.Url()}}" """);
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        JsonElement delivery = default;
        await Eventually.HoldsAsync(
            async () =>
            {
                var list = (await account.Client.GetApiAsync($"/v1/executions/{id}/webhook-deliveries")).Json.GetProperty("data");
                delivery = list.EnumerateArray().FirstOrDefault();
                return delivery.ValueKind != JsonValueKind.Undefined && delivery.GetProperty("status").GetString() != "pending";
            },
            "the delivery ended",
            20);
        delivery.GetProperty("status").GetString().ShouldBe(status);
        return delivery.GetProperty("attempt_log").EnumerateArray().ShouldHaveSingleItem();
    }
}
