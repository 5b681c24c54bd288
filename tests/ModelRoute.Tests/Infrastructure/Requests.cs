using Dapper;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>One gateway shared by the tests of a class; each test makes its own account.</summary>
public sealed class SharedGateway : IAsyncLifetime
{
    public GatewayFactory Gateway { get; } = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

public static class RequestExtensions
{
    /// <summary>Sends a request exactly as given: any body, any content type, any Authorization header (or none).</summary>
    public static async Task<ApiResponse> SendRawAsync(this HttpClient client, HttpMethod method, string path, HttpContent? content = null, string? authorization = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization).ShouldBeTrue();
        }

        var response = await client.SendAsync(request);
        return new ApiResponse((int)response.StatusCode, response, await response.Content.ReadAsStringAsync());
    }

    public static StringContent Json(string json, string contentType = "application/json") =>
        new(json, Encoding.UTF8, new System.Net.Http.Headers.MediaTypeHeaderValue(contentType));

    /// <summary>The problem's <c>field</c> member (the problem's code is checked first).</summary>
    public static string? ProblemField(this ApiResponse response)
    {
        _ = response.ProblemCode;
        return response.Json.TryGetProperty("field", out var field) ? field.GetString() : null;
    }

    /// <summary>Rows in one table of the gateway's store, read straight from the store.</summary>
    public static async Task<long> CountRowsAsync(this GatewayFactory gateway, string table)
    {
        gateway.StartServer(); // the store's schema exists once the gateway has started
        await using var connection = gateway.OpenStoreConnection();
        return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
    }

    /// <summary>Every value of every row of a table as text, for checking that a secret is not stored.</summary>
    public static async Task<List<string>> DumpTableAsync(this GatewayFactory gateway, string table)
    {
        gateway.StartServer();
        await using var connection = gateway.OpenStoreConnection();
        var rows = (await connection.QueryAsync($"SELECT * FROM {table}")).ToList();
        return [.. rows.SelectMany(r => ((IDictionary<string, object?>)r).Values).Select(v => v?.ToString() ?? "")];
    }
}
