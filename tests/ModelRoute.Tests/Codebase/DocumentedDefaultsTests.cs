using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using ModelRoute.Server.Hosting;

namespace ModelRoute.Tests.Codebase;

/// <summary>
/// docs/configuration.md lists every setting with its default. Its tables are read here and held to the options
/// classes, walked by reflection from a freshly constructed <see cref="ModelRouteOptions"/>, so that a documented
/// default can never again contradict the code.
/// </summary>
public sealed partial class DocumentedDefaultsTests
{
    private const string Page = "docs/configuration.md";

    /// <summary>The placeholder a table uses for the key of each dictionary or list of settings.</summary>
    private static readonly Dictionary<string, string> Placeholders = new(StringComparer.Ordinal)
    {
        ["Providers"] = "{name}",
        ["Models"] = "{name}",
        ["Routes"] = "{i}",
        ["Pricing"] = "{price}",
    };

    [Fact]
    public void Every_public_setting_has_a_row_in_the_configuration_page_and_every_row_names_a_setting()
    {
        var documented = DocumentedRows();
        var settings = Settings();

        var undocumented = settings
            .Where(setting => !documented.Any(row => row.Name == setting.Key))
            .Select(setting => $"{Page} lacks: | `{setting.Key}` | {Describe(setting.Value.Value)} | … | … |")
            .ToList();
        var unknown = documented.Where(row => !settings.ContainsKey(row.Name)).Select(row => $"{Page} documents `{row.Name}`, which is no setting").ToList();
        var twice = documented.GroupBy(row => row.Name).Where(g => g.Count() > 1).Select(g => $"{Page} documents `{g.Key}` {g.Count()} times").ToList();

        settings.Count.ShouldBeGreaterThan(50);
        undocumented.ShouldBeEmpty();
        unknown.ShouldBeEmpty();
        twice.ShouldBeEmpty();
    }

    [Fact]
    public void Every_default_on_the_configuration_page_is_the_one_a_fresh_options_object_has()
    {
        var settings = Settings();

        var wrong = DocumentedRows()
            .Where(row => settings.TryGetValue(row.Name, out var setting) && !Matches(row.Default, setting))
            .Select(row => $"`{row.Name}`: {Page} says {row.Default}, the code has {Describe(settings[row.Name].Value)}")
            .ToList();

        wrong.ShouldBeEmpty();
    }

    [Fact]
    public void A_documented_default_that_differs_from_the_code_is_caught()
    {
        var settings = Settings();

        // The very mistakes the page once made: Dispatch:MaxInFlight and Webhooks:MaxInFlight documented too low.
        Matches("`256`", settings["Dispatch:MaxInFlight"]).ShouldBeFalse();
        Matches("`64`", settings["Webhooks:MaxInFlight"]).ShouldBeFalse();
        Matches("`1024`", settings["Dispatch:MaxInFlight"]).ShouldBeTrue();
        Matches("`00:00:00.250`", settings["Dispatch:PollInterval"]).ShouldBeTrue();
        Matches("`00:00:01`", settings["Dispatch:PollInterval"]).ShouldBeFalse();
        Matches("unset", settings["AdminKey"]).ShouldBeTrue();
        Matches("unset", settings["DataDirectory"]).ShouldBeFalse();
        Matches("empty", settings["Webhooks:RetrySchedule"]).ShouldBeTrue();
        Matches("—", settings["Providers:{name}:Kind"]).ShouldBeTrue();
    }

    /// <summary>Every leaf setting under <c>ModelRoute</c>, by its configuration path, with its type and default.</summary>
    private static Dictionary<string, Setting> Settings()
    {
        var settings = new Dictionary<string, Setting>(StringComparer.Ordinal);
        Walk(typeof(ModelRouteOptions), new ModelRouteOptions(), "", settings);
        return settings;
    }

