namespace ModelRoute.Tests.Hosting;

/// <summary>
/// docs/configuration.md#start-up-checks: a configuration error stops the start with one clear line naming the setting;
/// these processes run in the Production environment, where the admin key needs 32 characters (docs/deploy.md#the-production-environment).
/// </summary>
public sealed class StartupTests : IDisposable
{
    private readonly string _directory = TestPaths.NewTempDirectory("startup");

    [Theory]
    [InlineData("--ModelRoute:Models:bad/model:Pricing:InputPerMTok=abc", "ModelRoute:Models:bad/model:Pricing:InputPerMTok")]
    [InlineData("--ModelRoute:Models:bad/model:Routes:0:Provider=nowhere", "ModelRoute:Models:bad/model:Routes:0:Provider")]
    [InlineData("--ModelRoute:Providers:x:Kind=carrier-pigeon", "ModelRoute:Providers:x:Kind")]
    [InlineData("--ModelRoute:Dispatch:LeaseDuration=soon", "ModelRoute:Dispatch:LeaseDuration")]
    [InlineData("--ModelRoute:AdminKey=only-twenty-seven-characters", "ModelRoute:AdminKey must be at least 32 characters in the Production environment")]
    public async Task A_configuration_error_stops_the_start_with_one_line_naming_the_setting(string setting, string named)
    {
        string[] arguments = setting.Contains("bad/model", StringComparison.Ordinal)
            ? [setting, "--ModelRoute:Models:bad/model:Modality=text", "--ModelRoute:Models:bad/model:Routes:0:Provider=sim", "--urls", $"http://127.0.0.1:{GatewayProcess.FreePort()}"]
            : [setting, "--urls", $"http://127.0.0.1:{GatewayProcess.FreePort()}"];
        if (setting.Contains("Routes:0:Provider=nowhere", StringComparison.Ordinal))
        {
            arguments = [.. arguments.Where(a => a != "--ModelRoute:Models:bad/model:Routes:0:Provider=sim")];
        }

        var (exitCode, errors) = await GatewayProcess.LaunchExpectingConfigurationErrorAsync(_directory, arguments);

        exitCode.ShouldBe(1);
        errors.ShouldStartWith("modelroute: configuration error:");
        errors.ShouldContain(named);
        errors.Split('\n').Length.ShouldBe(1, errors);
    }

    [Fact]
    public async Task The_production_admin_key_rule_is_reported_with_the_other_option_errors_in_one_line()
    {
        string[] arguments = ["--ModelRoute:AdminKey=only-twenty-seven-characters", "--ModelRoute:Retention=00:00:10", "--urls", $"http://127.0.0.1:{GatewayProcess.FreePort()}"];

        var (exitCode, errors) = await GatewayProcess.LaunchExpectingConfigurationErrorAsync(_directory, arguments);

        exitCode.ShouldBe(1);
        errors.ShouldStartWith("modelroute: configuration error:");
        errors.ShouldContain("ModelRoute:AdminKey must be at least 32 characters in the Production environment");
        errors.ShouldContain("ModelRoute:Retention must be at least one minute");
        errors.Split('\n').Length.ShouldBe(1, errors);
    }

    public void Dispose() => TestPaths.TryDelete(_directory);
}
