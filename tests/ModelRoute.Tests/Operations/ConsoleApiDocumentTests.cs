namespace ModelRoute.Tests.Operations;

/// <summary>The endpoints the console uses are in the OpenAPI document with an operation id and a summary.</summary>
public sealed class ConsoleApiDocumentTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Theory]
    [InlineData("/v1/events", "get", "streamAccountEvents")]
    [InlineData("/v1/webhook-endpoints/{id}/test", "post", "sendWebhookTest")]
    [InlineData("/v1/admin/providers", "get", "listProviders")]
    public async Task The_endpoint_is_documented_with_its_operation_id_and_a_summary(string path, string method, string operationId)
    {
        using var client = _gateway.Anonymous();

        var document = await client.GetApiAsync("/openapi/v1.json");

        document.Status.ShouldBe(200, document.Body);
        var operation = document.Json.GetProperty("paths").GetProperty(path).GetProperty(method);
        operation.GetProperty("operationId").GetString().ShouldBe(operationId);
        operation.GetProperty("summary").GetString().ShouldNotBeNullOrWhiteSpace();
    }
}
