using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace ModelRoute.Server.Http.OpenApi;

/// <summary>
/// Describes every <c>{param}</c> of every path, with an example id of the right kind (docs/api.md#path-parameters).
/// An <c>{id}</c> is named by the collection it follows (<c>executions/{id}</c>), since the same name means an
/// execution, an account, a webhook endpoint or a delivery; a parameter missing here stays undescribed, which
/// OpenApiDocumentTests refuses, so a new route cannot go out without its parameters explained.
/// </summary>
internal static class ApiPathParameters
{
    private static readonly Dictionary<string, (string Description, string? Example)> Known = new(StringComparer.Ordinal)
    {
        ["executions/{id}"] = ("The execution's id, as the submission answered it (`exe_…`).", "exe_01m7y9jszfafe8hx2r11r1jrrw"),
        ["accounts/{id}"] = ("The account's id (`acct_…`).", "acct_01m7y9hq3c9v0m2d8k4e6t1r5s"),
        ["webhook-endpoints/{id}"] = ("The webhook endpoint's id (`we_…`).", "we_01m7y9kt5n2b7c4d9f0g3h6j8k"),
        ["webhook-deliveries/{id}"] = ("The webhook delivery's id (`whd_…`).", "whd_01m7y9m0p4q8r2s6t0v3w7x1y5"),
        ["key_id"] = ("The API key's id (`key_…`), as listed with the keys; never the secret.", "key_01m7y9j1a5b9c3d7e1f5g9h3j7"),
        ["name"] = ("The artifact's file name, as in the execution's `artifacts[].name`.", "image-0.png"),
        ["provider"] = ("The provider's configured name, as given in the callback URL the gateway handed it.", "replicate"),
        ["executionId"] = ("The execution's id (`exe_…`), as given in the callback URL the gateway handed the provider.", "exe_01m7y9jszfafe8hx2r11r1jrrw"),
    };

    public static void Describe(OpenApiOperation operation, string? relativePath)
    {
        foreach (var parameter in (operation.Parameters ?? []).OfType<OpenApiParameter>().Where(p => p.In == ParameterLocation.Path))
        {
            if (parameter.Name is null || Find(parameter.Name, relativePath) is not { } known)
            {
                continue;
            }

            parameter.Description ??= known.Description;
            if (known.Example is { } example)
            {
                parameter.Example = JsonValue.Create(example);
            }
        }
    }

    private static (string Description, string? Example)? Find(string name, string? relativePath)
    {
        if (Known.TryGetValue(name, out var byName))
        {
            return byName;
        }

        // The collection segment right before the parameter: "v1/admin/accounts/{id}/api-keys" → "accounts/{id}".
        var token = "{" + name + "}";
        var at = relativePath?.IndexOf(token, StringComparison.Ordinal) ?? -1;
        if (at <= 1)
        {
            return null;
        }

        var start = relativePath!.LastIndexOf('/', at - 2) + 1;
        return Known.TryGetValue(relativePath[start..(at + token.Length)], out var byPath) ? byPath : null;
    }
}
