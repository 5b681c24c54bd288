using System.IO.Compression;
using System.Security.Cryptography;
using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Simulator;

public sealed class SimulatorAdapterFactory(IHttpClientFactory httpClients, TimeProvider time, ILoggerFactory loggers, IHostApplicationLifetime lifetime) : IProviderAdapterFactory
{
    public string Kind => ProviderKinds.Simulator;

    public IReadOnlySet<Modality> Modalities { get; } = ProviderKinds.AllModalities;

    public IProviderAdapter Create(string name, ProviderOptions options) =>
        new SimulatorAdapter(name, new SimulatorCallbackQueue(httpClients, time, loggers.CreateLogger<SimulatorAdapter>(), lifetime.ApplicationStopping), time);
}

/// <summary>
/// The built-in provider: no network, deterministic outputs, and <c>input.simulate</c> to drive
/// every path on purpose (docs/api.md#providers-and-routing). Image models answer through the callback path, as Replicate
/// and fal do; the rest answer at once after the simulated latency.
/// </summary>
public sealed class SimulatorAdapter(string name, SimulatorCallbackQueue callbacks, TimeProvider time) : IProviderAdapter
{
    /// <summary>Only image models, which answer through the callback path.</summary>
    public bool MayCallBack(ProviderCall call) => SimulationPlan.AnswersByCallback(call.Model);

    public async Task<ProviderOutcome> ExecuteAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        var plan = SimulationPlan.From(call);
        if (plan.UsesCallback)
        {
            if (call.CallbackUrl is null)
            {
                return new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.InternalError, "The gateway has no callback address (set ModelRoute:PublicBaseUrl).", false, name));
            }

            // Only the URL, the time and the outcome are kept until the callback is sent, not the call.
            var dueMs = time.GetUtcNow().ToUnixTimeMilliseconds() + plan.LatencyMs;
            var nonce = Random.Shared.NextInt64(1L << 48); // tells jobs apart; the callback URL's token is the secret
            callbacks.Schedule(call.CallbackUrl, dueMs, nonce, plan.FailsThisAttempt);
            return new ProviderOutcome.Accepted(SimulatorCallbackQueue.JobId(dueMs, nonce));
        }

        await Task.Delay(TimeSpan.FromMilliseconds(plan.LatencyMs), time, cancellationToken);
        return plan.Outcome(name);
    }

    public Task<ProviderOutcome> PollAsync(ProviderCall call, CancellationToken cancellationToken)
    {
        var jobId = call.Execution.ProviderJobId ?? "";
        var parts = jobId.Split('_');
        if (parts.Length != 3 || !long.TryParse(parts[1], CultureInfo.InvariantCulture, out var dueMs))
        {
            return Task.FromResult<ProviderOutcome>(new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "Unknown simulator job.", false, name)));
        }

        return Task.FromResult(time.GetUtcNow().ToUnixTimeMilliseconds() < dueMs
            ? new ProviderOutcome.Running()
            : SimulationPlan.From(call).Outcome(name));
    }

    public Task CancelAsync(ProviderCall call, CancellationToken cancellationToken) => Task.CompletedTask;

    public bool VerifyCallback(ProviderCall call, ProviderCallback callback) => true;

    public ProviderOutcome ReadCallback(ProviderCall call, ProviderCallback callback)
    {
        // The callback only says the job is done; the result is the same deterministic one a poll gives.
        var body = callback.Body;
        var status = body.TryGetProperty("status", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
        return status is "succeeded" or "failed"
            ? SimulationPlan.From(call).Outcome(name)
            : new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "The callback carried no final status.", false, name));
    }
}

/// <summary>What <c>input.simulate</c> asks for, read from an already validated input.</summary>
internal sealed record SimulationPlan(ProviderCall Call, int LatencyMs, string? Fail, int? FailTimes, int RetryAfterMs, JsonElement? UsageOverride)
{
    public bool UsesCallback => AnswersByCallback(Call.Model);

    public static bool AnswersByCallback(ModelDefinition model) => model.Modality == Modality.Image;

