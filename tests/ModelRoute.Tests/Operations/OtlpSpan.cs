namespace ModelRoute.Tests.Operations;

/// <summary>
/// What a test needs of a span in an OTLP <c>ExportTraceServiceRequest</c>: resource spans (field 1) hold scope spans
/// (field 2), which hold spans (field 2) with span id (2), parent span id (4) and name (5).
/// </summary>
public sealed record OtlpSpan(string SpanId, string ParentSpanId, string Name)
{
    public static IEnumerable<OtlpSpan> All(IEnumerable<byte[]> exports) => exports.SelectMany(body => Fields(body, 1))
        .SelectMany(resource => Fields(resource, 2)).SelectMany(scope => Fields(scope, 2)).Select(Parse);

    private static OtlpSpan Parse(byte[] span)
    {
        string Hex(int field) => Fields(span, field).Select(b => Convert.ToHexStringLower(b)).FirstOrDefault() ?? "";
        return new(Hex(2), Hex(4), Fields(span, 5).Select(b => Encoding.UTF8.GetString(b)).FirstOrDefault() ?? "");
    }

    /// <summary>The length-delimited fields numbered <paramref name="number"/> of one message.</summary>
    private static List<byte[]> Fields(byte[] message, int number)
    {
        var found = new List<byte[]>();
        var at = 0;
        while (at < message.Length)
        {
            var key = Varint(message, ref at);
            switch (key & 7)
            {
                case 0: Varint(message, ref at); break;
                case 1: at += 8; break;
                case 5: at += 4; break;
                case 2:
                    var length = (int)Varint(message, ref at);
                    if ((int)(key >> 3) == number)
                    {
                        found.Add(message[at..(at + length)]);
                    }

                    at += length;
                    break;
                default: throw new InvalidDataException($"Wire type {key & 7} is not expected in an OTLP trace export.");
            }
        }

        return found;
    }

    private static ulong Varint(byte[] message, ref int at)
    {
        var value = 0UL;
        for (var shift = 0; ; shift += 7)
        {
            var b = message[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }
    }
}
