using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ModelRoute.Bench;

/// <summary>Every gateway measurement against one running gateway (one store).</summary>
public sealed class StoreBench(GatewayHost gateway, WebhookReceiver receiver, BenchSettings settings, string store)
{
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];
    private HttpClient _api = null!;
    private string _secret = "";

    public async Task<(IReadOnlyList<RunResult> Submit, SearchResult Search, RunResult Get, EndToEndResult EndToEnd, WebhookFloodResult Flood, MemoryResult Memory)> RunAsync()
    {
        var (key, secret) = await gateway.CreateAccountAsync();
        _secret = secret;
        receiver.UseSecret(secret);
        _api = gateway.Client(key, 4096);
        try
        {
            Log("warm-up 200/s for 1 s");
            await SubmitRunAsync("warmup", 200, TimeSpan.FromSeconds(1));
            await QuietAsync();

            var submit = new List<RunResult>();
            foreach (var rate in settings.FixedRates)
            {
                var result = await SubmitRunAsync($"submit-{rate}", rate, settings.FixedDuration);
                submit.Add(result);
                Log(Describe(result));
                await QuietAsync();
            }

            var steps = new List<RunResult>();
            double best = 0;
            foreach (var rate in settings.SearchRates())
            {
                var result = await SubmitRunAsync($"search-{rate}", rate, settings.SearchStepDuration);
                steps.Add(result);
                Log("search " + Describe(result));
                await QuietAsync();
                if (!result.MeetsP99(BenchSettings.P99LimitMs))
                {
                    break;
                }

                best = rate;
            }

            var get = await GetRunAsync();
            Log("GET " + Describe(get));
            await QuietAsync();

            var endToEnd = await EndToEndAsync();
            Log($"end to end at {endToEnd.Rate}/s: p50 {endToEnd.Latency.P50Ms} ms, p99 {endToEnd.Latency.P99Ms} ms, {endToEnd.Missing} missing");
            await QuietAsync();

            var flood = await WebhookFloodAsync();
            Log($"webhooks: {flood.Delivered}/{flood.Executions} delivered, {flood.DeliveriesPerSecond}/s");
            await QuietAsync();

            var memory = await MemoryAsync();
            Log($"memory with {memory.AwaitingExecutions} awaiting: {memory.RssMinMiB}-{memory.RssMaxMiB} MiB (before {memory.RssBeforeMiB} MiB), flat: {memory.Flat}");
            return (submit, new SearchResult(best, steps), get, endToEnd, flood, memory);
        }
        finally
        {
            _api.Dispose();
        }
    }

    private void Log(string message) => Console.WriteLine($"[{DateTime.Now:HH:mm:ss}] {store}: {message}");

    private static string Describe(RunResult r) =>
        $"{r.Name} {r.Rate}/s x {r.Seconds}s: p50 {r.Latency.P50Ms} ms, p99 {r.Latency.P99Ms} ms, p99.9 {r.Latency.P999Ms} ms, errors {r.Errors}, dispatch lag max {r.MaxDispatchLagMs} ms";

    private Task QuietAsync() => gateway.WaitForQuietAsync(TimeSpan.FromSeconds(settings.Quick ? 5 : 20));

    private static string TextSubmission(string key, string? webhookUrl) =>
        "{\"model\":\"sim/text\",\"idempotency_key\":\"" + key
        + "\",\"input\":{\"messages\":[{\"role\":\"user\",\"content\":\"benchmark\"}],\"max_tokens\":16,\"simulate\":{\"latency_ms\":0}}"
        + (webhookUrl is null ? "" : ",\"webhook_url\":\"" + webhookUrl + "\"") + "}";

    private async Task<bool> PostAsync(string path, string json, Action<string>? onBody = null)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await _api.PostAsync(path, content);
        var body = await response.Content.ReadAsStringAsync();
        onBody?.Invoke(body);
        return response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK;
    }

    private Task<RunResult> SubmitRunAsync(string name, double rate, TimeSpan duration) =>
        LoadGenerator.RunAsync(name, rate, duration, i => PostAsync("/v1/executions", TextSubmission($"{_run}-{name}-{i}", null)));

    private async Task<RunResult> GetRunAsync()
    {
        var ids = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            await PostAsync("/v1/executions", TextSubmission($"{_run}-get-{i}", null), body =>
            {
                using var doc = JsonDocument.Parse(body);
                ids.Add(doc.RootElement.GetProperty("id").GetString()!);
            });
        }

        await QuietAsync();
        return await LoadGenerator.RunAsync("get", settings.GetRate, settings.GetDuration, async i =>
        {
            using var response = await _api.GetAsync($"/v1/executions/{ids[i % ids.Count]}");
            await response.Content.ReadAsByteArrayAsync();
            return response.StatusCode == HttpStatusCode.OK;
        });
    }

    private async Task<EndToEndResult> EndToEndAsync()
    {
        var rate = settings.EndToEndRate;
        var count = (int)Math.Round(rate * settings.EndToEndDuration.TotalSeconds);
        var scheduled = new long[count];
        var prefix = $"{_run}-e2e-";
        var rejectedBefore = receiver.Rejected;
        var run = await LoadGenerator.RunAsync("e2e", rate, settings.EndToEndDuration,
            i => PostAsync("/v1/executions", TextSubmission(prefix + i, receiver.Url)), scheduled);
        await WaitForWebhooksAsync(prefix, run.Ok, TimeSpan.FromSeconds(30));
        var latencies = new List<double>(count);
        for (var i = 0; i < count; i++)
        {
            if (receiver.Completed.TryGetValue(prefix + i, out var arrived))
            {
                latencies.Add(LoadGenerator.Ms(arrived - scheduled[i]));
            }
        }

        return new EndToEndResult(rate, count, run.Errors, latencies.Count, count - latencies.Count, LatencyStats.From(latencies), receiver.Rejected - rejectedBefore);
    }

    private async Task<WebhookFloodResult> WebhookFloodAsync()
    {
        var prefix = $"{_run}-flood-";
        var started = Stopwatch.GetTimestamp();
        await SubmitInBatchesAsync(settings.WebhookFlood, i => TextSubmission(prefix + i, receiver.Url));
        await WaitForWebhooksAsync(prefix, settings.WebhookFlood, TimeSpan.FromSeconds(settings.Quick ? 20 : 60));
        var arrivals = receiver.Completed.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p.Value).Order().ToArray();
        if (arrivals.Length < 2)
        {
            return new WebhookFloodResult(settings.WebhookFlood, arrivals.Length, 0, 0, 0);
        }

        var span = LoadGenerator.Ms(arrivals[^1] - arrivals[0]) / 1000.0;
        var fromSubmit = LoadGenerator.Ms(arrivals[^1] - started) / 1000.0;
        return new WebhookFloodResult(settings.WebhookFlood, arrivals.Length, Math.Round((arrivals.Length - 1) / span, 1), Math.Round(span, 2), Math.Round(fromSubmit, 2));
    }

    private async Task WaitForWebhooksAsync(string prefix, int expected, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        var last = -1;
        var stalledSince = DateTime.UtcNow;
        while (DateTime.UtcNow < deadline)
        {
            var got = receiver.Completed.Keys.Count(k => k.StartsWith(prefix, StringComparison.Ordinal));
            if (got >= expected)
            {
                return;
            }

            if (got != last)
            {
                last = got;
                stalledSince = DateTime.UtcNow;
            }
            else if (DateTime.UtcNow - stalledSince > TimeSpan.FromSeconds(10))
            {
                return;
            }

            await Task.Delay(200);
        }
    }

    /// <summary>Submits through POST /v1/executions/batch, 1000 a request, two requests at a time; the ids in order.</summary>
    private async Task<List<string>> SubmitInBatchesAsync(int count, Func<int, string> submission)
    {
        const int batchSize = 1000;
        var ids = new string[count];
        using var gate = new SemaphoreSlim(2);
        var batches = Enumerable.Range(0, (count + batchSize - 1) / batchSize).Select(async b =>
        {
            await gate.WaitAsync();
            try
            {
                var first = b * batchSize;
                var items = Enumerable.Range(first, Math.Min(batchSize, count - first)).Select(submission);
                var json = "{\"executions\":[" + string.Join(',', items) + "]}";
                var ok = await PostAsync("/v1/executions/batch", json, body => ReadBatchIds(body, ids, first));
                if (!ok)
                {
                    throw new InvalidOperationException("A batch submission failed.");
                }
            }
            finally
            {
                gate.Release();
            }
        });
        await Task.WhenAll(batches);
        return [.. ids];
    }

    private static void ReadBatchIds(string body, string[] ids, int first)
    {
        using var doc = JsonDocument.Parse(body);
        var list = doc.RootElement.ValueKind == JsonValueKind.Array
            ? doc.RootElement
            : doc.RootElement.EnumerateObject().First(p => p.Value.ValueKind == JsonValueKind.Array).Value;
        var i = first;
        foreach (var item in list.EnumerateArray())
        {
            ids[i++] = item.TryGetProperty("execution", out var e) && e.ValueKind == JsonValueKind.Object ? e.GetProperty("id").GetString() ?? "" : "";
        }
    }

    private async Task<MemoryResult> MemoryAsync()
    {
        var count = settings.AwaitingExecutions;
        var before = gateway.RssMiB();
        Log($"filling {count} executions that wait for a callback (sim/image, latency_ms 600000)");
        var ids = await SubmitInBatchesAsync(count, i =>
            "{\"model\":\"sim/image\",\"idempotency_key\":\"" + _run + "-mem-" + i
            + "\",\"timeout_seconds\":3600,\"input\":{\"prompt\":\"benchmark\",\"n\":1,\"simulate\":{\"latency_ms\":600000}}}");

        // Dispatch is roughly first in, first out: wait until the last ones have been handed to the simulator.
        var sample = Enumerable.Range(0, 20).Select(k => ids[(int)((long)k * (count - 1) / 19)]).Where(id => id.Length > 0).Distinct().ToList();
        var awaiting = 0;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(settings.Quick ? 30 : 180);
        while (DateTime.UtcNow < deadline)
        {
            awaiting = 0;
            foreach (var id in sample)
            {
                using var doc = JsonDocument.Parse(await _api.GetStringAsync($"/v1/executions/{id}"));
                if (doc.RootElement.GetProperty("status").GetString() == "AWAITING_WEBHOOK")
                {
                    awaiting++;
                }
            }

            if (awaiting == sample.Count)
            {
                break;
            }

            await Task.Delay(1000);
        }

        await QuietAsync();
        var afterFill = gateway.RssMiB();
        var samples = new List<MemorySample>();
        var started = Stopwatch.GetTimestamp();
        var seconds = (int)settings.MemoryWindow.TotalSeconds;
        for (var s = 0; s <= seconds; s++)
        {
            samples.Add(new MemorySample(Math.Round(LoadGenerator.Ms(Stopwatch.GetTimestamp() - started) / 1000.0, 1), gateway.RssMiB()));
            if (s < seconds)
            {
                await Task.Delay(1000);
            }
        }

        var min = samples.Min(s => s.RssMiB);
        var max = samples.Max(s => s.RssMiB);
        // Flat: the window moves less than 10 % (and under 20 MiB of noise counts as flat too).
        var flat = max - min <= Math.Max(20, 0.10 * max);
        return new MemoryResult(count, sample.Count, awaiting, before, afterFill, min, max, flat, samples);
    }
}
