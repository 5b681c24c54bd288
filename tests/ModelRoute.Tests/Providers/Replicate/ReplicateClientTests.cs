using ModelRoute.Server.Providers.Replicate;
using ModelRoute.Server.Webhooks;

namespace ModelRoute.Tests.Providers.Replicate;

/// <summary>
/// The fake must be Replicate as its official client sees it: the <c>replicate</c> npm package
/// creates, reads and cancels predictions against it, gets an <c>ApiError</c> with the status on
/// a bad key, and its <c>validateWebhook</c> accepts the fake's signed webhooks.
/// </summary>
public sealed class ReplicateClientTests
{
    public const string ClientPackage = "replicate@1.4.0";

    private const string Script = """
        'use strict';
        const http = require('http');
        const Replicate = require('replicate');
        const { validateWebhook } = require('replicate');
        const [base, key, secret] = process.argv.slice(2);

        (async () => {
          const out = {};
          // A receiver for the completed webhook, checked with the SDK's own validator.
          let resolveHook;
          const hook = new Promise((resolve) => { resolveHook = resolve; });
          const server = http.createServer((req, res) => {
            let body = '';
            req.on('data', (c) => { body += c; });
            req.on('end', async () => {
              const valid = await validateWebhook({ headers: req.headers, body }, secret);
              const wrong = await validateWebhook({ headers: req.headers, body }, 'whsec_' + Buffer.from('some-other-secret').toString('base64'));
              res.writeHead(200); res.end();
              resolveHook({ valid, wrong, prediction: JSON.parse(body) });
            });
          });
          await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
          const webhook = `http://127.0.0.1:${server.address().port}/hook`;

          const replicate = new Replicate({ auth: key, baseUrl: base + '/v1' });
          const created = await replicate.predictions.create({
            model: 'black-forest-labs/flux-schnell', input: { prompt: 'sdk', num_outputs: 2 },
            webhook, webhook_events_filter: ['completed'],
          });
          out.created = { id: created.id, status: created.status, get: created.urls.get, cancel: created.urls.cancel, model: created.model };

          const versioned = await replicate.predictions.create({ version: '5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa', input: { prompt: 'v' } });
          out.versioned = versioned.version;

          let p = created;
          for (let i = 0; i < 200 && !['succeeded', 'failed', 'canceled'].includes(p.status); i++) {
            await new Promise((r) => setTimeout(r, 50));
            p = await replicate.predictions.get(created.id);
          }
          out.done = { status: p.status, output: p.output, predict_time: p.metrics && p.metrics.predict_time, completed_at: p.completed_at };

          const hooked = await hook;
          out.webhook = { valid: hooked.valid, wrong: hooked.wrong, id: hooked.prediction.id, status: hooked.prediction.status };
          server.close();

          const slow = await replicate.predictions.create({ model: 'acme/slow', input: { prompt: 'slow' } });
          const cancelled = await replicate.predictions.cancel(slow.id);
          out.cancelled = { id: cancelled.id, status: cancelled.status, asked: slow.id };

          try {
            await new Replicate({ auth: 'r8_not_the_key', baseUrl: base + '/v1' }).predictions.create({ model: 'a/b', input: {} });
            out.error = null;
          } catch (e) {
            out.error = { name: e.name, status: e.response && e.response.status, message: e.message };
          }
          console.log(JSON.stringify(out));
        })().catch((e) => { console.error(e); process.exit(1); });
        """;

    [Fact]
    public async Task The_official_replicate_client_works_against_the_fake()
    {
        await using var fake = await FakeReplicate.StartAsync();
        fake.Script = input => input["prompt"]?.GetValue<string>() == "slow"
            ? new PredictionScript(TimeSpan.FromSeconds(60))
            : new PredictionScript(TimeSpan.FromMilliseconds(200));

        var result = await SdkScript.RunAsync(ClientPackage, Script, fake.BaseUrl, FakeReplicate.ApiKey, FakeReplicate.WebhookSecret);

        var created = result.GetProperty("created");
        created.GetProperty("status").GetString().ShouldBe("starting");
        created.GetProperty("model").GetString().ShouldBe("black-forest-labs/flux-schnell");
        var id = created.GetProperty("id").GetString()!;
        created.GetProperty("get").GetString().ShouldBe($"{fake.BaseUrl}/v1/predictions/{id}");
        result.GetProperty("versioned").GetString().ShouldBe("5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa");
        var done = result.GetProperty("done");
        done.GetProperty("status").GetString().ShouldBe("succeeded");
        done.GetProperty("output").GetArrayLength().ShouldBe(2);
        done.GetProperty("predict_time").GetDouble().ShouldBeGreaterThan(0);
        var webhook = result.GetProperty("webhook");
        webhook.GetProperty("valid").GetBoolean().ShouldBeTrue();
        webhook.GetProperty("wrong").GetBoolean().ShouldBeFalse();
        webhook.GetProperty("id").GetString().ShouldBe(id);
        webhook.GetProperty("status").GetString().ShouldBe("succeeded");
        var cancelled = result.GetProperty("cancelled");
        cancelled.GetProperty("status").GetString().ShouldBe("canceled");
        fake.Cancels.ShouldContain(cancelled.GetProperty("asked").GetString()!);
        var error = result.GetProperty("error");
        error.GetProperty("name").GetString().ShouldBe("ApiError");
        error.GetProperty("status").GetInt32().ShouldBe(401);
        error.GetProperty("message").GetString()!.ShouldContain("valid authentication token");
        fake.Requests.ShouldContain(r => r.Path == "/v1/models/black-forest-labs/flux-schnell/predictions" && r.Authorization == "Bearer " + FakeReplicate.ApiKey);
    }

    [Fact]
    public void Signatures_verify_with_rotation_and_are_refused_when_stale_tampered_or_missing()
    {
        var now = DateTimeOffset.UtcNow;
        var ts = now.ToUnixTimeSeconds();
        const string Body = """{"id":"p1","status":"succeeded"}""";
        var other = WebhookSigner.NewSecret();
        Dictionary<string, string> Headers(long timestamp, string signature) => new()
        {
            ["webhook-id"] = "msg_1",
            ["webhook-timestamp"] = timestamp.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["webhook-signature"] = signature,
        };

        var good = WebhookSigner.Sign(FakeReplicate.WebhookSecret, "msg_1", ts, Body);
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, good), Body, now).ShouldBeTrue();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, WebhookSigner.Sign(other, "msg_1", ts, Body) + " " + good), Body, now).ShouldBeTrue();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, WebhookSigner.Sign(other, "msg_1", ts, Body)), Body, now).ShouldBeFalse();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, good), Body.Replace("p1", "p2", StringComparison.Ordinal), now).ShouldBeFalse();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, good), Body, now.AddMinutes(6)).ShouldBeFalse();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, Headers(ts, good), Body, now.AddMinutes(-6)).ShouldBeFalse();
        ReplicateAdapter.Verify(FakeReplicate.WebhookSecret, new Dictionary<string, string>(), Body, now).ShouldBeFalse();
        ReplicateAdapter.Verify("whsec_not base64!", Headers(ts, good), Body, now).ShouldBeFalse();
    }
}
