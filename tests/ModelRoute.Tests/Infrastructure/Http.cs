using System.Text;
using System.Text.Json;

namespace ModelRoute.Tests.Infrastructure;

/// <summary>A response read whole: status, headers and the body as JSON (or text when it is not JSON).</summary>
public sealed record ApiResponse(int Status, HttpResponseMessage Message, string Body)
{
    public JsonElement Json => JsonDocument.Parse(Body).RootElement;

    public string? Header(string name) =>
        Message.Headers.TryGetValues(name, out var values) || Message.Content.Headers.TryGetValues(name, out values) ? string.Join(",", values) : null;

    /// <summary>The problem's <c>code</c>, checking that the body is an RFC 9457 problem.</summary>
    public string ProblemCode
    {
        get
        {
            Message.Content.Headers.ContentType?.MediaType.ShouldBe("application/problem+json", Body);
            Json.GetProperty("status").GetInt32().ShouldBe(Status);
            return Json.GetProperty("code").GetString()!;
        }
    }

    public override string ToString() => $"{Status} {Body}";
}

public static class HttpExtensions
{
    public static async Task<ApiResponse> SendJsonAsync(this HttpClient client, HttpMethod method, string path, string? json, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8);
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        }

        var response = await client.SendAsync(request);
        return new ApiResponse((int)response.StatusCode, response, await response.Content.ReadAsStringAsync());
    }

    public static Task<ApiResponse> PostJsonAsync(this HttpClient client, string path, string json) => client.SendJsonAsync(HttpMethod.Post, path, json);

    public static Task<ApiResponse> GetApiAsync(this HttpClient client, string path) => client.SendJsonAsync(HttpMethod.Get, path, null);

    /// <summary>Submits a minimal valid execution; <paramref name="input"/> is the input object's JSON.</summary>
    public static Task<ApiResponse> SubmitAsync(this HttpClient client, string model, string input, string? key = null, string extra = "") =>
        client.PostJsonAsync("/v1/executions", $$"""{"model":"{{model}}","input":{{input}},"idempotency_key":"{{key ?? Guid.NewGuid().ToString()}}"{{extra}}}""");

    public static Task<ApiResponse> SubmitTextAsync(this HttpClient client, string? key = null, string simulate = "{}", string extra = "") =>
        client.SubmitAsync("sim/text", $$"""{"messages":[{"role":"user","content":"hello"}],"simulate":{{simulate}}}""", key, extra);

    /// <summary>Long-polls until the execution is terminal (or the time runs out) and returns it.</summary>
    public static async Task<JsonElement> WaitForTerminalAsync(this HttpClient client, string id, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var response = await client.GetApiAsync($"/v1/executions/{id}?wait=5");
            response.Status.ShouldBe(200, response.Body);
            var status = response.Json.GetProperty("status").GetString();
            if (status is "COMPLETED" or "FAILED" or "CANCELLED" or "EXPIRED" || DateTime.UtcNow > deadline)
            {
                return response.Json;
            }
        }
    }

    /// <summary>Polls until the execution reaches <paramref name="status"/>.</summary>
    public static async Task<JsonElement> WaitForStatusAsync(this HttpClient client, string id, string status, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var response = await client.GetApiAsync($"/v1/executions/{id}");
            if (response.Json.GetProperty("status").GetString() == status)
            {
                return response.Json;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new ShouldAssertException($"{id} did not reach {status}: {response.Body}");
            }

            await Task.Delay(20);
        }
    }

    public static async Task<(long Balance, long Held, long Available)> BalanceAsync(this HttpClient client)
    {
        var response = await client.GetApiAsync("/v1/balance");
        response.Status.ShouldBe(200, response.Body);
        return (Micros(response.Json.GetProperty("balance")), Micros(response.Json.GetProperty("held")), Micros(response.Json.GetProperty("available")));
    }

    /// <summary>Every ledger entry of the account, oldest first, following the cursor.</summary>
    public static async Task<List<JsonElement>> LedgerAsync(this HttpClient client)
    {
        var entries = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var page = await client.GetApiAsync("/v1/ledger?limit=100" + (cursor is null ? "" : "&cursor=" + cursor));
            page.Status.ShouldBe(200, page.Body);
            entries.AddRange(page.Json.GetProperty("data").EnumerateArray());
            cursor = page.Json.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        entries.Reverse();
        return entries;
    }

    /// <summary>
    /// Every page of a cursor-paged list, first to last: <paramref name="path"/> (which has a query already) and then
    /// each page's next_cursor until it is null; a cursor that never ends fails the test.
    /// </summary>
    public static async Task<List<JsonElement>> PagesAsync(this HttpClient client, string path)
    {
        var pages = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var page = await client.GetApiAsync(path + (cursor is null ? "" : "&cursor=" + Uri.EscapeDataString(cursor)));
            page.Status.ShouldBe(200, page.Body);
            pages.Add(page.Json);
            cursor = page.Json.GetProperty("next_cursor").GetString();
            pages.Count.ShouldBeLessThan(50, "the cursor must come to an end");
        }
        while (cursor is not null);
        return pages;
    }

    /// <summary>Every execution of the account, newest first, following the cursor.</summary>
    public static async Task<List<JsonElement>> ExecutionsAsync(this HttpClient client, string query = "")
    {
        var all = new List<JsonElement>();
        string? cursor = null;
        do
        {
            var page = await client.GetApiAsync("/v1/executions?limit=100" + query + (cursor is null ? "" : "&cursor=" + cursor));
            page.Status.ShouldBe(200, page.Body);
            all.AddRange(page.Json.GetProperty("data").EnumerateArray());
            cursor = page.Json.GetProperty("next_cursor").GetString();
        }
        while (cursor is not null);
        return all;
    }

    /// <summary>"1.234567" → 1234567 micro-dollars, exactly.</summary>
    public static long Micros(JsonElement amount) => Micros(amount.GetString()!);

    public static long Micros(string amount)
    {
        ModelRoute.Server.Billing.Money.TryParseUsd(amount.TrimStart('-'), out var micros).ShouldBeTrue(amount);
        return amount.StartsWith('-') ? -micros : micros;
    }
}
