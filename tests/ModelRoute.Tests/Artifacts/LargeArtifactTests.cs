using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Amazon.S3.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using ModelRoute.Tests.Providers.Artifacts;
using ModelRoute.Tests.Providers.OpenAI;
using Xunit.Abstractions;

namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// A large output copied into the bucket streams: the gateway process's resident memory grows by less than 64 MiB
/// however large the output (docs/artifacts.md#s3-compatible-storage). The size is MODELROUTE_LARGE_ARTIFACT_MB
/// (default 256 MiB, which copies in under a minute on the busy test machine; 1 GiB was measured by hand, see the docs).
/// </summary>
[Collection(ProcessTests.Name)]
public sealed class LargeArtifactTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const long MaxGrowth = 64L * 1024 * 1024;
    private readonly string _dataDirectory = TestPaths.NewTempDirectory("s3-large");
    private OpenAIFake _fake = null!;
    private WebApplication _files = null!;
    private string _filesUrl = "";

    private static long Size => 1024L * 1024 * (long.TryParse(Environment.GetEnvironmentVariable("MODELROUTE_LARGE_ARTIFACT_MB"), out var mb) ? mb : 256);

    public async Task InitializeAsync()
    {
        _fake = await OpenAIFake.StartAsync();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _files = builder.Build();
        _files.Run(ServeAsync);
        await _files.StartAsync();
        _filesUrl = _files.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    }

    public async Task DisposeAsync()
    {
        await _files.DisposeAsync();
        await _fake.DisposeAsync();
        TestPaths.TryDelete(_dataDirectory);
    }

    [Fact]
    public async Task A_large_output_is_copied_into_the_bucket_with_bounded_memory_and_its_sha256_recorded()
    {
        var moto = await MotoServer.SharedAsync();
        var bucket = await moto.CreateBucketAsync("large");
        var settings = moto.Settings(bucket).ToDictionary(s => s.Key, s => s.Value!);
        settings["ModelRoute:AdminKey"] = GatewayFactory.AdminKey;
        settings["ModelRoute:Limits:MaxArtifactBytes"] = (4L * 1024 * 1024 * 1024).ToString(CultureInfo.InvariantCulture);
        settings["ModelRoute:Artifacts:FetchTimeout"] = "00:10:00";
        settings["ModelRoute:Artifacts:TrustedHosts:0"] = new Uri(_filesUrl).Authority;
        settings["ModelRoute:Providers:oai:Kind"] = "openai";
        settings["ModelRoute:Providers:oai:BaseUrl"] = _fake.V1;
        settings["ModelRoute:Providers:oai:ApiKey"] = OpenAIGateway.ApiKey;
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Modality"] = "image";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Pricing:PerImage"] = "0.04";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Provider"] = "oai";
        settings[$"ModelRoute:Models:{ArtifactGateway.Image}:Routes:0:Model"] = "dall-e-3";
        await using var gateway = await GatewayProcess.StartAsync(_dataDirectory, settings);
        using var client = gateway.Client(await gateway.CreateFundedKeyAsync());
        // A small copy first, so that loading and compiling the copy path is not counted as the large copy's memory.
        _fake.ServeImageUrls = true;
        var warmUp = await client.SubmitAsync(ArtifactGateway.Image, """{"prompt":"a short film"}""");
        (await client.WaitForTerminalAsync(warmUp.Json.GetProperty("id").GetString()!, seconds: 60)).GetProperty("status").GetString().ShouldBe("COMPLETED");
        _fake.AnswerNext(new OpenAIFakeAnswer(200, $$"""{"created":1733400000,"data":[{"url":"{{_filesUrl}}/large.bin"}]}"""));
        var expected = ExpectedSha256();
        var before = Resident(gateway.ProcessId);
        var peak = before;
        var clock = Stopwatch.StartNew();

        var submitted = await client.SubmitAsync(ArtifactGateway.Image, """{"prompt":"a long film"}""", extra: ""","timeout_seconds":900""");
        submitted.Status.ShouldBe(202, submitted.Body);
        var id = submitted.Json.GetProperty("id").GetString()!;
        JsonElement done;
        var polls = 0;
        while (true)
        {
            await Task.Delay(50);
            peak = Math.Max(peak, Resident(gateway.ProcessId));
            if (++polls % 10 != 0)
            {
                continue; // Memory is sampled often; the execution is read twice a second, within the polling limit.
            }

            var read = await client.GetApiAsync($"/v1/executions/{id}");
            done = read.Json;
            if ((read.Status == 200 && done.GetProperty("status").GetString() is not ("PENDING" or "PROCESSING")) || clock.Elapsed > TimeSpan.FromMinutes(10))
            {
                break;
            }
        }

        output.WriteLine($"{Size / (1024 * 1024)} MiB copied in {clock.Elapsed.TotalSeconds:F1} s; resident memory {before / (1024 * 1024)} MiB before, peak {peak / (1024 * 1024)} MiB (+{(peak - before) / (1024 * 1024)} MiB)");
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        var artifact = done.GetProperty("artifacts")[0];
        artifact.GetProperty("size_bytes").GetInt64().ShouldBe(Size);
        artifact.GetProperty("sha256").GetString().ShouldBe(expected);
        using var s3 = moto.Client();
        (await s3.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = bucket, Key = $"{id}/image-0.png" })).ContentLength.ShouldBe(Size);
        (peak - before).ShouldBeLessThan(MaxGrowth, "the gateway's resident memory grew by less than 64 MiB while copying");
    }

    /// <summary>Resident memory of a process, from /proc.</summary>
    private static long Resident(int processId)
    {
        var line = File.ReadLines($"/proc/{processId}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>The bytes served: a pattern that no compression or deduplication could shrink much, made as it is sent.</summary>
    private static void Fill(Span<byte> chunk, long offset)
    {
        for (var i = 0; i < chunk.Length; i++)
        {
            var n = offset + i;
            chunk[i] = (byte)((n * 2654435761L) >> 13);
        }
    }

    private static string ExpectedSha256()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[1024 * 1024];
        for (long offset = 0; offset < Size; offset += chunk.Length)
        {
            var part = chunk.AsSpan(0, (int)Math.Min(chunk.Length, Size - offset));
            Fill(part, offset);
            hash.AppendData(part);
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static async Task ServeAsync(HttpContext context)
    {
        context.Response.ContentType = "video/mp4";
        context.Response.ContentLength = Size;
        var chunk = new byte[1024 * 1024];
        for (long offset = 0; offset < Size; offset += chunk.Length)
        {
            var length = (int)Math.Min(chunk.Length, Size - offset);
            Fill(chunk.AsSpan(0, length), offset);
            await context.Response.Body.WriteAsync(chunk.AsMemory(0, length), context.RequestAborted);
        }
    }
}
