using System.Net;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Tests.Mcp;

/// <summary>docs/mcp.md: the gateway's tools at /mcp (Streamable HTTP), through the C# MCP client.</summary>
public sealed class McpHttpTests : IAsyncLifetime
{
    private readonly GatewayFactory _gateway = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _gateway.DisposeAsync();

    [Fact]
    public async Task Without_a_key_mcp_is_401_and_with_a_revoked_key_or_a_disabled_account_it_is_refused_like_http()
    {
        using var anonymous = _gateway.Anonymous();
        var initialize = """{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/mcp") { Content = new StringContent(initialize, Encoding.UTF8, "application/json") };
        request.Headers.Accept.ParseAdd("application/json, text/event-stream");
        var response = await anonymous.SendAsync(request);
        response.StatusCode.ShouldBe(HttpStatusCode.Unauthorized);
        (await Should.ThrowAsync<Exception>(() => McpTestClient.ConnectAsync(_gateway, "mr_live_not_a_key"))).ShouldNotBeNull();

        using var account = await _gateway.CreateAccountAsync();
        var second = await account.Client.PostJsonAsync("/v1/api-keys", "{}");
        second.Status.ShouldBe(201, second.Body);
        await using (var revoked = await McpTestClient.ConnectAsync(_gateway, second.Json.GetProperty("key").GetString()))
        {
            (await revoked.CallAsync("get_balance")).IsError.ShouldNotBe(true);
            var revoke = await account.Client.SendJsonAsync(HttpMethod.Delete, $"/v1/api-keys/{second.Json.GetProperty("id").GetString()}", null);
            revoke.Status.ShouldBeInRange(200, 204, revoke.Body);
            var refusedKey = await Should.ThrowAsync<Exception>(() => revoked.CallAsync("get_balance"));
            refusedKey.ToString().ShouldContain("401");
        }

        await using (var client = await McpTestClient.ConnectAsync(_gateway, account.Key))
        {
            (await client.CallAsync("get_balance")).Structured().GetProperty("balance").GetString().ShouldBe("10.000000");
            using var admin = _gateway.Admin();
            (await admin.PostJsonAsync($"/v1/admin/accounts/{account.Id}/disable", "{}")).Status.ShouldBe(200);
            var refused = await Should.ThrowAsync<Exception>(() => client.CallAsync("get_balance"));
            refused.ToString().ShouldContain("403");
        }

        (await Should.ThrowAsync<Exception>(() => McpTestClient.ConnectAsync(_gateway, account.Key))).ShouldNotBeNull();
    }

    [Fact]
    public async Task The_tools_are_listed_with_descriptions_and_schemas_that_ask_for_a_deterministic_idempotency_key()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var tools = await client.ListToolsAsync();

        tools.Select(t => t.Name).ShouldBe(
            ["list_models", "submit_execution", "submit_batch", "get_execution", "wait_for_execution", "cancel_execution", "list_executions", "get_balance", "get_artifact"],
            ignoreOrder: true);
        var submit = tools.Single(t => t.Name == "submit_execution");
        submit.Description.ShouldContain("order-42-step-3");
        submit.JsonSchema.GetProperty("required").EnumerateArray().Select(r => r.GetString()).ShouldBe(["model", "input", "idempotency_key"]);
        tools.Single(t => t.Name == "wait_for_execution").JsonSchema.GetProperty("properties").GetProperty("timeout_seconds").GetProperty("maximum").GetInt32().ShouldBe(60);
        var models = (await client.CallAsync("list_models")).Structured();
        models.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ShouldContain("sim/text");
    }

    [Fact]
    public async Task An_execution_is_submitted_waited_for_with_progress_read_listed_and_replayed_by_its_key()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);
        var submission = new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = "hello" } }, simulate = new { latency_ms = 6500 } }, idempotency_key = "order-42-step-3" };

        var submitted = await client.CallAsync("submit_execution", submission);
        var id = submitted.Structured().GetProperty("id").GetString()!;
        var progress = new ConcurrentQueue<ModelContextProtocol.ProgressNotificationValue>();
        var waited = await client.CallAsync("wait_for_execution", new { id, timeout_seconds = 30 }, new SyncProgress(progress));
        var replayed = await client.CallAsync("submit_execution", submission);

        submitted.Structured().GetProperty("status").GetString().ShouldBe("PENDING");
        submitted.Text().ShouldContain(id);
        waited.Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");
        waited.Structured().GetProperty("output").GetProperty("text").GetString()!.ShouldContain("hello");
        await Eventually.HoldsAsync(() => !progress.IsEmpty, "a progress notification while waiting");
        progress.First().Total.ShouldBe(30);
        replayed.Structured().GetProperty("id").GetString().ShouldBe(id);
        (await client.CallAsync("get_execution", new { id })).Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");
        var listed = (await client.CallAsync("list_executions", new { status = "COMPLETED", model = "sim/text", limit = 10 })).Structured();
        listed.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()).ShouldBe([id]);
        var balance = (await client.CallAsync("get_balance")).Structured();
        balance.GetProperty("held").GetString().ShouldBe("0.000000");
        (await account.Client.GetApiAsync($"/v1/executions/{id}")).Json.GetProperty("status").GetString().ShouldBe("COMPLETED");
    }

    [Fact]
    public async Task A_wait_that_runs_out_returns_the_execution_as_it_is_and_cancel_then_ends_it()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);
        var id = (await client.CallAsync("submit_execution", new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = "slow" } }, simulate = new { latency_ms = 60000 } }, idempotency_key = "slow-1" }))
            .Structured().GetProperty("id").GetString()!;

        var waited = await client.CallAsync("wait_for_execution", new { id, timeout_seconds = 1 });
        var cancelled = await client.CallAsync("cancel_execution", new { id });
        var again = await client.CallAsync("cancel_execution", new { id });

        waited.IsError.ShouldNotBe(true);
        waited.Structured().GetProperty("status").GetString().ShouldBeOneOf("PENDING", "PROCESSING");
        waited.Text().ShouldContain("still running");
        cancelled.Structured().GetProperty("status").GetString().ShouldBe("CANCELLED");
        again.ErrorCode().ShouldBe("INVALID_STATE");
        (await client.CallAsync("get_balance")).Structured().GetProperty("balance").GetString().ShouldBe("10.000000");
    }

    [Fact]
    public async Task A_batch_answers_each_item_on_its_own()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var batch = await client.CallAsync("submit_batch", new
        {
            executions = new object[]
            {
                new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = "a" } } }, idempotency_key = "batch-7-a" },
                new { model = "sim/nope", input = new { messages = new[] { new { role = "user", content = "b" } } }, idempotency_key = "batch-7-b" },
                new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = "c" } } } },
            },
        });

        var items = batch.Structured().GetProperty("data").EnumerateArray().ToList();
        items.Select(i => i.GetProperty("status").GetInt32()).ShouldBe([202, 422, 400]);
        items[1].GetProperty("error").GetProperty("code").GetString().ShouldBe("MODEL_NOT_FOUND");
        items[2].GetProperty("error").GetProperty("field").GetString().ShouldBe("executions[2].idempotency_key");
        batch.Text().ShouldContain("1 accepted, 2 refused");
        (await client.CallAsync("submit_batch", new { executions = Array.Empty<object>() })).ErrorCode().ShouldBe("VALIDATION_ERROR");
    }

    [Fact]
    public async Task An_image_artifact_comes_back_as_image_content_and_a_video_as_a_resource_link_with_its_size()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);
        var image = (await client.CallAsync("submit_execution", new { model = "sim/image", input = new { prompt = "a cat", n = 1 }, idempotency_key = "img-1" })).Structured().GetProperty("id").GetString()!;
        var video = (await client.CallAsync("submit_execution", new { model = "sim/video", input = new { prompt = "waves", duration_seconds = 2 }, idempotency_key = "vid-1" })).Structured().GetProperty("id").GetString()!;
        (await client.CallAsync("wait_for_execution", new { id = image })).Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");
        (await client.CallAsync("wait_for_execution", new { id = video })).Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");

        var png = await client.CallAsync("get_artifact", new { id = image, name = "image-0.png" });
        var mp4 = await client.CallAsync("get_artifact", new { id = video, name = "video.mp4" });
        var missing = await client.CallAsync("get_artifact", new { id = image, name = "image-9.png" });

        var picture = png.Content.OfType<ImageContentBlock>().Single();
        picture.MimeType.ShouldBe("image/png");
        var bytes = (await account.Client.GetAsync($"/v1/executions/{image}/artifacts/image-0.png")).Content.ReadAsByteArrayAsync();
        picture.DecodedData.ToArray().ShouldBe(await bytes);
        var link = mp4.Content.OfType<ResourceLinkBlock>().Single();
        link.MimeType.ShouldBe("video/mp4");
        link.Size.ShouldBe(mp4.Structured().GetProperty("size_bytes").GetInt64());
        link.Uri.ShouldBe(new Uri(McpTestClient.Endpoint(_gateway), $"/v1/executions/{video}/artifacts/video.mp4").ToString());
        missing.ErrorCode().ShouldBe("NOT_FOUND");
    }

    [Fact]
    public async Task Bad_arguments_are_tool_errors_with_the_codes_of_the_http_api_never_protocol_errors()
    {
        using var account = await _gateway.CreateAccountAsync();
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var noKey = await client.CallAsync("submit_execution", new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = "x" } } } });
        var wrongType = await client.CallAsync("submit_execution", new { model = 42, input = new { prompt = "x" }, idempotency_key = "k-1" });
        var unknownModel = await client.CallAsync("submit_execution", new { model = "sim/nope", input = new { prompt = "x" }, idempotency_key = "k-2" });
        var badWait = await client.CallAsync("wait_for_execution", new { id = "exe_x", timeout_seconds = 61 });
        var noId = await client.CallAsync("get_execution", new { });
        var badStatus = await client.CallAsync("list_executions", new { status = "DONE" });
        var badLimit = await client.CallAsync("list_executions", new { limit = "ten" });
        var unknownTool = await client.CallAsync("launch_rockets");

        (noKey.ErrorCode(), noKey.ErrorField()).ShouldBe(("VALIDATION_ERROR", "idempotency_key"));
        (wrongType.ErrorCode(), wrongType.ErrorField()).ShouldBe(("VALIDATION_ERROR", "model"));
        unknownModel.ErrorCode().ShouldBe("MODEL_NOT_FOUND");
        (badWait.ErrorCode(), badWait.ErrorField()).ShouldBe(("VALIDATION_ERROR", "timeout_seconds"));
        (noId.ErrorCode(), noId.ErrorField()).ShouldBe(("VALIDATION_ERROR", "id"));
        (badStatus.ErrorCode(), badStatus.ErrorField()).ShouldBe(("VALIDATION_ERROR", "status"));
        (badLimit.ErrorCode(), badLimit.ErrorField()).ShouldBe(("VALIDATION_ERROR", "limit"));
        unknownTool.ErrorCode().ShouldBe("NOT_FOUND");
        noKey.Text().ShouldStartWith("VALIDATION_ERROR: ");
        (await _gateway.CountRowsAsync("executions")).ShouldBe(0);
    }

    [Fact]
    public async Task Another_accounts_execution_is_not_found_through_every_tool()
    {
        using var owner = await _gateway.CreateAccountAsync();
        using var other = await _gateway.CreateAccountAsync();
        await using var ownerClient = await McpTestClient.ConnectAsync(_gateway, owner.Key);
        await using var otherClient = await McpTestClient.ConnectAsync(_gateway, other.Key);
        var id = (await ownerClient.CallAsync("submit_execution", new { model = "sim/image", input = new { prompt = "mine" }, idempotency_key = "wall-1" }))
            .Structured().GetProperty("id").GetString()!;
        (await ownerClient.CallAsync("wait_for_execution", new { id })).Structured().GetProperty("status").GetString().ShouldBe("COMPLETED");

        (await otherClient.CallAsync("get_execution", new { id })).ErrorCode().ShouldBe("NOT_FOUND");
        (await otherClient.CallAsync("wait_for_execution", new { id, timeout_seconds = 1 })).ErrorCode().ShouldBe("NOT_FOUND");
        (await otherClient.CallAsync("cancel_execution", new { id })).ErrorCode().ShouldBe("NOT_FOUND");
        (await otherClient.CallAsync("get_artifact", new { id, name = "image-0.png" })).ErrorCode().ShouldBe("NOT_FOUND");
        (await otherClient.CallAsync("list_executions")).Structured().GetProperty("data").GetArrayLength().ShouldBe(0);
        var read = await Should.ThrowAsync<ModelContextProtocol.McpException>(() => otherClient.ReadResourceAsync($"modelroute://executions/{id}").AsTask());
        read.Message.ShouldContain("NOT_FOUND");
        var mine = await ownerClient.ReadResourceAsync($"modelroute://executions/{id}");
        mine.Contents.OfType<TextResourceContents>().Single().Text.ShouldContain(id);
    }

    [Fact]
    public async Task A_hundred_concurrent_tool_calls_on_one_session_all_succeed()
    {
        using var account = await _gateway.CreateAccountAsync("100.00");
        await using var client = await McpTestClient.ConnectAsync(_gateway, account.Key);

        var calls = Enumerable.Range(0, 100).Select(i => i % 2 == 0
            ? client.CallAsync("submit_execution", new { model = "sim/text", input = new { messages = new[] { new { role = "user", content = $"p{i}" } } }, idempotency_key = $"fan-out-{i}" })
            : client.CallAsync("get_balance"));
        var results = await Task.WhenAll(calls);

        results.ShouldAllBe(r => r.IsError != true);
        var ids = results.Where((_, i) => i % 2 == 0).Select(r => r.Structured().GetProperty("id").GetString()).ToHashSet();
        ids.Count.ShouldBe(50);
        (await _gateway.CountRowsAsync("executions")).ShouldBe(50);
    }

    private sealed class SyncProgress(ConcurrentQueue<ModelContextProtocol.ProgressNotificationValue> values) : IProgress<ModelContextProtocol.ProgressNotificationValue>
    {
        public void Report(ModelContextProtocol.ProgressNotificationValue value) => values.Enqueue(value);
    }
}
