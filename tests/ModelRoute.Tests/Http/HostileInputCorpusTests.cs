using System.Net.Sockets;

namespace ModelRoute.Tests.Http;

/// <summary>
/// docs/api.md, "Bad input": hostile framings (over a raw socket) and hostile JSON sent to every
/// endpoint that reads a body get a 4xx problem (or, for what Kestrel refuses before any of our code
/// runs, its documented bare status), the gateway logs no unhandled exception, and nothing is stored.
/// </summary>
public sealed class HostileInputCorpusTests(HostileInputCorpusTests.Fixture fixture) : IClassFixture<HostileInputCorpusTests.Fixture>
{
    private const string Messages = """{"messages":[{"role":"user","content":"hello"}]}""";
    private static readonly string[] Tables = ["executions", "ledger_entries", "webhook_endpoints", "accounts", "api_keys"];

    private GatewayFactory Gateway => fixture.Gateway;

    public static TheoryData<string> BodyEndpoints =>
    [
        "/v1/executions",
        "/v1/executions/batch",
        "/v1/webhook-endpoints",
        "/v1/admin/accounts",
        "/v1/admin/accounts/{account}/api-keys",
        "/v1/admin/accounts/{account}/credits",
        "/v1/provider-callbacks/sim/exe_none?token=none",
    ];

    public static TheoryData<string, string> Framings => new()
    {
        { "malformed chunk size", "Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n" },
        { "chunk longer than declared", "Transfer-Encoding: chunked\r\n\r\n2\r\n{}xx\r\n0\r\n\r\n" },
        { "chunk size overflow", "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n" },
        { "fewer bytes than Content-Length", "Content-Length: 100\r\n\r\n{\"a\":1}" },
    };

    [Theory]
    [MemberData(nameof(BodyEndpoints))]
    public async Task Broken_framing_is_a_400_problem_on_the_body_at_every_endpoint_that_reads_one(string endpoint)
    {
        var before = await CountsAsync();
        foreach (var (name, framing) in Framings.Select(row => ((string)row[0], (string)row[1])))
        {
            var hangsUp = name.StartsWith("fewer", StringComparison.Ordinal);
            var response = await SendRawAsync("POST", await PathAsync(endpoint), framing, halfClose: hangsUp);
            if (hangsUp && response.Status == 0)
            {
                continue; // the client closed its side first; the server may drop the connection without an answer
            }

            response.Status.ShouldBeInRange(400, 499, $"{name} → {response}\n{string.Join('\n', Gateway.Logs.Lines.Where(l => l.Contains("Exception", StringComparison.Ordinal)))}");
            response.ContentType.ShouldBe("application/problem+json", $"{name} → {response}");
            if (!endpoint.Contains("provider-callbacks", StringComparison.Ordinal))
            {
                // A callback for an unknown execution is refused before its body is read.
                response.Status.ShouldBe(400, $"{name} → {response}");
                response.Body.ShouldContain("\"code\":\"VALIDATION_ERROR\"", Case.Sensitive, name);
                response.Body.ShouldContain("\"field\":\"body\"", Case.Sensitive, name);
            }
        }

        (await CountsAsync()).ShouldBe(before);
        AssertNoUnhandledException();
    }

