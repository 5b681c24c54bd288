namespace ModelRoute.Tests.Providers;

/// <summary>What the gateway tests of the synchronous text providers share: the routes to a fake, and one execution run to its end.</summary>
public static class TextProviderGateway
{
    /// <summary>
    /// Two providers of <paramref name="kind"/> at the fake, one with the right key (<paramref name="provider"/>) and one with
    /// <paramref name="wrongKey"/> (<c>{provider}-badkey</c>), and a text model routed to each.
    /// </summary>
    public static Dictionary<string, string?> Settings(
        string kind, string provider, string baseUrl, string apiKey, string wrongKey, (string Good, string BadKey) models, string providerModel,
        int defaultMaxOutputTokens, (string Input, string Output, string CachedInput) pricePerMTok)
    {
        var settings = new Dictionary<string, string?>
        {
            [$"ModelRoute:Models:{models.Good}:DefaultMaxOutputTokens"] = defaultMaxOutputTokens.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [$"ModelRoute:Models:{models.Good}:Pricing:CachedInputPerMTok"] = pricePerMTok.CachedInput,
        };
        foreach (var (name, key, model) in new[] { (provider, apiKey, models.Good), ($"{provider}-badkey", wrongKey, models.BadKey) })
        {
            settings[$"ModelRoute:Providers:{name}:Kind"] = kind;
            settings[$"ModelRoute:Providers:{name}:BaseUrl"] = baseUrl;
            settings[$"ModelRoute:Providers:{name}:ApiKey"] = key;
            settings[$"ModelRoute:Models:{model}:Modality"] = "text";
            settings[$"ModelRoute:Models:{model}:Pricing:InputPerMTok"] = pricePerMTok.Input;
            settings[$"ModelRoute:Models:{model}:Pricing:OutputPerMTok"] = pricePerMTok.Output;
            settings[$"ModelRoute:Models:{model}:Routes:0:Provider"] = name;
            settings[$"ModelRoute:Models:{model}:Routes:0:Model"] = providerModel;
        }

        return settings;
    }

    /// <summary>A new account with <paramref name="credit"/> submits <paramref name="input"/> and waits for its end.</summary>
    public static async Task<(TestAccount Account, JsonElement Done)> RunAsync(GatewayFactory gateway, string model, string input, string credit)
    {
        var account = await gateway.CreateAccountAsync(credit);
        var submitted = await account.Client.SubmitAsync(model, input);
        submitted.Status.ShouldBe(202, submitted.Body);
        var done = await account.Client.WaitForTerminalAsync(submitted.Json.GetProperty("id").GetString()!);
        return (account, done);
    }

    /// <summary>The execution failed with <paramref name="code"/> after the provider answered <paramref name="providerStatus"/>.</summary>
    public static JsonElement ShouldHaveFailedWith(JsonElement done, string code, bool retryable, int providerStatus, int attempts = 1)
    {
        done.GetProperty("status").GetString().ShouldBe("FAILED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(attempts);
        var error = done.GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe(code);
        error.GetProperty("retryable").GetBoolean().ShouldBe(retryable);
        error.GetProperty("provider_status").GetInt32().ShouldBe(providerStatus);
        return error;
    }

    /// <summary>A first attempt refused with 429 and a delay of one second, and a second one that waited for it and completed.</summary>
    public static JsonElement ShouldHaveRetriedAfterTheDelay(JsonElement done)
    {
        done.GetProperty("status").GetString().ShouldBe("COMPLETED", done.ToString());
        done.GetProperty("attempts").GetInt32().ShouldBe(2);
        var log = done.GetProperty("attempt_log").EnumerateArray().ToList();
        var error = log[0].GetProperty("error");
        error.GetProperty("code").GetString().ShouldBe("PROVIDER_RATE_LIMITED");
        error.GetProperty("provider_status").GetInt32().ShouldBe(429);
        var gap = log[1].GetProperty("started_at").GetDateTimeOffset() - log[0].GetProperty("started_at").GetDateTimeOffset();
        gap.ShouldBeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(950));
        return error;
    }

    /// <summary>No key, nor anything that looks like one (<paramref name="keyPrefix"/>), appears in the execution.</summary>
    public static void ShouldRevealNoKey(JsonElement done, string keyPrefix, params string[] keys)
    {
        var json = done.GetRawText();
        foreach (var key in keys)
        {
            json.ShouldNotContain(key);
        }

        json.ShouldNotContain(keyPrefix);
    }
}
