namespace ModelRoute.Tests.Providers.Fal;

/// <summary>
/// The fake must be fal's queue as its official client sees it. <c>@fal-ai/client</c> builds
/// <c>https://queue.fal.run/…</c> URLs itself; its <c>requestMiddleware</c> config receives each
/// request's <c>{method, url, headers}</c> and may return another URL, which is how the calls are
/// sent to the fake (the <c>Authorization: Key …</c> header is still the client's own).
/// </summary>
public sealed class FalClientTests
{
    public const string ClientPackage = "@fal-ai/client@1.10.1";

    private const string Script = """
        'use strict';
        const { fal, ApiError, ValidationError } = require('@fal-ai/client');
        const [base, key] = process.argv.slice(2);
        const toFake = async (request) => ({ ...request, url: request.url.replace('https://queue.fal.run', base) });

        (async () => {
          const out = { urls: [] };
          fal.config({
            credentials: key,
            requestMiddleware: async (request) => { out.urls.push(request.method + ' ' + request.url); return toFake(request); },
          });
          const model = 'fal-ai/flux/dev';
          const queued = await fal.queue.submit(model, { input: { prompt: 'sdk', num_images: 2 }, webhookUrl: 'https://example.com/hook?token=a b' });
          out.submitted = queued;
          let status = await fal.queue.status(model, { requestId: queued.request_id });
          out.firstStatus = status.status;
          for (let i = 0; i < 200 && status.status !== 'COMPLETED'; i++) {
            await new Promise((r) => setTimeout(r, 50));
            status = await fal.queue.status(model, { requestId: queued.request_id });
          }
          out.status = status;
          const result = await fal.queue.result(model, { requestId: queued.request_id });
          out.result = { requestId: result.requestId, images: result.data.images };

          const slow = await fal.queue.submit(model, { input: { prompt: 'slow' } });
          await fal.queue.cancel(model, { requestId: slow.request_id });
          out.cancelled = slow.request_id;

          try {
            await fal.queue.submit(model, { input: { prompt: '' } });
            out.validation = null;
          } catch (e) {
            out.validation = { isValidation: e instanceof ValidationError, status: e.status, field: e.fieldErrors && e.fieldErrors[0] && e.fieldErrors[0].loc };
          }

          fal.config({ credentials: 'wrong:key', requestMiddleware: toFake });
          try {
            await fal.queue.status(model, { requestId: queued.request_id });
            out.auth = null;
          } catch (e) {
            out.auth = { isApiError: e instanceof ApiError, status: e.status, detail: e.body && e.body.detail };
          }
          console.log(JSON.stringify(out));
        })().catch((e) => { console.error(e); process.exit(1); });
        """;

    [Fact]
    public async Task The_official_fal_client_works_against_the_fake_through_its_request_middleware()
    {
        await using var fake = await FakeFal.StartAsync();
        fake.Script = input => input["prompt"]?.GetValue<string>() == "slow"
            ? new FalScript(TimeSpan.FromSeconds(60))
            : new FalScript(TimeSpan.FromSeconds(2)); // long enough that the first status is never already COMPLETED on a busy machine

        var result = await SdkScript.RunAsync(ClientPackage, Script, fake.BaseUrl, FakeFal.ApiKey);

        var submitted = result.GetProperty("submitted");
        var requestId = submitted.GetProperty("request_id").GetString()!;
        submitted.GetProperty("status_url").GetString().ShouldBe($"{fake.BaseUrl}/fal-ai/flux/requests/{requestId}/status");
        result.GetProperty("firstStatus").GetString().ShouldBeOneOf("IN_QUEUE", "IN_PROGRESS");
        result.GetProperty("status").GetProperty("status").GetString().ShouldBe("COMPLETED");
        result.GetProperty("result").GetProperty("requestId").GetString().ShouldBe(requestId);
        result.GetProperty("result").GetProperty("images").GetArrayLength().ShouldBe(2);
        fake.Cancels.ShouldContain(result.GetProperty("cancelled").GetString()!);
        var validation = result.GetProperty("validation");
        validation.GetProperty("isValidation").GetBoolean().ShouldBeTrue();
        validation.GetProperty("status").GetInt32().ShouldBe(422);
        validation.GetProperty("field").EnumerateArray().Select(e => e.GetString()).ShouldBe(["body", "prompt"]);
        var auth = result.GetProperty("auth");
        auth.GetProperty("isApiError").GetBoolean().ShouldBeTrue();
        auth.GetProperty("status").GetInt32().ShouldBe(401);

        // The client's own URLs are fal's real ones; the fake saw the same paths with the Key header.
        var urls = result.GetProperty("urls").EnumerateArray().Select(u => u.GetString()!).ToList();
        urls.ShouldContain(u => u.StartsWith("POST https://queue.fal.run/fal-ai/flux/dev?fal_webhook=", StringComparison.Ordinal));
        urls.ShouldContain($"GET https://queue.fal.run/fal-ai/flux/requests/{requestId}");
        urls.ShouldContain(u => u.StartsWith("PUT https://queue.fal.run/fal-ai/flux/requests/", StringComparison.Ordinal) && u.EndsWith("/cancel", StringComparison.Ordinal));
        fake.Requests.ShouldContain(r => r.Method == "POST" && r.Path.StartsWith("/fal-ai/flux/dev?fal_webhook=https%3A%2F%2Fexample.com%2Fhook%3Ftoken%3Da", StringComparison.Ordinal) && r.Authorization == "Key " + FakeFal.ApiKey);
    }
}
