using System.Security.Cryptography;

namespace ModelRoute.Server.Storage.Artifacts;

/// <summary>
/// Reads another stream through, counting its bytes and hashing them with SHA-256 on the way, so a copy learns its
/// size and digest without a second pass or holding the bytes; refuses to read past <see cref="Limit"/>.
/// </summary>
public sealed class HashingStream(Stream inner, long limit) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public long Limit { get; } = limit;

    public long BytesRead { get; private set; }

    /// <summary>The lowercase hex SHA-256 of everything read; call once, at the end.</summary>
    public string Sha256() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => BytesRead; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Counted(buffer.AsSpan(offset, inner.Read(buffer, offset, count)));

    public override int Read(Span<byte> buffer) => Counted(buffer[..inner.Read(buffer)]);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        return Counted(buffer.Span[..read]);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }

    private int Counted(ReadOnlySpan<byte> read)
    {
        BytesRead += read.Length;
        if (BytesRead > Limit)
        {
            throw new ArtifactTooLargeException(Limit);
        }

        _hash.AppendData(read);
        return read.Length;
    }
}
