using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using ModelRoute.Server.Hosting;

namespace ModelRoute.Tests.Hosting;

public sealed class ConfigurationValidationTests
{
    /// <summary>A valid configuration: one simulator provider and one model routed to it.</summary>
    private static Dictionary<string, string?> ValidSettings() => new()
    {
        ["ModelRoute:Providers:p:Kind"] = "simulator",
        ["ModelRoute:Providers:p:MaxConcurrency"] = "8",
        ["ModelRoute:Models:x/y:Modality"] = "text",
        ["ModelRoute:Models:x/y:Pricing:InputPerMTok"] = "0.15",
        ["ModelRoute:Models:x/y:Pricing:OutputPerMTok"] = "0.60",
        ["ModelRoute:Models:x/y:Routes:0:Provider"] = "p",
        ["ModelRoute:Models:x/y:Routes:0:Model"] = "y",
    };

    /// <summary>Binds the settings the way the host does and validates them.</summary>
    private static ValidateOptionsResult Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new ModelRouteOptions();
        configuration.GetSection(ModelRouteOptions.SectionName).Bind(options);
        return new ModelRouteOptionsValidator(new HashSet<string> { "simulator" }).Validate(Options.DefaultName, options);
    }

    private static ValidateOptionsResult ValidateWith(string key, string? value)
    {
        var settings = ValidSettings();
        settings[key] = value;
        return Validate(settings);
    }

    private static void ShouldFailNaming(ValidateOptionsResult result, string settingKey)
    {
        result.Failed.ShouldBeTrue($"expected a failure naming {settingKey}");
        var failures = result.Failures!.ToList();
        failures.ShouldContain(f => f.Contains(settingKey, StringComparison.Ordinal), $"failures: {string.Join(" | ", failures)}");
        failures.ShouldAllBe(f => !f.Contains('\n') && !f.Contains('\r'), "each failure is one line");
    }

    [Fact]
    public void A_valid_configuration_passes()
    {
        var result = Validate(ValidSettings());

        result.Succeeded.ShouldBeTrue(result.FailureMessage);
    }

    [Fact]
    public void An_unknown_store_kind_is_refused_in_one_line()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Store:Kind", "mysql"), "ModelRoute:Store:Kind");
    }

    [Fact]
    public void A_postgres_store_needs_a_connection_string()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Store:Kind", "postgres"), "ModelRoute:Store:ConnectionString");
    }

    [Fact]
    public void A_postgres_store_with_a_connection_string_passes()
    {
        var settings = ValidSettings();
        settings["ModelRoute:Store:Kind"] = "postgres";
        settings["ModelRoute:Store:ConnectionString"] = "Host=db;Username=modelroute;Database=modelroute";

        var result = Validate(settings);

        result.Succeeded.ShouldBeTrue(result.FailureMessage);
    }

    [Fact]
    public void An_unknown_provider_in_a_route_names_the_route_setting()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Models:x/y:Routes:0:Provider", "nowhere"), "ModelRoute:Models:x/y:Routes:0:Provider");
    }

    [Fact]
    public void An_unknown_provider_in_a_later_route_names_that_routes_index()
    {
        var settings = ValidSettings();
        settings["ModelRoute:Models:x/y:Routes:1:Provider"] = "ghost";
        settings["ModelRoute:Models:x/y:Routes:1:Priority"] = "1";

        var result = Validate(settings);

        ShouldFailNaming(result, "ModelRoute:Models:x/y:Routes:1:Provider");
        result.Failures!.ShouldAllBe(f => !f.Contains("Routes:0"));
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("-1")]
    [InlineData("1e-6")]
    [InlineData("0.0000001")]
    [InlineData("")]
    public void A_price_that_is_not_a_non_negative_decimal_names_the_pricing_setting(string price)
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Models:x/y:Pricing:InputPerMTok", price), "ModelRoute:Models:x/y:Pricing:InputPerMTok");
    }

    [Fact]
    public void An_unknown_pricing_key_names_itself()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Models:x/y:Pricing:PerToken", "0.10"), "ModelRoute:Models:x/y:Pricing:PerToken");
    }

    [Theory]
    [InlineData("hologram")]
    [InlineData("1")]
    [InlineData("")]
    public void An_unknown_modality_names_the_modality_setting(string modality)
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Models:x/y:Modality", modality), "ModelRoute:Models:x/y:Modality");
    }

    [Theory]
    [InlineData("TEXT")]
    [InlineData("image")]
    [InlineData("Video")]
    [InlineData("audio")]
    [InlineData("embedding")]
    public void Every_documented_modality_is_accepted_in_any_case(string modality)
    {
        var result = ValidateWith("ModelRoute:Models:x/y:Modality", modality);

        result.Succeeded.ShouldBeTrue(result.FailureMessage);
    }

    [Fact]
    public void A_provider_of_an_unknown_kind_names_its_kind_setting()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Providers:p:Kind", "teleporter"), "ModelRoute:Providers:p:Kind");
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-4")]
    public void A_max_concurrency_below_one_names_the_setting(string value)
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Providers:p:MaxConcurrency", value), "ModelRoute:Providers:p:MaxConcurrency");
    }

    [Fact]
    public void A_model_without_routes_names_its_routes_setting()
    {
        var settings = ValidSettings();
        settings.Remove("ModelRoute:Models:x/y:Routes:0:Provider");
        settings.Remove("ModelRoute:Models:x/y:Routes:0:Model");

        ShouldFailNaming(Validate(settings), "ModelRoute:Models:x/y:Routes");
    }

    [Fact]
    public void A_route_weight_below_one_names_the_weight_setting()
    {
        ShouldFailNaming(ValidateWith("ModelRoute:Models:x/y:Routes:0:Weight", "0"), "ModelRoute:Models:x/y:Routes:0:Weight");
    }

    [Fact]
    public void Several_mistakes_are_all_reported_each_with_its_own_key()
    {
        var settings = ValidSettings();
        settings["ModelRoute:Models:x/y:Pricing:InputPerMTok"] = "abc";
        settings["ModelRoute:Models:x/y:Routes:0:Provider"] = "nowhere";
        settings["ModelRoute:Providers:p:MaxConcurrency"] = "0";

        var result = Validate(settings);

        ShouldFailNaming(result, "ModelRoute:Models:x/y:Pricing:InputPerMTok");
        ShouldFailNaming(result, "ModelRoute:Models:x/y:Routes:0:Provider");
        ShouldFailNaming(result, "ModelRoute:Providers:p:MaxConcurrency");
    }

    [Theory]
    [InlineData("ModelRoute:Models:x/y:Pricing:InputPerMTok", "abc")]
    [InlineData("ModelRoute:Models:x/y:Routes:0:Provider", "nowhere")]
    [InlineData("ModelRoute:Providers:p:MaxConcurrency", "0")]
    [InlineData("ModelRoute:Providers:p:MaxConcurrency", "lots")]
    [InlineData("ModelRoute:Providers:p:Timeout", "soon")]
    [InlineData("ModelRoute:Models:x/y:DefaultTimeout", "soon")]
    [InlineData("ModelRoute:Models:x/y:Routes:0:Weight", "heavy")]
    [InlineData("ModelRoute:Models:x/y:Routes:0:Priority", "high")]
    [InlineData("ModelRoute:Providers:p:WebhookJwksUrl", "jwks.json")]
    public void The_host_stops_with_one_line_naming_the_setting(string key, string value)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.AddModelRoute();
        var settings = ValidSettings();
        settings[key] = value;
        settings["ModelRoute:DataDirectory"] = Path.Combine(Path.GetTempPath(), "modelroute-tests", "unused-" + Guid.NewGuid().ToString("N"));
        builder.Configuration.AddInMemoryCollection(settings);
        using var app = builder.Build();
        using var errors = new StringWriter();

        var valid = app.TryValidateModelRouteConfiguration(errors);

        valid.ShouldBeFalse();
        var output = errors.ToString().TrimEnd('\n', '\r');
        output.ShouldContain(key);
        output.ShouldNotContain("\n");
        output.ShouldNotContain("   at ", Case.Sensitive, "no stack trace");
    }

    [Fact]
    public void The_host_accepts_a_valid_configuration()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.AddModelRoute();
        var settings = ValidSettings();
        settings["ModelRoute:DataDirectory"] = Path.Combine(Path.GetTempPath(), "modelroute-tests", "unused-" + Guid.NewGuid().ToString("N"));
        builder.Configuration.AddInMemoryCollection(settings);
        using var app = builder.Build();
        using var errors = new StringWriter();

        app.TryValidateModelRouteConfiguration(errors).ShouldBeTrue(errors.ToString());
    }

    /// <summary>Builds the real host (every adapter factory registered) with a provider of <paramref name="kind"/> serving a model of <paramref name="modality"/>.</summary>
    private static (bool Valid, string Output) ValidateRoute(string kind, string modality)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.AddModelRoute();
        var settings = ValidSettings();
        settings["ModelRoute:Providers:up:Kind"] = kind;
        settings["ModelRoute:Providers:up:ApiKey"] = "secret-key-never-logged";
        settings["ModelRoute:Providers:up:BaseUrl"] = "https://upstream.example.com/v1";
        settings["ModelRoute:Models:m/z:Modality"] = modality;
        settings["ModelRoute:Models:m/z:Pricing:PerRequest"] = "0.01";
        settings["ModelRoute:Models:m/z:Routes:0:Provider"] = "p";
        settings["ModelRoute:Models:m/z:Routes:1:Provider"] = "up";
        settings["ModelRoute:Models:m/z:Routes:1:Model"] = "upstream-model";
        settings["ModelRoute:DataDirectory"] = Path.Combine(Path.GetTempPath(), "modelroute-tests", "unused-" + Guid.NewGuid().ToString("N"));
        builder.Configuration.AddInMemoryCollection(settings);
        using var app = builder.Build();
        using var errors = new StringWriter();
        var valid = app.TryValidateModelRouteConfiguration(errors);
        return (valid, errors.ToString().TrimEnd('\n', '\r'));
    }

    [Theory]
    [InlineData("anthropic", "image")]
    [InlineData("gemini", "embedding")]
    [InlineData("openai", "video")]
    [InlineData("openai", "audio")]
    public void A_route_to_a_provider_kind_that_cannot_serve_the_models_modality_stops_the_start_in_one_line(string kind, string modality)
    {
        var (valid, output) = ValidateRoute(kind, modality);

        valid.ShouldBeFalse();
        output.ShouldContain("ModelRoute:Models:m/z:Routes:1:Provider 'up'");
        output.ShouldContain($"'{kind}' provider");
        output.ShouldContain($"{modality} model 'm/z'");
        output.ShouldNotContain("\n");
        output.ShouldNotContain("secret-key-never-logged");
    }

    [Theory]
    [InlineData("openai", "text")]
    [InlineData("openai", "image")]
    [InlineData("openai", "embedding")]
    [InlineData("anthropic", "text")]
    [InlineData("gemini", "text")]
    [InlineData("replicate", "video")]
    [InlineData("fal", "audio")]
    [InlineData("simulator", "embedding")]
    public void A_route_to_a_provider_kind_that_serves_the_models_modality_passes(string kind, string modality)
    {
        var (valid, output) = ValidateRoute(kind, modality);

        valid.ShouldBeTrue(output);
    }
}

