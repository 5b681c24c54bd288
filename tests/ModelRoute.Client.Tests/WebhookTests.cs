using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using ModelRoute.Client.Tests.Infrastructure;
using ModelRoute.Tests.Infrastructure;

namespace ModelRoute.Client.Tests;

public sealed class WebhookVerifierTests
{
    // The Standard Webhooks specification's test vector.
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private const string Id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    private const long Timestamp = 1614265330;
    private const string Body = """{"test": 2432232314}""";
    private const string Signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    private static WebhookVerifier At(long unix, params string[] secrets) =>
        new(secrets.Length == 0 ? [Secret] : secrets, timeProvider: new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(unix)));

    [Fact]
    public void Signs_and_verifies_the_Standard_Webhooks_test_vector()
    {
        WebhookVerifier.Sign(Secret, Id, Timestamp, Body).ShouldBe(Signature);
        At(Timestamp).Verify(Id, "1614265330", Signature, Body);
        At(Timestamp).TryVerify(Id, "1614265330", Signature, Body).ShouldBeTrue();
    }

    [Fact]
    public void Refuses_a_changed_body_id_or_timestamp_and_a_wrong_secret()
    {
        var verifier = At(Timestamp);
        verifier.TryVerify(Id, "1614265330", Signature, """{"test": 2432232315}""").ShouldBeFalse();
        verifier.TryVerify("msg_other", "1614265330", Signature, Body).ShouldBeFalse();
        verifier.TryVerify(Id, "1614265331", Signature, Body).ShouldBeFalse();
        At(Timestamp, "whsec_" + Convert.ToBase64String(new byte[24])).TryVerify(Id, "1614265330", Signature, Body).ShouldBeFalse();
        Should.Throw<WebhookVerificationException>(() => verifier.Verify(Id, "1614265330", "v1,bm90IGl0", Body)).Message.ShouldContain("No webhook signature");
    }

    [Fact]
    public void Honours_the_timestamp_tolerance_both_ways()
    {
        At(Timestamp + 299).TryVerify(Id, "1614265330", Signature, Body).ShouldBeTrue();
        Should.Throw<WebhookVerificationException>(() => At(Timestamp + 301).Verify(Id, "1614265330", Signature, Body)).Message.ShouldContain("too old");
        Should.Throw<WebhookVerificationException>(() => At(Timestamp - 301).Verify(Id, "1614265330", Signature, Body)).Message.ShouldContain("future");
        new WebhookVerifier([Secret], TimeSpan.FromHours(1), new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(Timestamp + 3000)))
            .TryVerify(Id, "1614265330", Signature, Body).ShouldBeTrue();
        At(Timestamp).TryVerify(Id, "not-a-time", Signature, Body).ShouldBeFalse();
    }

    [Fact]
    public void Accepts_any_of_several_signatures_and_several_secrets()
    {
        var other = "whsec_" + Convert.ToBase64String(Enumerable.Range(1, 24).Select(i => (byte)i).ToArray());
        var otherSignature = WebhookVerifier.Sign(other, Id, Timestamp, Body);

        // A rotation: the gateway signs with old and new; a verifier knowing either accepts.
        At(Timestamp).TryVerify(Id, "1614265330", $"{otherSignature} {Signature}", Body).ShouldBeTrue();
        At(Timestamp, other).TryVerify(Id, "1614265330", $"{otherSignature} {Signature}", Body).ShouldBeTrue();
        At(Timestamp, other, Secret).TryVerify(Id, "1614265330", Signature, Body).ShouldBeTrue();

        // Unknown versions and garbage are skipped, not fatal.
        At(Timestamp).TryVerify(Id, "1614265330", $"v2,abc v1,!!! {Signature}", Body).ShouldBeTrue();
        At(Timestamp).TryVerify(Id, "1614265330", "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", Body).ShouldBeFalse();
        At(Timestamp).TryVerify(null, "1614265330", Signature, Body).ShouldBeFalse();
        At(Timestamp).TryVerify(Id, "1614265330", "", Body).ShouldBeFalse();
    }
}

/// <summary>Real deliveries from the gateway, verified by the SDK and by the ASP.NET Core helper.</summary>
public sealed class WebhookDeliveryTests(ClientGatewayFixture fixture) : IClassFixture<ClientGatewayFixture>
{
    private ClientGateway Gateway => fixture.Gateway;

