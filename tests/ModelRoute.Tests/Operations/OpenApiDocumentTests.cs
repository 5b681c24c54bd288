using System.Reflection;
using System.Text.RegularExpressions;
using ModelRoute.Server.Http;

namespace ModelRoute.Tests.Operations;

/// <summary>
/// The OpenAPI document is one a client generator can trust (docs/api.md#openapi-and-the-reference-page): every
/// operation named, tagged and secured as the gateway authorizes it, schemas that say what the API accepts, errors as
/// problems with the codes the gateway returns; Redocly lints it clean and openapi-typescript types a working client.
/// </summary>
public sealed class OpenApiDocumentTests(SharedGateway shared) : IClassFixture<SharedGateway>
{
    /// <summary>The linter and the generator, pinned; installed once per machine by the test run.</summary>
    private static readonly string[] Tools = ["@redocly/cli@2.77.0", "openapi-typescript@7.13.0", "typescript@5.9.3"];

    private static readonly string[] Methods = ["get", "put", "post", "delete", "patch"];

    /// <summary>
    /// The verbs an operationId may begin with: camelCase, verb first (<c>submitExecution</c>, <c>listAccounts</c>).
    /// A new verb is a decision, made here, not a slip in one endpoint's <c>.WithName(...)</c>.
    /// </summary>
    private static readonly Regex OperationId = new(
        "^(get|list|create|submit|cancel|update|delete|revoke|rotate|enable|disable|send|stream|move|redeliver|credit|receive)[A-Z][A-Za-z0-9]*$");

    /// <summary>Pages the gateway serves outside its OpenAPI document, which docs/api.md lists all the same.</summary>
    private static readonly string[] Undocumented = ["GET /console/", "GET /docs", "GET /openapi/v1.json"];

    private static readonly string[] AnonymousPaths = ["/healthz", "/readyz", "/metrics", "/v1/provider-callbacks/{provider}/{executionId}"];