/// <summary>The artifact fetch settings (docs/artifacts.md) are checked at start-up, each failure naming its setting.</summary>
public sealed class ArtifactSettingsValidationTests
{
    [Theory]
    [InlineData("ModelRoute:Artifacts:FetchTimeout", "00:00:00")]
    [InlineData("ModelRoute:Artifacts:FetchTimeout", "-00:00:01")]
    [InlineData("ModelRoute:Artifacts:FetchTimeout", "02:00:00")]
    [InlineData("ModelRoute:Artifacts:RetrySchedule:0", "-00:00:01")]
    [InlineData("ModelRoute:Artifacts:TrustedHosts:0", "http://files.internal/")]
    [InlineData("ModelRoute:Artifacts:TrustedHosts:0", "user@files.internal")]
    [InlineData("ModelRoute:Artifacts:TrustedHosts:0", "files.internal:99999")]
    public void A_bad_artifact_setting_is_refused_naming_it(string key, string value)
    {
        var result = Validate(new Dictionary<string, string?> { [key] = value });

        result.Failed.ShouldBeTrue(key + "=" + value);
        var settingKey = key.EndsWith(":0", StringComparison.Ordinal) ? key[..^2] : key;
        result.Failures!.ShouldContain(f => f.Contains(settingKey, StringComparison.Ordinal), result.FailureMessage);
    }

    [Fact]
    public void Good_artifact_settings_pass()
    {
        var result = Validate(new Dictionary<string, string?>
        {
            ["ModelRoute:Artifacts:FetchTimeout"] = "00:00:30",
            ["ModelRoute:Artifacts:RetrySchedule:0"] = "00:00:00",
            ["ModelRoute:Artifacts:TrustedHosts:0"] = "files.internal",
            ["ModelRoute:Artifacts:TrustedHosts:1"] = "10.0.0.5:9000",
            ["ModelRoute:Artifacts:TrustedHosts:2"] = "[fd00::5]:8080",
        });

        result.Succeeded.ShouldBeTrue(result.FailureMessage);
    }

    private static ValidateOptionsResult Validate(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new ModelRouteOptions();
        configuration.GetSection(ModelRouteOptions.SectionName).Bind(options);
        return new ModelRouteOptionsValidator(new HashSet<string> { "simulator" }).Validate(Options.DefaultName, options);
    }
}
