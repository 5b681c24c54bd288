namespace ModelRoute.Tests.Artifacts;

/// <summary>
/// A bucket the gateway cannot use stops the start with one line naming the setting, never the secret
/// (docs/artifacts.md#s3-compatible-storage).
/// </summary>
public sealed class S3StartupTests : IAsyncLifetime
{
    private readonly string _directory = TestPaths.NewTempDirectory("s3-startup");
    private MotoServer _moto = null!;
    private string _bucket = null!;

    public async Task InitializeAsync()
    {
        _moto = await MotoServer.StartPrivateAsync(checkCredentials: true);
        _bucket = await _moto.CreateBucketAsync("startup");
    }

    public async Task DisposeAsync()
    {
        await _moto.DisposeAsync();
        TestPaths.TryDelete(_directory);
    }

    [Fact]
    public async Task Wrong_credentials_stop_the_start_with_one_line_naming_the_settings_but_not_the_secret()
    {
        var settings = _moto.Settings(_bucket);
        settings["ModelRoute:Artifacts:SecretAccessKey"] = "wrong-secret-0123456789abcdefghijkl";

        var (exitCode, errors) = await StartAsync(settings);

        exitCode.ShouldBe(1);
        errors.ShouldStartWith("modelroute: artifact store error:");
        errors.ShouldContain("ModelRoute:Artifacts:SecretAccessKey");
        errors.ShouldContain(_bucket);
        errors.ShouldNotContain("wrong-secret");
        errors.ShouldNotContain(_moto.SecretAccessKey);
        errors.Split('\n').Length.ShouldBe(1, errors);
    }

    [Fact]
    public async Task A_missing_bucket_stops_the_start_with_one_line_naming_the_bucket_setting()
    {
        var (exitCode, errors) = await StartAsync(_moto.Settings("no-such-bucket-here"));

        exitCode.ShouldBe(1);
        errors.ShouldStartWith("modelroute: artifact store error: ModelRoute:Artifacts:Bucket 'no-such-bucket-here' does not exist");
        errors.Split('\n').Length.ShouldBe(1, errors);
    }

    [Fact]
    public async Task S3_settings_that_cannot_work_are_configuration_errors()
    {
        var settings = _moto.Settings(_bucket);
        settings.Remove("ModelRoute:Artifacts:SecretAccessKey");
        settings["ModelRoute:Artifacts:Bucket"] = "";

        var (exitCode, errors) = await StartAsync(settings);

        exitCode.ShouldBe(1);
        errors.ShouldStartWith("modelroute: configuration error:");
        errors.ShouldContain("ModelRoute:Artifacts:Bucket is required");
        errors.ShouldContain("ModelRoute:Artifacts:AccessKeyId and ModelRoute:Artifacts:SecretAccessKey are set together");
        errors.Split('\n').Length.ShouldBe(1, errors);
    }

    private Task<(int ExitCode, string Errors)> StartAsync(Dictionary<string, string?> settings) =>
        GatewayProcess.LaunchExpectingConfigurationErrorAsync(
            _directory, ["--urls", $"http://127.0.0.1:{GatewayProcess.FreePort()}", .. settings.Select(s => $"--{s.Key}={s.Value}")]);
}