    [Fact]
    public async Task Every_operation_has_a_summary_a_description_a_tag_and_an_operation_id_of_its_own()
    {
        var operations = Operations(await DocumentAsync()).ToList();

        operations.Count.ShouldBeGreaterThan(40);
        foreach (var (path, method, operation) in operations)
        {
            var name = $"{method.ToUpperInvariant()} {path}";
            Text(operation, "summary").ShouldNotBeNullOrWhiteSpace(name);
            Text(operation, "description").ShouldNotBeNullOrWhiteSpace(name);
            Text(operation, "operationId").ShouldNotBeNullOrWhiteSpace(name);
            operation.TryGetProperty("tags", out var tags).ShouldBeTrue(name);
            tags.GetArrayLength().ShouldBeGreaterThan(0, name);
        }

        var ids = operations.Select(o => Text(o.Operation, "operationId")!).ToList();
        ids.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => g.Key).ShouldBeEmpty();
        ids.ShouldContain("submitExecution");
        ids.ShouldContain("getExecution");
        ids.ShouldContain("listExecutions");
    }

    [Fact]
    public async Task Every_operation_id_is_camel_case_and_begins_with_one_of_the_agreed_verbs()
    {
        var ids = Operations(await DocumentAsync()).Select(o => Text(o.Operation, "operationId") ?? $"(none: {o.Method} {o.Path})").ToList();

        ids.Count.ShouldBeGreaterThan(40);
        var offending = ids.Where(id => !OperationId.IsMatch(id)).Order(StringComparer.Ordinal).ToList();
        offending.ShouldBeEmpty($"operationIds off the convention: {string.Join(", ", offending)}");
    }

    [Fact]
    public async Task Every_path_parameter_has_a_description_and_the_ids_an_example_of_their_kind()
    {
        var undescribed = new List<string>();
        var seen = 0;
        foreach (var (path, method, operation) in Operations(await DocumentAsync()))
        {
            foreach (var parameter in Items(operation, "parameters").Where(p => Text(p, "in") == "path"))
            {
                seen++;
                var name = $"{method.ToUpperInvariant()} {path} {{{Text(parameter, "name")}}}";
                if (string.IsNullOrWhiteSpace(Text(parameter, "description")))
                {
                    undescribed.Add(name);
                }
                else if (IdPrefix(path, Text(parameter, "name")!) is { } prefix)
                {
                    Text(parameter, "example").ShouldNotBeNull(name).ShouldMatch($"^{prefix}_[0-9a-hjkmnp-tv-z]{{26}}$", name);
                }
            }
        }

        seen.ShouldBeGreaterThan(20);
        undescribed.ShouldBeEmpty($"path parameters without a description: {string.Join(", ", undescribed)}");
    }

    [Fact]
    public async Task The_api_reference_page_lists_every_operation_of_the_document_and_no_other()
    {
        var operations = Operations(await DocumentAsync()).Select(o => $"{o.Method.ToUpperInvariant()} {o.Path}").ToHashSet(StringComparer.Ordinal);
        var page = await File.ReadAllTextAsync(Path.Combine(TestPaths.RepositoryRoot(), "docs", "api.md"));
        var documented = Regex.Matches(page, "`(GET|POST|PUT|PATCH|DELETE) (/[^`?\\s]*)")
            .Select(m => $"{m.Groups[1].Value} {m.Groups[2].Value}").ToHashSet(StringComparer.Ordinal);

        operations.Except(documented).Order(StringComparer.Ordinal).ShouldBeEmpty("operations docs/api.md does not list");
        documented.Except(operations).Except(Undocumented).Order(StringComparer.Ordinal).ShouldBeEmpty("operations docs/api.md lists that the gateway does not have");
    }

    [Fact]
    public async Task An_operation_needs_the_admin_key_under_admin_an_api_key_elsewhere_and_nothing_where_the_gateway_asks_for_none()
    {
        var document = await DocumentAsync();
        var schemes = document.GetProperty("components").GetProperty("securitySchemes");
        foreach (var scheme in new[] { "bearerAuth", "adminKey" })
        {
            Text(schemes.GetProperty(scheme), "type").ShouldBe("http");
            Text(schemes.GetProperty(scheme), "scheme").ShouldBe("bearer");
        }

        foreach (var (path, method, operation) in Operations(document))
        {
            var name = $"{method.ToUpperInvariant()} {path}";
            var required = operation.GetProperty("security").EnumerateArray().SelectMany(r => r.EnumerateObject().Select(p => p.Name)).ToList();
            string[] expected = AnonymousPaths.Contains(path) ? []
                : path.StartsWith("/v1/admin/", StringComparison.Ordinal) ? ["adminKey"]
                : ["bearerAuth"];
            required.ShouldBe(expected, false, name);
            if (expected.Length > 0)
            {
                operation.GetProperty("responses").TryGetProperty("401", out _).ShouldBeTrue(name);
            }
        }
    }

    [Fact]
    public async Task A_submission_requires_only_model_input_and_idempotency_key_and_types_each_field_once()
    {
        var submission = (await DocumentAsync()).GetProperty("components").GetProperty("schemas").GetProperty("SubmitExecutionRequest");

        submission.GetProperty("required").EnumerateArray().Select(r => r.GetString()).ShouldBe(["model", "input", "idempotency_key"], ignoreOrder: true);
        var properties = submission.GetProperty("properties");
        Types(properties.GetProperty("timeout_seconds")).ShouldBe(["integer", "null"], ignoreOrder: true);
        properties.GetProperty("timeout_seconds").TryGetProperty("pattern", out _).ShouldBeFalse();
        Types(properties.GetProperty("max_cost_usd")).ShouldBe(["string", "null"], ignoreOrder: true);
        Types(properties.GetProperty("webhook_url")).ShouldBe(["string", "null"], ignoreOrder: true);
        Types(properties.GetProperty("metadata")).ShouldBe(["object", "null"], ignoreOrder: true);
        submission.GetProperty("examples").GetArrayLength().ShouldBeGreaterThan(0);
    }

    [Fact]
    public async Task Every_property_of_every_schema_and_parameter_has_one_type_besides_null()
    {
        var document = await DocumentAsync();
        var mixed = new List<string>();
        foreach (var schema in document.GetProperty("components").GetProperty("schemas").EnumerateObject())
        {
            CollectMixedTypes(schema.Name, schema.Value, mixed);
        }

        foreach (var (path, method, operation) in Operations(document))
        {
            foreach (var parameter in Items(operation, "parameters"))
            {
                CollectMixedTypes($"{method} {path} ?{Text(parameter, "name")}", parameter.GetProperty("schema"), mixed);
            }
        }

        mixed.ShouldBeEmpty();
    }

    [Fact]
    public async Task Every_error_response_is_a_problem_whose_code_is_one_of_the_codes_the_gateway_returns()
    {
        var document = await DocumentAsync();
        var errors = 0;
        foreach (var (path, method, operation) in Operations(document).Where(o => o.Path != "/readyz"))
        {
            foreach (var response in operation.GetProperty("responses").EnumerateObject().Where(r => r.Name[0] is '4' or '5'))
            {
                var content = response.Value.GetProperty("content").EnumerateObject().ToList();
                content.Select(c => c.Name).ShouldBe(["application/problem+json"], false, $"{method.ToUpperInvariant()} {path} {response.Name}");
                Text(content[0].Value.GetProperty("schema"), "$ref").ShouldBe("#/components/schemas/Problem");
                errors++;
            }
        }

        errors.ShouldBeGreaterThan(100);
        var problem = document.GetProperty("components").GetProperty("schemas").GetProperty("Problem");
        var codes = problem.GetProperty("properties").GetProperty("code").GetProperty("enum").EnumerateArray().Select(c => c.GetString()!).ToList();
        codes.ShouldBe(DeclaredCodes(), ignoreOrder: true);
        codes.ShouldContain(ErrorCodes.StoreUnavailable);
    }

    /// <summary>A code written where a problem is made but not declared in <see cref="ErrorCodes"/> would be missing from the enum.</summary>
    [Fact]
    public void Every_code_a_problem_is_made_with_is_one_of_the_declared_codes()
    {
        var source = Path.Combine(TestPaths.RepositoryRoot(), "src", "ModelRoute.Server");
        var literal = new Regex("""new\s+(?:Http\.)?Problem\(\s*[^,()]+,\s*"(?<code>[^"]+)"|\["code"\]\s*=\s*"(?<code>[^"]+)"|"code",\s*"(?<code>[^"]+)"\)""");
        var declared = DeclaredCodes();
        var strays = new List<string>();
        var seen = 0;
        foreach (var file in Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)))
        {
            var text = File.ReadAllText(file);
            seen += Regex.Count(text, @"new\s+(?:Http\.)?Problem\(");
            foreach (Match match in literal.Matches(text))
            {
                if (!declared.Contains(match.Groups["code"].Value))
                {
                    strays.Add($"{Path.GetFileName(file)}: {match.Value}");
                }
            }
        }

        seen.ShouldBeGreaterThan(10, "the scan read no problem being made");
        strays.ShouldBeEmpty();
    }

    [Fact]
    public async Task Redocly_lints_the_document_with_the_recommended_rules_without_an_error()
    {
        var (folder, documentPath) = await WriteDocumentAsync();
        var config = Path.Combine(TestPaths.RepositoryRoot(), "tests", "ModelRoute.Tests", "Operations", "redocly.yaml");

        var (exit, output) = await NpmPackages.RunNodeAsync(
            folder, Path.Combine(folder, "node_modules", "@redocly", "cli", "bin", "cli.js"), ["lint", documentPath, "--config", config, "--format", "stylish"], TimeSpan.FromMinutes(2));

        exit.ShouldBe(0, output);
        output.ShouldContain("Your API description is valid");
    }

    [Fact]
    public async Task A_typescript_client_generated_by_openapi_typescript_type_checks_a_submit_and_get()
    {
        var (folder, documentPath) = await WriteDocumentAsync();
        var work = Path.Combine(folder, "client-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        try
        {
            var (generated, generation) = await NpmPackages.RunNodeAsync(
                folder, Path.Combine(folder, "node_modules", "openapi-typescript", "bin", "cli.js"), [documentPath, "--output", Path.Combine(work, "api.d.ts")], TimeSpan.FromMinutes(2));
            generated.ShouldBe(0, generation);
            await File.WriteAllTextAsync(Path.Combine(work, "client.ts"), ClientScript);

            var (checkedExit, check) = await NpmPackages.RunNodeAsync(
                folder,
                Path.Combine(folder, "node_modules", "typescript", "bin", "tsc"),
                ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler", "--lib", "es2022,dom", Path.Combine(work, "client.ts")],
                TimeSpan.FromMinutes(2));

            checkedExit.ShouldBe(0, check);
        }
        finally
        {
            TestPaths.TryDelete(work);
        }
    }

    /// <summary>
    /// A client written against the generated types: it must compile, and the lines marked @ts-expect-error must not
    /// (a string timeout, a submission without its key, a code the gateway does not have).
    /// </summary>
    private const string ClientScript = """
        import type { components, paths } from "./api";

        type Submission = paths["/v1/executions"]["post"]["requestBody"]["content"]["application/json"];
        type Submitted = paths["/v1/executions"]["post"]["responses"]["202"]["content"]["application/json"];
        type Execution = paths["/v1/executions/{id}"]["get"]["responses"]["200"]["content"]["application/json"];
        type Problem = components["schemas"]["Problem"];

        export async function submitAndGet(base: string, key: string): Promise<Execution> {
          const submission: Submission = {
            model: "sim/text", input: { prompt: "Say hello" }, idempotency_key: "hello-1", timeout_seconds: 30, metadata: { user: "u_42", tries: 1, vip: true },
          };
          const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
          const answer = await fetch(`${base}/v1/executions`, { method: "POST", headers, body: JSON.stringify(submission) });
          if (!answer.ok) {
            const problem = (await answer.json()) as Problem;
            const code: Problem["code"] = problem.code;
            throw new Error(`${code}: ${problem.detail ?? ""}`);
          }

          const submitted = (await answer.json()) as Submitted;
          const got = await fetch(`${base}/v1/executions/${submitted.id}?wait=30`, { headers });
          const execution = (await got.json()) as Execution;
          const status: string = execution.status;
          const started: string | null = execution.attempt_log[0]?.started_at ?? null;
          const held: string = execution.cost.held;
          console.log(status, started, held, execution.timeout_seconds + 1);
          return execution;
        }

        // @ts-expect-error timeout_seconds is a number
        export const stringTimeout: Submission = { model: "sim/text", input: {}, idempotency_key: "k", timeout_seconds: "30" };
        // @ts-expect-error idempotency_key is required
        export const withoutKey: Submission = { model: "sim/text", input: {} };
        export const lean: Submission = { model: "sim/text", input: {}, idempotency_key: "k" };
        export const known: Problem["code"] = "STORE_UNAVAILABLE";
        // @ts-expect-error not a code the gateway returns
        export const unknown: Problem["code"] = "NO_SUCH_CODE";
        """;

    /// <summary>The prefix an id parameter's example must have: an <c>{id}</c>'s is its collection's.</summary>
    private static string? IdPrefix(string path, string name) => name switch
    {
        "key_id" => "key",
        "executionId" => "exe",
        "id" when path.Contains("/accounts/{id}", StringComparison.Ordinal) => "acct",
        "id" when path.Contains("/executions/{id}", StringComparison.Ordinal) => "exe",
        "id" when path.Contains("/webhook-endpoints/{id}", StringComparison.Ordinal) => "we",
        "id" when path.Contains("/webhook-deliveries/{id}", StringComparison.Ordinal) => "whd",
        "id" => "(an id of an unknown kind)",
        _ => null,
    };

    private async Task<JsonElement> DocumentAsync()
    {
        using var client = shared.Gateway.Anonymous();
        var response = await client.GetApiAsync("/openapi/v1.json");
        response.Status.ShouldBe(200, response.Body);
        return response.Json;
    }

    private async Task<(string Folder, string DocumentPath)> WriteDocumentAsync()
    {
        var folder = await NpmPackages.EnsureInstalledAsync(Tools);
        using var client = shared.Gateway.Anonymous();
        var response = await client.GetApiAsync("/openapi/v1.json");
        response.Status.ShouldBe(200, response.Body);
        var path = Path.Combine(folder, $"openapi-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, response.Body);
        return (folder, path);
    }

    private static HashSet<string> DeclaredCodes() =>
        [.. typeof(ErrorCodes).GetFields(BindingFlags.Public | BindingFlags.Static).Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!)];

    private static IEnumerable<(string Path, string Method, JsonElement Operation)> Operations(JsonElement document) =>
        document.GetProperty("paths").EnumerateObject().SelectMany(path => path.Value.EnumerateObject()
            .Where(m => Methods.Contains(m.Name))
            .Select(m => (path.Name, m.Name, m.Value)));

    private static IEnumerable<JsonElement> Items(JsonElement element, string name) =>
        element.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array ? array.EnumerateArray().ToList() : [];

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static List<string> Types(JsonElement schema) =>
        !schema.TryGetProperty("type", out var type) ? []
        : type.ValueKind == JsonValueKind.Array ? [.. type.EnumerateArray().Select(t => t.GetString()!)]
        : [type.GetString()!];

    private static void CollectMixedTypes(string name, JsonElement schema, List<string> mixed)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var types = Types(schema).Where(t => t != "null").ToList();
        if (types.Count > 1 || (types.Count == 0 && schema.TryGetProperty("format", out _)))
        {
            mixed.Add($"{name}: {string.Join(", ", types)} {Text(schema, "format")}");
        }

        foreach (var property in schema.TryGetProperty("properties", out var properties) ? properties.EnumerateObject().ToList() : [])
        {
            CollectMixedTypes($"{name}.{property.Name}", property.Value, mixed);
        }

        foreach (var inner in new[] { "items", "additionalProperties" })
        {
            if (schema.TryGetProperty(inner, out var value))
            {
                CollectMixedTypes($"{name}.{inner}", value, mixed);
            }
        }
    }
}
