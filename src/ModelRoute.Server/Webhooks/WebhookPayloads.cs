using ModelRoute.Server.Http;

namespace ModelRoute.Server.Webhooks;

/// <summary>
/// The body of an event, fixed when the event is written so that every retry sends the same
/// bytes: <c>{"id": "evt_…", "type": …, "created_at": …, "data": &lt;execution&gt;}</c> (docs/api.md#webhooks).
/// A thin payload carries only the execution's id and status, for receivers with small body limits.
/// </summary>
public static class WebhookPayloads
{
    public static string Build(string eventId, string type, DateTimeOffset createdAt, Execution execution, bool thin) =>
        JsonSerializer.Serialize(
            new EventBody(eventId, "event", type, createdAt, thin ? new ThinExecution(execution.Id, "execution", execution.Status.ToWire()) : ExecutionView.From(execution)),
            ApiJson.Options);

    /// <summary>The body of a <c>webhook.test</c> event: the endpoint it tests, in the envelope of every event.</summary>
    public static string Test(string eventId, DateTimeOffset createdAt, string endpointId) =>
        JsonSerializer.Serialize(new EventBody(eventId, "event", WebhookEventTypes.Test, createdAt, new TestedEndpoint(endpointId, "webhook_endpoint")), ApiJson.Options);

    /// <summary>Whether a submission with this <c>webhook_url</c> and <c>webhook_events</c> (JSON) wants <paramref name="type"/>.</summary>
    public static bool WantedBySubmission(string? webhookUrl, string? webhookEvents, string type)
    {
        if (webhookUrl is null)
        {
            return false;
        }

        var events = webhookEvents is null ? null : JsonSerializer.Deserialize<string[]>(webhookEvents);
        return (events ?? WebhookEventTypes.Default).Contains(type);
    }

    private sealed record EventBody(string Id, string Object, string Type, DateTimeOffset CreatedAt, object Data);

    private sealed record ThinExecution(string Id, string Object, string Status);

    private sealed record TestedEndpoint(string Id, string Object);
}
