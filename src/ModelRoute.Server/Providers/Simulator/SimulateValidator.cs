using ModelRoute.Server.Routing;

namespace ModelRoute.Server.Providers.Simulator;

/// <summary>
/// The simulator's own part of <c>input</c>: the <c>simulate</c> block (docs/providers.md#driving-every-path-inputsimulate). It is checked for every
/// model, whatever its routes, so that a misspelt block is refused at submission rather than ignored on a fallback
/// (docs/architecture.md, "Submissions").
/// </summary>
public sealed class SimulateValidator : IProviderInputValidator
{
    private static readonly HashSet<string> SimulatedFailures = new(StringComparer.Ordinal)
    {
        "timeout", "rate_limit", "server_error", "content_policy", "bad_response",
    };

    private static readonly HashSet<string> UsageFields = new(StringComparer.Ordinal)
    {
        "input_tokens", "output_tokens", "cached_input_tokens", "images", "duration_seconds", "duration_ms",
    };

    public InputProblem? Validate(ModelDefinition model, JsonElement input) =>
        input.TryGetProperty("simulate", out var simulate) ? ValidateSimulate(simulate) : null;

    private static InputProblem? ValidateSimulate(JsonElement simulate)
    {
        if (simulate.ValueKind != JsonValueKind.Object)
        {
            return new("simulate", "'simulate' must be an object.");
        }

        foreach (var property in simulate.EnumerateObject())
        {
            var problem = property.Name switch
            {
                "latency_ms" or "retry_after_ms" => Nested(InputRules.Integer(simulate, property.Name, 0, 600_000)),
                "fail_times" => Nested(InputRules.Integer(simulate, property.Name, 0, 100)),
                "fail" => property.Value.ValueKind != JsonValueKind.String || !SimulatedFailures.Contains(property.Value.GetString()!)
                    ? new("simulate.fail", $"'simulate.fail' must be one of {string.Join(", ", SimulatedFailures)}.")
                    : null,
                "usage" => Usage(property.Value),
                _ => new("simulate." + SubmissionParser.Printable(property.Name), "Unknown 'simulate' field; use latency_ms, fail, fail_times, retry_after_ms or usage."),
            };
            if (problem is not null)
            {
                return problem;
            }
        }

        return null;
    }

    private static InputProblem? Nested(InputProblem? problem) => problem is null ? null : problem with { Field = "simulate." + problem.Field };

    private static InputProblem? Usage(JsonElement usage)
    {
        if (usage.ValueKind != JsonValueKind.Object)
        {
            return new("simulate.usage", "'simulate.usage' must be an object.");
        }

        foreach (var u in usage.EnumerateObject())
        {
            if (!UsageFields.Contains(u.Name) || u.Value.ValueKind != JsonValueKind.Number || !u.Value.TryGetInt64(out var n) || n < 0 || n > 1_000_000_000)
            {
                return new("simulate.usage." + SubmissionParser.Printable(u.Name), $"'simulate.usage' takes non-negative whole numbers for {string.Join(", ", UsageFields)}.");
            }
        }

        return null;
    }
}