    public bool FailsThisAttempt => Fail is not null && (FailTimes is null || Call.AttemptNumber <= FailTimes);

    public static SimulationPlan From(ProviderCall call)
    {
        using var doc = JsonDocument.Parse(call.Execution.Input);
        var latency = call.Model.Modality switch
        {
            Modality.Image => 200,
            Modality.Video => 500,
            _ => 50,
        };
        string? fail = null;
        int? failTimes = null;
        var retryAfter = 0;
        JsonElement? usage = null;
        if (doc.RootElement.TryGetProperty("simulate", out var sim) && sim.ValueKind == JsonValueKind.Object)
        {
            latency = Int(sim, "latency_ms") ?? latency;
            fail = sim.TryGetProperty("fail", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            failTimes = Int(sim, "fail_times");
            retryAfter = Int(sim, "retry_after_ms") ?? 0;
            usage = sim.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object ? u.Clone() : null;
        }

        return new SimulationPlan(call, latency, fail, failTimes, retryAfter, usage);
    }

    public ProviderOutcome Outcome(string provider)
    {
        if (FailsThisAttempt)
        {
            return Fail switch
            {
                "timeout" => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderTimeout, "The simulated provider timed out.", true, provider, 504)),
                "rate_limit" => new ProviderOutcome.Failed(
                    new ExecutionError(ExecutionErrorCodes.ProviderRateLimited, "The simulated provider is rate limiting.", true, provider, 429),
                    RetryAfterMs > 0 ? TimeSpan.FromMilliseconds(RetryAfterMs) : null),
                "server_error" => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderUnavailable, "The simulated provider answered 503.", true, provider, 503)),
                "content_policy" => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ContentPolicyViolation, "The simulated provider refused the content.", false, provider, 400)),
                _ => new ProviderOutcome.Failed(new ExecutionError(ExecutionErrorCodes.ProviderError, "The simulated provider answered something malformed.", false, provider, 200)),
            };
        }

        using var doc = JsonDocument.Parse(Call.Execution.Input);
        var input = doc.RootElement;
        return Call.Model.Modality switch
        {
            Modality.Text => Text(input),
            Modality.Image => Images(input),
            Modality.Embedding => Embedding(input),
            _ => Media(input),
        };
    }

    private ProviderOutcome Text(JsonElement input)
    {
        var prompt = LastUserText(input);
        var reply = $"Simulated reply from {Call.Route.ProviderModel}: {(prompt.Length > 200 ? prompt[..200] : prompt)}";
        var maxTokens = Int(input, "max_tokens") ?? Call.Model.DefaultMaxOutputTokens;
        var outputTokens = Math.Min(CostEstimator.TokensFor(reply.Length), maxTokens);
        var usage = new Usage(InputTokens: CostEstimator.TokensFor(CostEstimator.CountMessageCharacters(input)), OutputTokens: outputTokens);
        var output = JsonSerializer.Serialize(new Dictionary<string, object> { ["text"] = reply, ["finish_reason"] = "stop" });
        return new ProviderOutcome.Completed(output, Override(usage), []);
    }

    private ProviderOutcome Images(JsonElement input)
    {
        var n = Int(input, "n") ?? 1;
        var artifacts = new List<ArtifactContent>();
        var images = new List<Dictionary<string, string>>();
        for (var i = 0; i < n; i++)
        {
            var name = $"image-{i}.png";
            artifacts.Add(new ArtifactContent(name, "image/png", SolidPng(Call.Execution.Id, i)));
            images.Add(new() { ["artifact"] = name, ["url"] = $"/v1/executions/{Call.Execution.Id}/artifacts/{name}" });
        }

        var output = JsonSerializer.Serialize(new Dictionary<string, object> { ["images"] = images });
        return new ProviderOutcome.Completed(output, Override(new Usage(Images: n)), artifacts);
    }

    private ProviderOutcome Media(JsonElement input)
    {
        var seconds = Int(input, "duration_seconds") ?? Call.Model.DefaultDurationSeconds;
        var (name, type) = Call.Model.Modality == Modality.Audio ? ("audio.wav", "audio/wav") : ("video.mp4", "video/mp4");
        var bytes = Encoding.ASCII.GetBytes($"simulated {Call.Model.Modality} of {seconds}s for {Call.Execution.Id}\n");
        var output = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            [Call.Model.Modality == Modality.Audio ? "audio" : "video"] = new Dictionary<string, object> { ["artifact"] = name, ["url"] = $"/v1/executions/{Call.Execution.Id}/artifacts/{name}" },
            ["duration_seconds"] = seconds,
        });
        return new ProviderOutcome.Completed(output, Override(new Usage(DurationMilliseconds: seconds * 1000L)), [new ArtifactContent(name, type, bytes)]);
    }

    private ProviderOutcome Embedding(JsonElement input)
    {
        var text = input.TryGetProperty("input", out var v) ? v.GetRawText() : "";
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text));
        var vector = hash.Take(8).Select(b => Math.Round((b / 127.5) - 1, 4)).ToArray();
        var output = JsonSerializer.Serialize(new Dictionary<string, object> { ["embeddings"] = new[] { vector } });
        return new ProviderOutcome.Completed(output, Override(new Usage(InputTokens: CostEstimator.TokensFor(text.Length))), []);
    }

    private Usage Override(Usage usage)
    {
        if (UsageOverride is not { } u)
        {
            return usage;
        }

        return new Usage(
            InputTokens: Long(u, "input_tokens") ?? usage.InputTokens,
            OutputTokens: Long(u, "output_tokens") ?? usage.OutputTokens,
            CachedInputTokens: Long(u, "cached_input_tokens") ?? usage.CachedInputTokens,
            Images: Long(u, "images") ?? usage.Images,
            DurationMilliseconds: (Long(u, "duration_seconds") * 1000) ?? Long(u, "duration_ms") ?? usage.DurationMilliseconds,
            Requests: usage.Requests);
    }

    private static string LastUserText(JsonElement input)
    {
        if (input.TryGetProperty("messages", out var messages) && messages.ValueKind == JsonValueKind.Array)
        {
            foreach (var message in messages.EnumerateArray().Reverse())
            {
                if (message.TryGetProperty("content", out var content))
                {
                    if (content.ValueKind == JsonValueKind.String)
                    {
                        return content.GetString()!;
                    }

                    if (content.ValueKind == JsonValueKind.Array)
                    {
                        return string.Concat(content.EnumerateArray()
                            .Where(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                            .Select(p => p.GetProperty("text").GetString()));
                    }
                }
            }
        }

        return "";
    }

    private static int? Int(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    private static long? Long(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var i) ? i : null;

    /// <summary>A valid 8×8 PNG of one colour derived from the execution, so every image differs.</summary>
    private static byte[] SolidPng(string seed, int index)
    {
        var colour = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}/{index}"));
        const int Size = 8;
        var raw = new byte[Size * ((Size * 3) + 1)];
        for (var y = 0; y < Size; y++)
        {
            var row = y * ((Size * 3) + 1);
            for (var x = 0; x < Size; x++)
            {
                raw[row + 1 + (x * 3)] = colour[0];
                raw[row + 2 + (x * 3)] = colour[1];
                raw[row + 3 + (x * 3)] = colour[2];
            }
        }

        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, Size);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), Size);
        header[8] = 8;
        header[9] = 2;
        WriteChunk(png, "IHDR", header);
        using (var compressed = new MemoryStream())
        {
            using (var z = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                z.Write(raw);
            }

            WriteChunk(png, "IDAT", compressed.ToArray());
        }

        WriteChunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void WriteChunk(Stream stream, string type, byte[] data)
    {
        Span<byte> length = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(length, data.Length);
        stream.Write(length);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        stream.Write(typeBytes);
        stream.Write(data);
        var crc = PngCrc32.Compute(typeBytes, data);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(length, crc);
        stream.Write(length);
    }
}
