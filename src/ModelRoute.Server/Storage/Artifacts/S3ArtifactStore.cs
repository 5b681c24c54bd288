using System.Buffers;
using System.Net;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// Artifacts as objects <c>{KeyPrefix}{execution}/{name}</c> in an S3-compatible bucket (docs/artifacts.md#s3-compatible-storage),
/// shared by every node. Writes stream: an object that fits one part is one PutObject, a larger one a multipart upload
/// of <see cref="PartSize"/> parts, one part buffer at a time, so a 1 GB video never sits in memory.
/// </summary>
public sealed class S3ArtifactStore(IAmazonS3 client, ArtifactOptions options, TimeProvider time) : IArtifactBackend, IDisposable
{
    /// <summary>The part buffer: S3's minimum part is 5 MiB; 8 MiB parts reach 80 GB within S3's 10,000 parts.</summary>
    public const int PartSize = 8 * 1024 * 1024;

    private readonly string _bucket = options.Bucket!;

    public string Kind => ArtifactStoreKinds.S3;

    /// <summary>A client for <paramref name="options"/>: its keys if given, else the SDK's usual credential chain.</summary>
    public static IAmazonS3 CreateClient(ArtifactOptions options)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = options.ForcePathStyle,
            MaxErrorRetry = 2,
            Timeout = TimeSpan.FromMinutes(2),
            // Checksums only where S3 requires them: several S3-compatible stores refuse the SDK's newer defaults.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        if (options.ServiceUrl is { } url)
        {
            config.ServiceURL = url;
            config.AuthenticationRegion = options.Region ?? "us-east-1";
        }
        else
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }

        return string.IsNullOrEmpty(options.AccessKeyId)
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(options.AccessKeyId, options.SecretAccessKey), config);
    }

    public string KeyOf(string executionId, string name)
    {
        ArtifactNames.Check(executionId, name);
        return $"{options.KeyPrefix}{executionId}/{name}";
    }

    public async Task WriteAsync(string executionId, string name, string contentType, Stream content, CancellationToken cancellationToken)
    {
        var key = KeyOf(executionId, name);
        var buffer = ArrayPool<byte>.Shared.Rent(PartSize);
        try
        {
            var filled = await FillAsync(content, buffer, cancellationToken);
            if (filled < PartSize)
            {
                using var whole = new MemoryStream(buffer, 0, filled, writable: false);
                await client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, ContentType = contentType, InputStream = whole, AutoCloseStream = false }, cancellationToken);
                return;
            }

            await UploadInPartsAsync(key, contentType, content, buffer, filled, cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async Task<Stream?> ReadAsync(string executionId, string name, CancellationToken cancellationToken)
    {
        try
        {
            var response = await client.GetObjectAsync(_bucket, KeyOf(executionId, name), cancellationToken);
            return response.ResponseStream;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>A GET address for the object, valid for <see cref="ArtifactOptions.PresignedLifetime"/>.</summary>
    public async Task<Uri> PresignAsync(string executionId, string name)
    {
        var request = new GetPreSignedUrlRequest
        {
            BucketName = _bucket,
            Key = KeyOf(executionId, name),
            Verb = HttpVerb.GET,
            Expires = (time.GetUtcNow() + options.PresignedLifetime).UtcDateTime,
            Protocol = options.ServiceUrl is { } url && url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ? Protocol.HTTP : Protocol.HTTPS,
        };
        return new Uri(await client.GetPreSignedURLAsync(request));
    }

    /// <summary>Deletes the execution's objects; none there is not an error.</summary>
    public async Task DeleteAllAsync(string executionId, CancellationToken cancellationToken)
    {
        var prefix = $"{options.KeyPrefix}{(ArtifactNames.IsValid(executionId) ? executionId : throw new ArgumentException("Invalid execution id.", nameof(executionId)))}/";
        var listed = await client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, Prefix = prefix }, cancellationToken);
        // An execution has a handful of outputs: one listing holds them all (up to 1,000).
        foreach (var item in listed.S3Objects ?? [])
        {
            await client.DeleteObjectAsync(_bucket, item.Key, cancellationToken);
        }
    }

    /// <summary>
    /// The start-up check: a tiny object written and deleted, so that wrong credentials, a missing bucket or an
    /// unreachable endpoint stop the start with one line naming the setting (never the secret); null when it passes.
    /// </summary>
    public async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        var key = $"{options.KeyPrefix}.modelroute-check";
        try
        {
            using var probe = new MemoryStream([1]);
            await client.PutObjectAsync(new PutObjectRequest { BucketName = _bucket, Key = key, InputStream = probe }, cancellationToken);
            await client.DeleteObjectAsync(_bucket, key, cancellationToken);
            return null;
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == HttpStatusCode.NotFound || ex.ErrorCode == "NoSuchBucket")
        {
            return $"ModelRoute:Artifacts:Bucket '{_bucket}' does not exist at {Endpoint} ({ex.ErrorCode})";
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized)
        {
            var source = string.IsNullOrEmpty(options.AccessKeyId) ? "the SDK's credential chain" : "ModelRoute:Artifacts:AccessKeyId and ModelRoute:Artifacts:SecretAccessKey";
            return $"the S3 store at {Endpoint} refused {source} for bucket '{_bucket}' ({ex.ErrorCode ?? "403 Forbidden"})";
        }
        catch (AmazonServiceException ex)
        {
            return $"the S3 store at {Endpoint} (ModelRoute:Artifacts:ServiceUrl) answered {(int)ex.StatusCode} {ex.ErrorCode}";
        }
        catch (AmazonClientException ex) when (ex.InnerException is not HttpRequestException)
        {
            return $"no S3 credentials: set ModelRoute:Artifacts:AccessKeyId and ModelRoute:Artifacts:SecretAccessKey, or the SDK's credential chain ({ex.GetType().Name})";
        }
        catch (Exception ex) when (ex is HttpRequestException or AmazonClientException or IOException)
        {
            return $"the S3 store at {Endpoint} (ModelRoute:Artifacts:ServiceUrl) is not reachable ({ex.GetType().Name})";
        }
    }

    public void Dispose() => client.Dispose();

    private string Endpoint => options.ServiceUrl ?? $"AWS region {options.Region}";

    private async Task UploadInPartsAsync(string key, string contentType, Stream content, byte[] buffer, int filled, CancellationToken cancellationToken)
    {
        var upload = await client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = _bucket, Key = key, ContentType = contentType }, cancellationToken);
        try
        {
            var parts = new List<PartETag>();
            for (var number = 1; filled > 0; number++)
            {
                using var part = new MemoryStream(buffer, 0, filled, writable: false);
                var uploaded = await client.UploadPartAsync(
                    new UploadPartRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId, PartNumber = number, PartSize = filled, InputStream = part },
                    cancellationToken);
                parts.Add(new PartETag(number, uploaded.ETag));
                filled = await FillAsync(content, buffer, cancellationToken);
            }

            await client.CompleteMultipartUploadAsync(
                new CompleteMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId, PartETags = parts },
                cancellationToken);
        }
        catch
        {
            // A half-made upload costs storage until aborted; if this fails too, the bucket's lifecycle rule cleans up.
            await client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest { BucketName = _bucket, Key = key, UploadId = upload.UploadId }, CancellationToken.None)
                .ContinueWith(_ => { }, TaskScheduler.Default);
            throw;
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends; how much was read.</summary>
    private static async Task<int> FillAsync(Stream content, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        int read;
        while (filled < PartSize && (read = await content.ReadAsync(buffer.AsMemory(filled, PartSize - filled), cancellationToken)) > 0)
        {
            filled += read;
        }

        return filled;
    }
}
