using System.Collections.Frozen;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Net.Http.Headers;

namespace ModelRoute.Server.Console;

/// <summary>
/// Serves the web console (docs/console.md): static ES modules embedded in this assembly, so that every byte comes
/// from the gateway itself, with a Content-Security-Policy that lets only those files run (docs/console.md#safety).
/// The console talks to the public API with the key the person signs in with; these endpoints need no key.
/// </summary>
public static class ConsoleEndpoints
{
    /// <summary>Nothing but the console's own files may run or be fetched; no inline script or style, no framing.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
        + "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    public static void MapConsoleEndpoints(this IEndpointRouteBuilder app)
    {
        var assets = ConsoleAssets.Load(typeof(ConsoleEndpoints).Assembly);
        var console = app.MapGroup("/console").AllowAnonymous().ExcludeFromDescription().WithTags("Console");

        console.MapGet("/{**path}", (string? path, HttpContext context) => Serve(assets, path, context))
            .WithSummary("The web console's page and its files").WithName("Console");
    }

    private static IResult Serve(ConsoleAssets assets, string? path, HttpContext context)
    {
        Secure(context.Response);

        // The page's modules are addressed relative to it, so the page itself lives at /console/.
        if (string.IsNullOrEmpty(path) && !context.Request.Path.Value!.EndsWith('/'))
        {
            return TypedResults.Redirect($"{context.Request.PathBase}/console/");
        }

        if (!assets.TryGet(string.IsNullOrEmpty(path) ? "index.html" : path, out var asset))
        {
            return TypedResults.Text("Not found.", "text/plain; charset=utf-8", statusCode: StatusCodes.Status404NotFound);
        }

        // Revalidated on every load (cheap with the ETag), so an upgraded gateway never mixes old and new modules.
        context.Response.Headers.CacheControl = "no-cache";
        return TypedResults.Bytes(asset.Content, asset.ContentType, entityTag: asset.ETag);
    }

    private static void Secure(HttpResponse response)
    {
        var headers = response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
    }
}

/// <summary>The console's files, read once from the assembly's embedded resources (named <c>console/{file}</c>).</summary>
internal sealed class ConsoleAssets(FrozenDictionary<string, ConsoleAsset> files)
{
    private const string Prefix = "console/";

    public static ConsoleAssets Load(Assembly assembly)
    {
        var files = new Dictionary<string, ConsoleAsset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(Prefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var tag = new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 8))}\"");
            files[name[Prefix.Length..]] = new ConsoleAsset(content, ContentTypeOf(name), tag);
        }

        return new ConsoleAssets(files.ToFrozenDictionary(StringComparer.Ordinal));
    }

    public bool TryGet(string file, out ConsoleAsset asset) => files.TryGetValue(file, out asset!);

    private static string ContentTypeOf(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}

internal sealed record ConsoleAsset(byte[] Content, string ContentType, EntityTagHeaderValue ETag);
