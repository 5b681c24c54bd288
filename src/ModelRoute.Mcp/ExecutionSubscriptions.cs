using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using ModelContextProtocol;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace ModelRoute.Mcp;

/// <summary>
/// resources/subscribe on <c>modelroute://executions/{id}</c>: the session is sent <c>notifications/resources/updated</c>
/// when the execution ends (docs/mcp.md#resources). Each watch waits as a long-poll does (on a node, woken by the change
/// signal, which hears other nodes' changes too), so it reads no more often than a client holding <c>?wait=</c>.
/// </summary>
public static class ExecutionSubscriptions
{
    /// <summary>A session may watch this many executions at once; more is refused, so that one client cannot pile up work.</summary>
    public const int MaxPerSession = 1000;

    private const int WaitSeconds = 60;

    /// <summary>The watches of each session (by its id; the stdio server has one session and no id), by resource URI.</summary>
    private static readonly ConcurrentDictionary<string, ConcurrentDictionary<string, CancellationTokenSource>> Sessions = new(StringComparer.Ordinal);

    public static async ValueTask<EmptyResult> SubscribeAsync(RequestContext<SubscribeRequestParams> request, CancellationToken cancellationToken)
    {
        var uri = request.Params?.Uri ?? "";
        var id = ExecutionResources.IdOf(uri) ?? throw new McpProtocolException($"Not an execution resource: {uri}.", McpErrorCode.InvalidParams);
        var gateway = GatewayTools.ConnectorOf(request).For(request.User);
        var current = await gateway.GetAsync(id, 0, cancellationToken);
        if (current.Error is { } error)
        {
            throw new McpProtocolException($"{error.Code}: {error.Message}", error.Code == "NOT_FOUND" ? McpErrorCode.ResourceNotFound : McpErrorCode.InvalidParams);
        }

        var watches = Sessions.GetOrAdd(request.Server.SessionId ?? "", _ => new(StringComparer.Ordinal));
        if (watches.Count >= MaxPerSession && !watches.ContainsKey(uri))
        {
            throw new McpProtocolException($"A session may watch at most {MaxPerSession} executions; unsubscribe from some first.", McpErrorCode.InvalidParams);
        }

        var stopping = (request.Services?.GetService(typeof(IHostApplicationLifetime)) as IHostApplicationLifetime)?.ApplicationStopping ?? CancellationToken.None;
        var watch = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        if (watches.TryAdd(uri, watch))
        {
            _ = WatchAsync(request.Server, gateway, id, uri, watches, watch);
        }
        else
        {
            watch.Dispose(); // already watched
        }

        return new EmptyResult();
    }

    public static ValueTask<EmptyResult> UnsubscribeAsync(RequestContext<UnsubscribeRequestParams> request, CancellationToken cancellationToken)
    {
        if (request.Params?.Uri is { } uri && Sessions.TryGetValue(request.Server.SessionId ?? "", out var watches) && watches.TryRemove(uri, out var watch))
        {
            watch.Cancel();
        }

        return ValueTask.FromResult(new EmptyResult());
    }

    /// <summary>Waits until the execution ends (at once if it has), then tells the session; ends on unsubscribe or when the session is gone.</summary>
    private static async Task WatchAsync(
        McpServer session, IGatewayOperations gateway, string id, string uri, ConcurrentDictionary<string, CancellationTokenSource> watches, CancellationTokenSource watch)
    {
        try
        {
            while (true)
            {
                var result = await gateway.GetAsync(id, WaitSeconds, watch.Token);
                if (result.Error is not null || Summaries.IsTerminal(result.Value))
                {
                    break;
                }
            }

            await session.SendNotificationAsync(
                NotificationMethods.ResourceUpdatedNotification, new ResourceUpdatedNotificationParams { Uri = uri }, cancellationToken: watch.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or InvalidOperationException or IOException or HttpRequestException)
        {
            // Unsubscribed, the node is stopping, or the session is gone: nothing to tell.
        }
        finally
        {
            watches.TryRemove(new KeyValuePair<string, CancellationTokenSource>(uri, watch));
            watch.Dispose();
            if (watches.IsEmpty)
            {
                // Benign race: a watch added meanwhile still ends with its execution; it just cannot be unsubscribed.
                Sessions.TryRemove(new KeyValuePair<string, ConcurrentDictionary<string, CancellationTokenSource>>(session.SessionId ?? "", watches));
            }
        }
    }
}