    private static SubmitExecutionRequest Text(string? webhookUrl = null) => new()
    {
        Model = "sim/text",
        Input = JsonDocument.Parse("""{"messages":[{"role":"user","content":"Call me back"}]}""").RootElement,
        WebhookUrl = webhookUrl,
    };

    [Fact]
    public async Task The_verifier_accepts_real_deliveries_signed_with_the_default_secret()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);
        await using var receiver = await WebhookReceiver.StartAsync();
        var secret = await client.GetDefaultWebhookSecretAsync();
        secret.ShouldStartWith("whsec_");

        var submitted = await client.SubmitAsync(Text(receiver.Url()));
        var delivery = await EventuallyAsync(() => receiver.Received.FirstOrDefault());
        var verifier = new WebhookVerifier(secret);
        var e = verifier.VerifyEvent(delivery.Headers["webhook-id"], delivery.Headers["webhook-timestamp"], delivery.Signature, delivery.Body);
        e.Type.ShouldBe("execution.completed");
        e.Id.ShouldBe(delivery.Id);
        e.Data.Id.ShouldBe(submitted.Id);
        e.Data.Status.ShouldBe(ExecutionStatuses.Completed);
        e.Data.Output.ShouldNotBeNull();

        verifier.TryVerify(delivery.Id, delivery.Headers["webhook-timestamp"], delivery.Signature, delivery.Body + " ").ShouldBeFalse();
        new WebhookVerifier("whsec_" + Convert.ToBase64String(new byte[24])).TryVerify(delivery.Id, delivery.Headers["webhook-timestamp"], delivery.Signature, delivery.Body).ShouldBeFalse();
    }

    [Fact]
    public async Task The_ASP_NET_Core_helper_verifies_real_deliveries_and_hands_over_typed_events()
    {
        var (_, key) = await Gateway.NewAccountAsync();
        using var client = Gateway.Client(key);

        // Register first (the gateway does not call the URL yet), then serve it with the secret it gave.
        var port = FreePort();
        var url = $"http://127.0.0.1:{port}/hooks/modelroute";
        var endpoint = await client.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest(url, ["execution.completed", "execution.processing"], Description: "sdk test"));
        endpoint.Id.ShouldStartWith("we_");
        endpoint.Url.ShouldBe(url);
        endpoint.Secret!.ShouldStartWith("whsec_");
        endpoint.Events.ShouldBe(["execution.completed", "execution.processing"], ignoreOrder: true);

        await using var app = BuildApp(out var events, endpoint.Secret!, port);
        await app.StartAsync();

        // The helper refuses what does not verify.
        using (var http = new HttpClient())
        {
            using var forged = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent("""{"id":"evt_x","type":"execution.completed","data":{}}""") };
            forged.Headers.Add("webhook-id", "evt_x");
            forged.Headers.Add("webhook-timestamp", DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
            forged.Headers.Add("webhook-signature", WebhookVerifier.Sign("whsec_" + Convert.ToBase64String(new byte[24]), "evt_x", DateTimeOffset.UtcNow.ToUnixTimeSeconds(), "{}"));
            ((int)(await http.SendAsync(forged)).StatusCode).ShouldBe(400);
        }

        events.ShouldBeEmpty();
        var submitted = await client.SubmitAsync(Text());
        await EventuallyAsync(() => events.FirstOrDefault(e => e.Type == "execution.completed"));
        var completed = events.Single(e => e.Type == "execution.completed");
        completed.Data.Id.ShouldBe(submitted.Id);
        completed.Data.Status.ShouldBe(ExecutionStatuses.Completed);
        completed.Data.Output.ShouldNotBeNull();
        events.ShouldContain(e => e.Type == "execution.processing" && e.Data.Id == submitted.Id);

        await client.DeleteWebhookEndpointAsync(endpoint.Id);
        (await Should.ThrowAsync<ModelRouteApiException>(() => client.DeleteWebhookEndpointAsync(endpoint.Id))).Code.ShouldBe("NOT_FOUND");
        await app.StopAsync();
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static WebApplication BuildApp(out ConcurrentQueue<ExecutionEvent> events, string secret, int port)
    {
        var queue = new ConcurrentQueue<ExecutionEvent>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        app.MapModelRouteWebhooks("/hooks/modelroute", secret, e =>
        {
            queue.Enqueue(e);
            return Task.CompletedTask;
        });
        events = queue;
        return app;
    }

    private static async Task<T> EventuallyAsync<T>(Func<T?> probe, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            if (probe() is { } value)
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ShouldAssertException("Nothing arrived in time.");
            }

            await Task.Delay(50);
        }
    }
}
