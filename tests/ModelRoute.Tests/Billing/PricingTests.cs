using ModelRoute.Server.Billing;
using ModelRoute.Server.Hosting;
using ModelRoute.Server.Routing;

namespace ModelRoute.Tests.Billing;

/// <summary>Golden costs, each worked out by hand to the micro-dollar (prices are in micro-dollars per unit).</summary>
public sealed class PricingTests
{
    [Fact]
    public void Text_cost_prices_cached_input_at_its_own_rate()
    {
        // $2.50 / $1.25 cached / $10.00 per Mtok.
        var price = new Price(InputPerMTok: 2_500_000, OutputPerMTok: 10_000_000, CachedInputPerMTok: 1_250_000);

        // 1200 × 2.50 + 800 × 1.25 + 350 × 10.00 = 3000 + 1000 + 3500 = 7500 µ$ ($0.0075).
        price.CostOf(new Usage(InputTokens: 1200, OutputTokens: 350, CachedInputTokens: 800)).ShouldBe(7_500);
    }

    [Fact]
    public void Text_cost_sums_in_pico_dollars_and_rounds_half_up_once_at_the_end()
    {
        var price = new Price(InputPerMTok: 2_500_000, OutputPerMTok: 10_000_000, CachedInputPerMTok: 1_250_000);

        // 1234 × 2.5 = 3085, 567 × 1.25 = 708.75, 89 × 10 = 890 → 4683.75 µ$ → 4684.
        price.CostOf(new Usage(InputTokens: 1234, OutputTokens: 89, CachedInputTokens: 567)).ShouldBe(4_684);
    }

    [Fact]
    public void Rounding_happens_once_so_sub_micro_components_add_up()
    {
        // $0.40 / Mtok in and out: one token each is 0.4 µ$ + 0.4 µ$ = 0.8 µ$ → 1. Rounding each part first would give 0.
        var price = new Price(InputPerMTok: 400_000, OutputPerMTok: 400_000);

        price.CostOf(new Usage(InputTokens: 1, OutputTokens: 1)).ShouldBe(1);
    }

    [Theory]
    [InlineData(500_000L, 1L)] // 0.5 µ$ → 1 (half up)
    [InlineData(499_999L, 0L)] // 0.499999 µ$ → 0
    [InlineData(1_500_000L, 2L)] // 1.5 µ$ → 2
    [InlineData(2_499_999L, 2L)]
    public void One_token_at_a_price_rounds_half_up(long inputPerMTok, long expected)
    {
        new Price(InputPerMTok: inputPerMTok).CostOf(new Usage(InputTokens: 1)).ShouldBe(expected);
    }

    [Fact]
    public void Cached_input_without_a_cached_price_is_charged_at_the_input_price()
    {
        var price = new Price(InputPerMTok: 150_000, OutputPerMTok: 600_000);

        // (1000 + 1000) × 0.15 = 300 µ$.
        price.CostOf(new Usage(InputTokens: 1000, CachedInputTokens: 1000)).ShouldBe(300);
    }

    [Fact]
    public void A_free_cached_price_is_honoured_rather_than_falling_back_to_the_input_price()
    {
        var price = new Price(InputPerMTok: 3_000_000, CachedInputPerMTok: 0);

        // 100 × 3.00 = 300 µ$; the 5000 cached tokens are free.
        price.CostOf(new Usage(InputTokens: 100, CachedInputTokens: 5000)).ShouldBe(300);
    }

    [Theory]
    [InlineData("image", 1L, 40_000L)]
    [InlineData("image", 3L, 120_000L)]
    [InlineData("image", 10L, 400_000L)]
    [InlineData("request", 0L, 0L)]
    [InlineData("request", 1L, 2_000L)]
    [InlineData("request", 3L, 6_000L)]
    public void Image_cost_is_per_image_times_n_and_flat_cost_is_per_request(string unit, long count, long expected)
    {
        var cost = unit == "image"
            ? new Price(PerImage: 40_000).CostOf(new Usage(Images: count))
            : new Price(PerRequest: 2_000).CostOf(new Usage(Requests: count));
        cost.ShouldBe(expected);
    }

    [Theory]
    [InlineData(2_500L, 125_000L)] // 2.5 s × $0.05
    [InlineData(10L, 500L)] // 0.01 s × $0.05 = $0.0005
    [InlineData(60_000L, 3_000_000L)] // a minute × $0.05
    public void Video_cost_is_per_second_to_the_millisecond(long durationMs, long expected)
    {
        new Price(PerSecond: 50_000).CostOf(new Usage(DurationMilliseconds: durationMs)).ShouldBe(expected);
    }