    public static TheoryData<string, string, string> HostileJson => new()
    {
        // Duplicate names, at any depth.
        { "/v1/admin/accounts/{account}/credits", """{"amount_usd":"0.01","amount_usd":"999999","reference":"dup-1"}""", "amount_usd" },
        { "/v1/webhook-endpoints", """{"url":"https://hooks.example/a","url":"https://hooks.example/b"}""", "url" },
        { "/v1/executions", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]},"idempotency_key":"d1"}""", "input.messages" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"d2","metadata":{"a":"1","a":"2"}}""", "metadata.a" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{"messages":[{"role":"user","content":"a","role":"system"}]},"idempotency_key":"d3"}""", "input.messages[0].role" },
        { "/v1/executions/batch", $$$"""{"executions":[{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"d4","idempotency_key":"d5"}]}""", "executions[0].idempotency_key" },
        { "/v1/executions/batch", $$$"""{"executions":[],"executions":[{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"d6"}]}""", "executions" },
        { "/v1/admin/accounts", """{"name":"a","name":"b"}""", "name" },
        { "/v1/admin/accounts/{account}/api-keys", """{"name":"a","name":"b"}""", "name" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"d7","metadata":{"a":"1","\u0061":"2"}}""", "metadata.a" },

        // Numbers outside what a double (or, for integers, 64 bits) holds.
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n1","metadata":{"big":1e309}}""", "metadata.big" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n2","metadata":{"big":-1e309}}""", "metadata.big" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n3","metadata":{"big":1E+400}}""", "metadata.big" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n4","metadata":{"big":9999999999999999999999}}""", "metadata.big" },
        { "/v1/executions", $$$"""{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n5","metadata":{"big":-9223372036854775809}}""", "metadata.big" },
        { "/v1/executions", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"a"}],"temperature":1e309},"idempotency_key":"n6"}""", "input.temperature" },
        { "/v1/executions", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"a"}],"provider_options":{"seeds":[1,2,1e999]}},"idempotency_key":"n7"}""", "input.provider_options.seeds[2]" },
        { "/v1/executions", """{"model":"sim/text","input":{"messages":[{"role":"user","content":"a"}]},"idempotency_key":"n8","timeout_seconds":1e309}""", "timeout_seconds" },
        { "/v1/executions/batch", $$$"""{"executions":[{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n9","metadata":{"n":1e309}}]}""", "executions[0].metadata.n" },
        { "/v1/executions/batch", $$$"""[{"model":"sim/text","input":{{{Messages}}},"idempotency_key":"n10","metadata":{"n":1e309}}]""", "body[0].metadata.n" },
        { "/v1/webhook-endpoints", """{"url":"https://hooks.example/a","description":"x","events":["execution.completed"],"n":1e309}""", "n" },
        { "/v1/admin/accounts/{account}/credits", """{"amount_usd":"1","reference":"n11","n":-1E+400}""", "n" },
        { "/v1/admin/accounts", """{"name":"a","n":1e309}""", "n" },
        { "/v1/executions", "1e309", "body" },
    };

    [Theory]
    [MemberData(nameof(HostileJson))]
    public async Task Hostile_json_is_a_400_naming_the_field_and_stores_nothing(string endpoint, string body, string field)
    {
        var before = await CountsAsync();

        var response = await SendRawAsync("POST", await PathAsync(endpoint), $"Content-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}");

        response.Status.ShouldBe(400, response.ToString());
        response.ContentType.ShouldBe("application/problem+json");
        response.Body.ShouldContain("\"code\":\"VALIDATION_ERROR\"");
        response.Body.ShouldContain($"\"field\":\"{field}\"", Case.Sensitive, response.Body);
        (await CountsAsync()).ShouldBe(before);
        AssertNoUnhandledException();
    }

    [Fact]
    public async Task Numbers_every_client_reads_alike_are_accepted_and_echoed_exactly()
    {
        using var account = await Gateway.CreateAccountAsync();
        const string metadata = """{"u64":18446744073709551615,"i64":-9223372036854775808,"d":1.5e300,"tiny":5e-324,"neg":-0}""";

        var submitted = await account.Client.SubmitTextAsync(extra: $$""","metadata":{{metadata}}""");

        submitted.Status.ShouldBe(202, submitted.Body);
        submitted.Json.GetProperty("metadata").GetRawText().ShouldBe(metadata);
        await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!); // settled before the next test counts rows
    }

    [Fact]
    public async Task A_well_framed_chunked_body_over_the_same_socket_is_accepted()
    {
        // The control for the framing corpus: the raw client itself is sound.
        var body = $$"""{"model":"sim/text","input":{{Messages}},"idempotency_key":"chunked-ok"}""";
        var framing = $"Transfer-Encoding: chunked\r\n\r\n{Encoding.UTF8.GetByteCount(body):x}\r\n{body}\r\n0\r\n\r\n";

        var response = await SendRawAsync("POST", "/v1/executions", framing);

        response.Status.ShouldBe(202, response.ToString());
        using var client = Gateway.WithBearer(await fixture.AccountKeyAsync());
        await client.WaitForTerminalAsync(System.Text.Json.JsonDocument.Parse(response.Body).RootElement.GetProperty("id").GetString()!);
    }

    public static TheoryData<string, string, int> KestrelRejections => new()
    {
        { "negative Content-Length", "POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}", 400 },
        { "two Content-Lengths", "POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400 },
        { "Content-Length not a number", "POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 2x\r\n\r\n{}", 400 },
        { "unknown transfer coding", "POST /v1/executions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}", 400 },
        { "NUL in the path", "GET /v1/executions/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400 },
        { "no Host header", "GET /v1/executions HTTP/1.1\r\n\r\n", 400 },
        { "header without a colon", "GET /v1/executions HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n", 400 },
        { "headers too large", $"GET /v1/executions HTTP/1.1\r\nHost: x\r\nX-Big: {new string('a', 40_000)}\r\n\r\n", 431 },
        { "request line too long", $"GET /v1/{new string('a', 10_000)} HTTP/1.1\r\nHost: x\r\n\r\n", 414 },
    };

    [Theory]
    [MemberData(nameof(KestrelRejections))]
    public async Task What_the_web_server_refuses_before_the_gateway_sees_it_is_a_problem_with_its_own_status(string name, string request, int status)
    {
        var before = await CountsAsync();

        var response = await SendAsync(Encoding.Latin1.GetBytes(request), halfClose: false);

        // docs/api.md, "Bad input": the server's own rejection, with a problem body in place of none.
        response.Status.ShouldBe(status, $"{name} → {response}");
        response.ContentType.ShouldBe("application/problem+json", $"{name} → {response}");
        response.Header("connection").ShouldBe("close", name);
        int.Parse(response.Header("content-length")!, System.Globalization.CultureInfo.InvariantCulture).ShouldBe(Encoding.UTF8.GetByteCount(response.Body), name);
        var problem = System.Text.Json.JsonDocument.Parse(response.Body).RootElement;
        problem.GetProperty("status").GetInt32().ShouldBe(status);
        problem.GetProperty("code").GetString().ShouldBe("VALIDATION_ERROR");
        (await CountsAsync()).ShouldBe(before);
        AssertNoUnhandledException();
    }

    [Fact]
    public async Task A_rejection_pipelined_behind_good_requests_leaves_their_answers_untouched()
    {
        var key = await fixture.AccountKeyAsync();
        var good = $"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n";
        var bad = "GET /v1/models HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        using var client = Gateway.WithBearer(key);
        var expected = await client.GetApiAsync("/v1/models");

        var all = await SendAndReadToCloseAsync(Encoding.Latin1.GetBytes(good + good + bad));

        var responses = ParseAll(all);
        responses.Select(r => r.Status).ShouldBe([200, 200, 400], all);
        responses[0].Body.ShouldBe(expected.Body);
        responses[1].Body.ShouldBe(expected.Body);
        responses[0].ContentType.ShouldBe("application/json");
        responses[2].ContentType.ShouldBe("application/problem+json");
    }

    private async Task<string> PathAsync(string endpoint) =>
        endpoint.Replace("{account}", await fixture.AccountIdAsync(), StringComparison.Ordinal);

    private async Task<long[]> CountsAsync()
    {
        var counts = new long[Tables.Length];
        for (var i = 0; i < Tables.Length; i++)
        {
            counts[i] = await Gateway.CountRowsAsync(Tables[i]);
        }

        return counts;
    }

    private void AssertNoUnhandledException() =>
        Gateway.Logs.Lines.Where(l => l.StartsWith("Error ", StringComparison.Ordinal) || l.StartsWith("Critical ", StringComparison.Ordinal)
            || l.Contains("BadHttpRequestException", StringComparison.Ordinal)).ShouldBeEmpty();

    private async Task<RawResponse> SendRawAsync(string method, string path, string framing, bool halfClose = false)
    {
        var key = path.StartsWith("/v1/admin", StringComparison.Ordinal) ? GatewayFactory.AdminKey : await fixture.AccountKeyAsync();
        var head = $"{method} {path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n";
        return await SendAsync(Encoding.UTF8.GetBytes(head + framing), halfClose);
    }

    /// <summary>Writes the bytes as given on a fresh connection and reads one response (headers, then Content-Length bytes or to the close).</summary>
    private async Task<RawResponse> SendAsync(byte[] request, bool halfClose)
    {
        var address = fixture.Address;
        using var tcp = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await tcp.ConnectAsync(address.Host, address.Port, timeout.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(request, timeout.Token);
        if (halfClose)
        {
            tcp.Client.Shutdown(SocketShutdown.Send);
        }

        var received = new MemoryStream();
        var buffer = new byte[8192];
        while (true)
        {
            var text = Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 && RawResponse.Parse(text[..end]) is var head)
            {
                if (head.Header("content-length") is { } length && text.Length - end - 4 >= int.Parse(length, System.Globalization.CultureInfo.InvariantCulture))
                {
                    return head with { Body = text[(end + 4)..] };
                }

                if (head.Header("transfer-encoding") == "chunked" && text.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
                {
                    return head with { Body = Unchunk(text[(end + 4)..]) };
                }
            }

            int read;
            try
            {
                read = await stream.ReadAsync(buffer, timeout.Token);
            }
            catch (IOException) when (received.Length > 0 || halfClose)
            {
                read = 0; // reset after the answer was sent
            }

            if (read == 0)
            {
                var all = Encoding.UTF8.GetString(received.GetBuffer(), 0, (int)received.Length);
                var split = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (all.Length == 0 && halfClose)
                {
                    return new RawResponse(0, [], "");
                }

                split.ShouldBeGreaterThanOrEqualTo(0, $"the connection closed without a response: '{all}'");
                return RawResponse.Parse(all[..split]) with { Body = all[(split + 4)..] };
            }

            received.Write(buffer, 0, read);
        }
    }

    private static string Unchunk(string chunked) => Unchunk(chunked, out _);

    private static string Unchunk(string chunked, out int consumed)
    {
        var body = new StringBuilder();
        var at = 0;
        while (true)
        {
            var lineEnd = chunked.IndexOf("\r\n", at, StringComparison.Ordinal);
            var size = int.Parse(chunked[at..lineEnd], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
            if (size == 0)
            {
                consumed = lineEnd + 4;
                return body.ToString();
            }

            body.Append(chunked, lineEnd + 2, size); // the problem bodies are ASCII, so characters are bytes
            at = lineEnd + 2 + size + 2;
        }
    }

    private async Task<string> SendAndReadToCloseAsync(byte[] request)
    {
        using var tcp = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await tcp.ConnectAsync(fixture.Address.Host, fixture.Address.Port, timeout.Token);
        var stream = tcp.GetStream();
        await stream.WriteAsync(request, timeout.Token);
        var received = new MemoryStream();
        try
        {
            await stream.CopyToAsync(received, timeout.Token);
        }
        catch (IOException)
        {
            // reset after the last answer
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    /// <summary>Splits a connection's output into its responses, by their own framing.</summary>
    private static List<RawResponse> ParseAll(string all)
    {
        var responses = new List<RawResponse>();
        while (all.Length > 0)
        {
            var end = all.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var head = RawResponse.Parse(all[..end]);
            var rest = all[(end + 4)..];
            if (head.Header("content-length") is { } length)
            {
                var n = int.Parse(length, System.Globalization.CultureInfo.InvariantCulture);
                responses.Add(head with { Body = rest[..n] });
                all = rest[n..];
            }
            else
            {
                responses.Add(head with { Body = Unchunk(rest, out var consumed) });
                all = rest[consumed..];
            }
        }

        return responses;
    }

    public sealed record RawResponse(int Status, IReadOnlyList<(string Name, string Value)> Headers, string Body)
    {
        public string? ContentType => Header("content-type")?.Split(';')[0].Trim();

        public string? Header(string name) => Headers.Where(h => h.Name == name).Select(h => h.Value).FirstOrDefault();

        public static RawResponse Parse(string head)
        {
            var lines = head.Split("\r\n");
            var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => (p[0].Trim().ToLowerInvariant(), p[1].Trim())).ToList();
            return new RawResponse(status, headers, "");
        }

        public override string ToString() => $"{Status} {string.Join("; ", Headers.Select(h => $"{h.Name}: {h.Value}"))} {Body}";
    }

    public sealed class Fixture : IAsyncLifetime
    {
        private TestAccount? _account;

        public GatewayFactory Gateway { get; } = new();

        public Uri Address { get; private set; } = null!;

        public Task<string> AccountIdAsync() => Task.FromResult(_account!.Id);

        public Task<string> AccountKeyAsync() => Task.FromResult(_account!.Key);

        public async Task InitializeAsync()
        {
            using var client = Gateway.Anonymous();
            Address = client.BaseAddress!;
            _account = await Gateway.CreateAccountAsync();
        }

        public async Task DisposeAsync()
        {
            _account?.Dispose();
            await Gateway.DisposeAsync();
        }
    }
}