    private static void Walk(Type type, object instance, string prefix, Dictionary<string, Setting> into)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.GetSetMethod() is not null))
        {
            var name = prefix + property.Name;
            var value = property.GetValue(instance);
            var placeholder = Placeholders.GetValueOrDefault(property.Name);
            if (IsOptionsClass(property.PropertyType))
            {
                Walk(property.PropertyType, value!, name + ":", into);
            }
            else if (ItemType(property.PropertyType) is { } item && IsOptionsClass(item) && placeholder is not null)
            {
                Walk(item, Activator.CreateInstance(item)!, $"{name}:{placeholder}:", into);
            }
            else
            {
                var path = placeholder is not null && value is IDictionary ? $"{name}:{placeholder}" : name;
                into.Add(path, new Setting(property.PropertyType, value));
            }
        }
    }

    private static bool IsOptionsClass(Type type) =>
        type.IsClass && type != typeof(string) && type.Namespace == typeof(ModelRouteOptions).Namespace;

    /// <summary>The value type of a dictionary, or the item type of a list; null for anything else.</summary>
    private static Type? ItemType(Type type) =>
        !type.IsGenericType ? null
        : type.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? type.GetGenericArguments()[1]
        : type.GetGenericTypeDefinition() == typeof(List<>) ? type.GetGenericArguments()[0]
        : null;

    /// <summary>
    /// A default cell is <c>unset</c> (null), <c>empty</c> (an empty list or dictionary), <c>—</c> (an empty string:
    /// required, or derived as the row says), or starts with the value in a code span.
    /// </summary>
    private static bool Matches(string cell, Setting setting)
    {
        var value = setting.Value;
        if (cell == "unset" || value is null)
        {
            return cell == "unset" && value is null;
        }

        if (cell == "empty" || value is ICollection)
        {
            return cell == "empty" && value is ICollection { Count: 0 };
        }

        if (cell == "—" || value is "")
        {
            return cell == "—" && value is "";
        }

        var code = CodeSpan().Match(cell);
        return code.Success && Equals(Parse(code.Groups["value"].Value, setting.Type), value);
    }

    private static object? Parse(string text, Type type)
    {
        var invariant = CultureInfo.InvariantCulture;
        return (Nullable.GetUnderlyingType(type) ?? type) switch
        {
            var t when t == typeof(string) => text,
            var t when t == typeof(int) => int.TryParse(text, invariant, out var i) ? i : null,
            var t when t == typeof(long) => long.TryParse(text, invariant, out var l) ? l : null,
            var t when t == typeof(double) => double.TryParse(text, invariant, out var d) ? d : null,
            var t when t == typeof(bool) => bool.TryParse(text, out var b) ? b : null,
            var t when t == typeof(TimeSpan) => TimeSpan.TryParse(text, invariant, out var span) ? span : null,
            var t => throw new InvalidOperationException($"No way to read a documented {t.Name} default"),
        };
    }

    /// <summary>How the page should write the code's default, for a failure message that can be pasted.</summary>
    private static string Describe(object? value) => value switch
    {
        null => "unset",
        "" => "—",
        ICollection { Count: 0 } => "empty",
        TimeSpan span => $"`{span.ToString("c", CultureInfo.InvariantCulture)}`",
        bool flag => flag ? "`true`" : "`false`",
        IFormattable number => $"`{number.ToString(null, CultureInfo.InvariantCulture)}`",
        _ => $"`{value}`",
    };

    /// <summary>The rows of every table on the page whose header starts with <c>setting</c>.</summary>
    private static List<Row> DocumentedRows()
    {
        var rows = new List<Row>();
        var inSettingsTable = false;
        foreach (var line in File.ReadLines(Path.Combine(TestPaths.RepositoryRoot(), Page)))
        {
            if (!line.StartsWith('|'))
            {
                inSettingsTable = false;
                continue;
            }

            var cells = line.Split('|').Select(cell => cell.Trim()).ToArray();
            if (cells[1] == "setting")
            {
                inSettingsTable = true;
            }
            else if (inSettingsTable && SettingName().Match(cells[1]) is { Success: true } name)
            {
                rows.Add(new Row(name.Groups["name"].Value, cells[2]));
            }
        }

        rows.Count.ShouldBeGreaterThan(0, $"{Page} has no table headed 'setting'");
        return rows;
    }

    [GeneratedRegex(@"^`(?<name>[A-Za-z{}:]+)`$")]
    private static partial Regex SettingName();

    [GeneratedRegex(@"^`(?<value>[^`]+)`")]
    private static partial Regex CodeSpan();

    private sealed record Setting(Type Type, object? Value);

    private sealed record Row(string Name, string Default);
}
