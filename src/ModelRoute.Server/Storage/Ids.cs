using System.Security.Cryptography;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Prefixed ids that sort by creation time: a 48-bit millisecond timestamp and 80 random bits
/// in Crockford base32 (the ULID layout), kept monotonic within a millisecond.
/// </summary>
public sealed class IdGenerator(TimeProvider time)
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
    private static readonly UInt128 MaxRandom = (UInt128.One << 80) - 1;
    private readonly Lock _gate = new();
    private long _lastMs;
    private UInt128 _lastRandom;

    public string New(string prefix)
    {
        // The random bits and the clock are read before the lock, which then holds only a few
        // comparisons: every request and every state change takes an id.
        var random = RandomBytes.Next();
        UInt128 fresh = 0;
        foreach (var b in random)
        {
            fresh = (fresh << 8) | b;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        long ms;
        UInt128 value;
        lock (_gate)
        {
            ms = Math.Max(now, _lastMs);
            if (ms == _lastMs && _lastRandom < MaxRandom)
            {
                value = _lastRandom + 1;
            }
            else
            {
                // A new millisecond, or this one's random space is used up: borrow the next one to stay monotonic.
                ms = ms == _lastMs ? ms + 1 : ms;
                value = fresh;
            }

            _lastMs = ms;
            _lastRandom = value;
        }

        var combined = ((UInt128)(ulong)ms << 80) | value;
        Span<char> chars = stackalloc char[26];
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(combined & 31)];
            combined >>= 5;
        }

        return string.Concat(prefix, "_", chars);
    }


    /// <summary>
    /// Ten random bytes at a time from a per-thread buffer that the system's CSPRNG fills 25 ids' worth at once: one
    /// call into it per id was a visible share of the SQLite writer's time (it takes the ids of events and ledger entries).
    /// </summary>
    private static class RandomBytes
    {
        private const int Size = 10;

        [ThreadStatic]
        private static byte[]? _buffer;

        [ThreadStatic]
        private static int _used;

        public static ReadOnlySpan<byte> Next()
        {
            var buffer = _buffer ??= new byte[Size * 25];
            if (_used == 0 || _used == buffer.Length)
            {
                RandomNumberGenerator.Fill(buffer);
                _used = 0;
            }

            var next = buffer.AsSpan(_used, Size);
            _used += Size;
            return next;
        }
    }
}