    [Theory]
    [InlineData(1_499L, 1L)] // 1.499 µ$
    [InlineData(1_500L, 2L)] // 1.5 µ$, half up
    public void Duration_cost_rounds_half_up_to_the_micro_dollar(long durationMs, long expected)
    {
        new Price(PerSecond: 1).CostOf(new Usage(DurationMilliseconds: durationMs)).ShouldBe(expected);
    }

    [Fact]
    public void A_usage_counts_one_request_by_default()
    {
        new Price(PerRequest: 2_000).CostOf(new Usage()).ShouldBe(2_000);
    }

    [Fact]
    public void Every_component_adds_up()
    {
        var price = new Price(InputPerMTok: 3_000_000, OutputPerMTok: 15_000_000, PerImage: 40_000, PerSecond: 50_000, PerRequest: 1_000);

        // 100 × 3 = 300; 20 × 15 = 300; 2 images = 80 000; 1.5 s = 75 000; 1 request = 1 000 → 156 600 µ$.
        price.CostOf(new Usage(InputTokens: 100, OutputTokens: 20, Images: 2, DurationMilliseconds: 1_500)).ShouldBe(156_600);
    }

    [Fact]
    public void A_huge_duration_is_priced_exactly_rather_than_overflowing()
    {
        // 10^9 s × $0.05 = $50 000 000 = 5·10^13 µ$, well inside a long. The pico-dollar sum
        // (5·10^19) is not, and must not wrap: SubmissionParser lets simulate.usage.duration_seconds
        // reach 10^9, and a wrapped (negative) cost settles as a negative charge.
        var price = new Price(PerSecond: 50_000);

        price.CostOf(new Usage(DurationMilliseconds: 1_000_000_000_000)).ShouldBe(50_000_000_000_000);
    }

    [Fact]
    public void A_huge_image_count_is_priced_exactly_rather_than_overflowing()
    {
        // 10^9 images × $0.02 = $20 000 000 = 2·10^13 µ$.
        new Price(PerImage: 20_000).CostOf(new Usage(Images: 1_000_000_000)).ShouldBe(20_000_000_000_000);
    }

    [Fact]
    public void Configured_decimal_prices_become_exact_micro_dollar_prices()
    {
        var options = new ModelRouteOptions();
        options.Providers["p"] = new ProviderOptions { Kind = "simulator" };
        options.Models["openai/gpt-4o-mini"] = new ModelOptions
        {
            Modality = "text",
            Pricing = new(StringComparer.OrdinalIgnoreCase) { ["InputPerMTok"] = "0.15", ["OutputPerMTok"] = "0.60", ["CachedInputPerMTok"] = "0.075" },
            Routes = [new RouteOptions { Provider = "p", Model = "gpt-4o-mini" }],
        };

        var (catalog, errors) = ModelCatalog.Build(options);

        errors.ShouldBeEmpty();
        var price = catalog!.Find("openai/gpt-4o-mini")!.Price;
        price.ShouldBe(new Price(InputPerMTok: 150_000, OutputPerMTok: 600_000, CachedInputPerMTok: 75_000));
        // 1000 × 0.15 + 2000 × 0.075 + 500 × 0.60 = 150 + 150 + 300 = 600 µ$.
        price.CostOf(new Usage(InputTokens: 1000, OutputTokens: 500, CachedInputTokens: 2000)).ShouldBe(600);
    }

    // CostEstimator: the estimate behind every hold (docs/architecture.md).

    private static ModelDefinition Model(Modality modality, Price price, int defaultMaxOutputTokens = 1024, int defaultDurationSeconds = 5) =>
        new("test/model", modality, price, TimeSpan.FromMinutes(5), TimeSpan.FromHours(1), defaultMaxOutputTokens, defaultDurationSeconds,
            [new RouteDefinition("p", "m", 0, 1)]);

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement;

    private static readonly Price TextPrice = new(InputPerMTok: 1_000_000, OutputPerMTok: 2_000_000);

    [Theory]
    [InlineData(0L, 0L)]
    [InlineData(1L, 1L)]
    [InlineData(4L, 1L)]
    [InlineData(5L, 2L)]
    [InlineData(8L, 2L)]
    [InlineData(9L, 3L)]
    [InlineData(4_000L, 1_000L)]
    public void Tokens_are_characters_over_four_rounded_up(long characters, long tokens)
    {
        CostEstimator.TokensFor(characters).ShouldBe(tokens);
    }

