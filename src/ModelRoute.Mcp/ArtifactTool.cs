using System.Text.Json;
using ModelContextProtocol.Protocol;

namespace ModelRoute.Mcp;

/// <summary>get_artifact: an image as image content (up to a size cap), any other file as a resource link (docs/mcp.md#tools).</summary>
internal static class ArtifactTool
{
    public static async Task<CallToolResult> GetAsync(IGatewayOperations gateway, string id, string name, CancellationToken cancellationToken)
    {
        var execution = await gateway.GetAsync(id, 0, cancellationToken);
        if (execution.Error is { } error)
        {
            return ToolResults.Error(error);
        }

        var artifact = execution.Value.TryGetProperty("artifacts", out var list)
            ? list.EnumerateArray().FirstOrDefault(a => Summaries.Text(a, "name") == name)
            : default;
        if (artifact.ValueKind != JsonValueKind.Object)
        {
            return ToolResults.Error(new GatewayError("NOT_FOUND", $"The artifact was not found: execution {id} has no artifact '{name}'."));
        }

        var contentType = Summaries.Text(artifact, "content_type");
        var size = artifact.TryGetProperty("size_bytes", out var s) && s.TryGetInt64(out var bytes) ? bytes : 0;
        var link = gateway.ArtifactLink(Summaries.Text(artifact, "url"));
        ContentBlock content = new ResourceLinkBlock { Uri = link, Name = name, MimeType = contentType, Size = size, Description = $"{name} of execution {id}" };
        if (contentType.StartsWith("image/", StringComparison.OrdinalIgnoreCase) && size <= GatewayTools.MaxInlineImageBytes)
        {
            var read = await gateway.ReadArtifactAsync(id, name, GatewayTools.MaxInlineImageBytes, cancellationToken);
            if (read.Error is { } readError)
            {
                return ToolResults.Error(readError);
            }

            content = ImageContentBlock.FromBytes(read.Content, contentType);
        }

        return new CallToolResult
        {
            Content = [new TextContentBlock { Text = $"{name} ({contentType}, {size} bytes) of execution {id}; HTTP: {link}" }, content],
            StructuredContent = artifact.Clone(),
        };
    }
}
