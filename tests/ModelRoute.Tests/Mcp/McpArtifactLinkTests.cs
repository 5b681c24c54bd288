using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Tests.Mcp;

/// <summary>
/// docs/mcp.md#tools: get_artifact's resource link is built from ModelRoute:PublicBaseUrl when it is set, so the
/// request's Host header never chooses it; from the address the client reached otherwise.
/// </summary>
public sealed class McpArtifactLinkTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Without_a_public_base_url_the_artifact_link_names_the_address_the_client_reached()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await ConnectWithHostAsync(_gateway, account.Key, "gateway.internal:8080");

        var link = await VideoLinkAsync(client);

        link.ShouldStartWith("http://gateway.internal:8080/v1/executions/");
    }

    [Fact]
    public async Task With_a_public_base_url_the_artifact_link_is_built_from_it_and_never_from_the_host_header()
    {
        await using var gateway = new GatewayFactory(new Dictionary<string, string?> { ["ModelRoute:PublicBaseUrl"] = "https://models.example.com/gateway/" });
        using var account = await gateway.CreateAccountAsync();
        await using var client = await ConnectWithHostAsync(gateway, account.Key, "attacker.example");

        var link = await VideoLinkAsync(client);

        link.ShouldStartWith("https://models.example.com/gateway/v1/executions/");
        link.ShouldEndWith("/artifacts/video.mp4");
        link.ShouldNotContain("attacker.example");
    }

    private static async Task<string> VideoLinkAsync(McpClient client)
    {
        var video = (await client.CallAsync("submit_execution", new { model = "sim/video", input = new { prompt = "waves", duration_seconds = 2 }, idempotency_key = "link-vid-1" }))
            .Structured().GetProperty("id").GetString()!;
        (await client.CallAsync("wait_for_execution", new { id = video })).Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");
        var artifact = await client.CallAsync("get_artifact", new { id = video, name = "video.mp4" });
        return artifact.Content.OfType<ResourceLinkBlock>().Single().Uri;
    }

    /// <summary>The C# MCP client sending every request with <paramref name="host"/> as its Host header.</summary>
    private static async Task<McpClient> ConnectWithHostAsync(GatewayFactory gateway, string key, string host)
    {
        var http = new HttpClient(new HostHeader(host) { InnerHandler = new HttpClientHandler() });
        var transport = new HttpClientTransport(
            new HttpClientTransportOptions
            {
                Endpoint = McpTestClient.Endpoint(gateway),
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key },
            },
            http,
            ownsHttpClient: true);
        return await McpClient.CreateAsync(transport);
    }

    private sealed class HostHeader(string host) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Host = host;
            return base.SendAsync(request, cancellationToken);
        }
    }
}