    [Fact]
    public void Text_input_counts_every_message_whether_its_content_is_a_string_or_an_array_of_parts()
    {
        // 14 + (13 + 0 + 5) + 3 = 35 characters → 9 tokens.
        var input = Json("""
            {"messages":[
                {"role":"system","content":"You are terse."},
                {"role":"user","content":[{"type":"text","text":"Describe this"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}},"plain"]},
                {"role":"assistant","content":"Ok."}
            ],"max_tokens":100}
            """);
        var model = Model(Modality.Text, TextPrice);

        CostEstimator.CountMessageCharacters(input).ShouldBe(35);
        CostEstimator.EstimateUsage(model, input).ShouldBe(new Usage(InputTokens: 9, OutputTokens: 100));
        // 9 × $1 + 100 × $2 per Mtok = 9 + 200 = 209 µ$.
        CostEstimator.Estimate(model, input).ShouldBe(209);
    }

    [Fact]
    public void Text_without_max_tokens_assumes_the_models_default_output_allowance()
    {
        var input = Json("""{"messages":[{"role":"user","content":"hello"}]}""");

        var usage = CostEstimator.EstimateUsage(Model(Modality.Text, TextPrice, defaultMaxOutputTokens: 1024), input);

        usage.InputTokens.ShouldBe(2); // 5 characters
        usage.OutputTokens.ShouldBe(1024);
        // 2 × 1 + 1024 × 2 = 2050 µ$.
        CostEstimator.Estimate(Model(Modality.Text, TextPrice, defaultMaxOutputTokens: 1024), input).ShouldBe(2_050);
    }

    [Fact]
    public void A_top_level_system_prompt_counts_as_input()
    {
        var input = Json("""{"system":"Be brief.","messages":[{"role":"user","content":"hi"}],"max_tokens":1}""");

        CostEstimator.CountMessageCharacters(input).ShouldBe(11); // 9 + 2
        CostEstimator.EstimateUsage(Model(Modality.Text, TextPrice), input).InputTokens.ShouldBe(3);
    }

    [Fact]
    public void Text_input_without_messages_counts_nothing()
    {
        CostEstimator.CountMessageCharacters(Json("""{"prompt":"not a chat"}""")).ShouldBe(0);
        CostEstimator.CountMessageCharacters(Json("""{"messages":"oops"}""")).ShouldBe(0);
    }

    [Fact]
    public void The_estimate_of_a_long_prompt_matches_the_documented_example()
    {
        // 4000 characters ≈ 1000 tokens, max_tokens 100000 → 1000 × 1 + 100000 × 2 = 201000 µ$; hold 241200 µ$.
        var input = Json($$"""{"messages":[{"role":"user","content":"{{new string('a', 4000)}}"}],"max_tokens":100000}""");

        var estimate = CostEstimator.Estimate(Model(Modality.Text, TextPrice), input);

        estimate.ShouldBe(201_000);
        Money.HoldFor(estimate).ShouldBe(241_200);
    }

    [Fact]
    public void Image_estimate_defaults_n_to_one()
    {
        var model = Model(Modality.Image, new Price(PerImage: 20_000));

        CostEstimator.EstimateUsage(model, Json("""{"prompt":"a lighthouse"}""")).Images.ShouldBe(1);
        CostEstimator.Estimate(model, Json("""{"prompt":"a lighthouse"}""")).ShouldBe(20_000);
        CostEstimator.Estimate(model, Json("""{"prompt":"a lighthouse","n":4}""")).ShouldBe(80_000);
    }

    [Theory]
    [InlineData(Modality.Video)]
    [InlineData(Modality.Audio)]
    public void Duration_estimate_uses_duration_seconds_or_the_models_default(Modality modality)
    {
        var model = Model(modality, new Price(PerSecond: 50_000), defaultDurationSeconds: 5);

        CostEstimator.EstimateUsage(model, Json("""{"prompt":"waves"}""")).DurationMilliseconds.ShouldBe(5_000);
        CostEstimator.Estimate(model, Json("""{"prompt":"waves"}""")).ShouldBe(250_000); // 5 s × $0.05
        CostEstimator.Estimate(model, Json("""{"prompt":"waves","duration_seconds":8}""")).ShouldBe(400_000);
    }

    [Fact]
    public void A_flat_price_is_charged_once_per_request_in_the_estimate()
    {
        var model = Model(Modality.Text, new Price(PerRequest: 10_000));

        CostEstimator.Estimate(model, Json("""{"messages":[{"role":"user","content":"hello"}],"max_tokens":5}""")).ShouldBe(10_000);
    }

    [Fact]
    public void Embedding_estimate_counts_the_input_text()
    {
        var model = Model(Modality.Embedding, new Price(InputPerMTok: 100_000));

        // "abcdefghi" + "jk" = 11 characters → 3 tokens; 3 × $0.10 per Mtok = 0.3 µ$ → 0.
        CostEstimator.EstimateUsage(model, Json("""{"input":["abcdefghi","jk"]}""")).InputTokens.ShouldBe(3);
        CostEstimator.EstimateUsage(model, Json("""{"input":"abcde"}""")).InputTokens.ShouldBe(2);
    }
}
