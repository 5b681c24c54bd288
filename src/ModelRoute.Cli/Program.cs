using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ModelRoute.Client;
using Spectre.Console;

namespace ModelRoute.Cli;

internal static class Program
{
    public const string DefaultUrl = "http://127.0.0.1:5080";

    private static readonly Option<string?> UrlOption = new("--url") { Description = $"Gateway base URL (default: $MODELROUTE_URL, else {DefaultUrl})", Recursive = true };
    private static readonly Option<string?> ApiKeyOption = new("--api-key") { Description = "API key (default: $MODELROUTE_API_KEY)", Recursive = true };
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Write JSON for scripts instead of text", Recursive = true };

    public static async Task<int> Main(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                Output.Error(error.Message);
            }

            Console.Error.WriteLine();
            root.Parse([.. CommandPath(parse), "--help"]).Invoke(new InvocationConfiguration { Output = Console.Error });
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    internal static RootCommand Build()
    {
        var root = new RootCommand("modelroute: submit, watch and manage executions on a ModelRoute gateway.")
        {
            UrlOption, ApiKeyOption, JsonOption,
            SubmitCommand(), GetCommand(), WaitCommand(), CancelCommand(), ListCommand(), BatchCommand(), BalanceCommand(),
            WebhooksCommand(), AdminCommand(), McpCommand.Create((parse, ct, action) => Run(parse, ct, action)),
        };
        return root;
    }

    private static Command SubmitCommand()
    {
        var model = new Argument<string>("model") { Description = "The model, e.g. sim/text" };
        var input = new Option<string?>("--input", "-i") { Description = "The input JSON object; @file reads a file, - reads stdin" };
        var message = new Option<string?>("--message", "-m") { Description = "Shorthand for a chat input: {\"messages\":[{\"role\":\"user\",\"content\":…}]}" };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Shorthand for {\"prompt\": …} (image, video models)" };
        var key = new Option<string?>("--idempotency-key", "-k") { Description = "Idempotency key (default: a new random one)" };
        var webhookUrl = new Option<string?>("--webhook-url") { Description = "URL to receive this execution's webhooks" };
        var metadata = new Option<string?>("--metadata") { Description = "Metadata JSON object" };
        var timeout = new Option<int?>("--timeout-seconds") { Description = "The execution's deadline in seconds" };
        var maxCost = new Option<string?>("--max-cost-usd") { Description = "Refuse if the hold would exceed this USD amount" };
        var wait = new Option<bool>("--wait", "-w") { Description = "Wait until it ends, showing live status; exit 1 unless COMPLETED" };
        var waitTimeout = new Option<int?>("--wait-timeout") { Description = "With --wait: give up after this many seconds (exit 5)" };
        var command = new Command("submit", "Submit an execution") { model, input, message, prompt, key, webhookUrl, metadata, timeout, maxCost, wait, waitTimeout };
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var request = new SubmitExecutionRequest
            {
                Model = parse.GetValue(model)!,
                Input = BuildInput(parse.GetValue(input), parse.GetValue(message), parse.GetValue(prompt)),
                IdempotencyKey = parse.GetValue(key),
                WebhookUrl = parse.GetValue(webhookUrl),
                Metadata = parse.GetValue(metadata) is { } m ? ParseObject(m, "--metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) : null,
                TimeoutSeconds = parse.GetValue(timeout),
                MaxCostUsd = parse.GetValue(maxCost),
            };
            var execution = await client.SubmitAsync(request, token);
            if (!parse.GetValue(wait))
            {
                output.Execution(execution);
                return ExitCodes.Ok;
            }

            output.Line($"submitted {execution.Id} ({execution.Status})");
            return await WatchAsync(client, output, execution, parse.GetValue(waitTimeout), token);
        }));
        return command;
    }

    private static Command GetCommand()
    {
        var id = new Argument<string>("id") { Description = "The execution id" };
        var command = new Command("get", "Show an execution") { id };
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            output.Execution(await client.GetAsync(parse.GetValue(id)!, token));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command WaitCommand()
    {
        var id = new Argument<string>("id") { Description = "The execution id" };
        var timeout = new Option<int?>("--timeout", "-t") { Description = "Give up after this many seconds (exit 5)" };
        var command = new Command("wait", "Wait until an execution ends (long-poll); exit 1 unless COMPLETED") { id, timeout };
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var seconds = parse.GetValue(timeout);
            var execution = await client.WaitAsync(parse.GetValue(id)!, seconds is { } s ? TimeSpan.FromSeconds(s) : null, token);
            output.Execution(execution);
            return Outcome(execution);
        }));
        return command;
    }

    private static Command CancelCommand()
    {
        var id = new Argument<string>("id") { Description = "The execution id" };
        var command = new Command("cancel", "Cancel an execution that has not ended") { id };
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            output.Execution(await client.CancelAsync(parse.GetValue(id)!, token));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command ListCommand()
    {
        var status = new Option<string?>("--status", "-s") { Description = "Only this status (PENDING, PROCESSING, COMPLETED, FAILED, …)" };
        var model = new Option<string?>("--model") { Description = "Only this model" };
        var createdAfter = new Option<string?>("--created-after") { Description = "Only those created after this RFC 3339 time" };
        var limit = new Option<int>("--limit", "-n") { Description = "How many to show", DefaultValueFactory = _ => 20 };
        var all = new Option<bool>("--all") { Description = "Show every execution (follows the cursor)" };
        var command = new Command("list", "List executions, newest first") { status, model, createdAfter, limit, all };
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            DateTimeOffset? after = null;
            if (parse.GetValue(createdAfter) is { } text)
            {
                after = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                    ? parsed
                    : throw new UsageException("--created-after must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z.");
            }

            if (parse.GetValue(limit) < 1)
            {
                throw new UsageException("--limit must be at least 1.");
            }

            var max = parse.GetValue(all) ? int.MaxValue : parse.GetValue(limit);
            var options = new ListExecutionsOptions { Status = parse.GetValue(status)?.ToUpperInvariant(), Model = parse.GetValue(model), CreatedAfter = after, PageSize = Math.Min(100, max) };
            var rows = new List<Execution>();
            var hasMore = false;
            await foreach (var e in client.ListAsync(options, token))
            {
                if (rows.Count == max)
                {
                    hasMore = true;
                    break;
                }

                rows.Add(e);
            }

            output.Table(rows, hasMore);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command BatchCommand()
    {
        var file = new Argument<FileInfo>("file") { Description = "A JSONL file: one submission object per line (model, input, …)" };
        var outputFile = new Option<FileInfo?>("--output", "-o") { Description = "Where to write the results as JSONL (default: FILE.results.jsonl)" };
        var wait = new Option<bool>("--wait", "-w") { Description = "Wait for every execution to end; exit 1 unless all COMPLETED" };
        var chunk = new Option<int>("--chunk-size") { Description = "Submissions per request (1–1000)", DefaultValueFactory = _ => 100 };
        var command = new Command("batch", "Submit every line of a JSONL file; re-running never duplicates (keys derive from the file and line)") { file, outputFile, wait, chunk };
        command.SetAction((parse, ct) => Run(parse, ct, (client, output, token) =>
            new BatchRunner(client, output).RunAsync(parse.GetValue(file)!, parse.GetValue(outputFile), parse.GetValue(chunk), parse.GetValue(wait), token)));
        return command;
    }

    private static Command BalanceCommand()
    {
        var command = new Command("balance", "Show the account's balance");
        command.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var balance = await client.GetBalanceAsync(token);
            if (output.Json)
            {
                output.WriteJson(balance);
            }
            else
            {
                output.Line($"balance    {Output.Money(balance.Balance)} {balance.Currency}");
                output.Line($"held       {Output.Money(balance.Held)} {balance.Currency}");
                output.Line($"available  {Output.Money(balance.Available)} {balance.Currency}");
            }

            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command WebhooksCommand()
    {
        var port = new Option<int>("--port") { Description = "Local port to listen on (default: any free port)", DefaultValueFactory = _ => 0 };
        var events = new Option<string[]>("--events") { Description = "Event types to subscribe to (default: the terminal ones)", AllowMultipleArgumentsPerToken = true };
        var secret = new Option<string[]>("--secret") { Description = "Verify with these secrets instead of registering an endpoint", AllowMultipleArgumentsPerToken = true };
        var defaultSecret = new Option<bool>("--default-secret") { Description = "Verify with the account's default secret (for webhook_url submissions) instead of registering" };
        var publicUrl = new Option<string?>("--public-url") { Description = "Register this URL (e.g. a tunnel) instead of the local one" };
        var maxEvents = new Option<int?>("--max-events") { Description = "Stop after this many verified events" };
        var listen = new Command("listen", "Run a local receiver that verifies and prints webhooks (registers a temporary endpoint)")
        {
            port, events, secret, defaultSecret, publicUrl, maxEvents,
        };
        listen.SetAction((parse, ct) => Run(parse, ct, (client, output, token) => new WebhookListener(client, output).RunAsync(
            parse.GetValue(port), parse.GetValue(events) ?? [], parse.GetValue(secret) ?? [], parse.GetValue(defaultSecret), parse.GetValue(publicUrl), parse.GetValue(maxEvents), token)));
        return new Command("webhooks", "Webhook tools") { listen };
    }

    private static Command AdminCommand()
    {
        var adminKey = new Option<string?>("--admin-key") { Description = "Admin key (default: $MODELROUTE_ADMIN_KEY, else the API key)", Recursive = true };

        var name = new Option<string?>("--name") { Description = "The account's name" };
        var createAccount = new Command("create-account", "Create an account") { name };
        createAccount.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var account = await client.CreateAccountAsync(parse.GetValue(name), token);
            if (output.Json)
            {
                output.WriteJson(account);
            }
            else
            {
                output.Line(account.Id);
            }

            return ExitCodes.Ok;
        }, adminKey));

        var keyAccount = new Argument<string>("account-id") { Description = "The account id" };
        var keyName = new Option<string?>("--name") { Description = "The key's name" };
        var createKey = new Command("create-key", "Create an API key for an account (shown only once)") { keyAccount, keyName };
        createKey.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var key = await client.CreateApiKeyAsync(parse.GetValue(keyAccount)!, parse.GetValue(keyName), token);
            if (output.Json)
            {
                output.WriteJson(key);
            }
            else
            {
                output.Line(key.Key);
            }

            return ExitCodes.Ok;
        }, adminKey));

        var creditAccount = new Argument<string>("account-id") { Description = "The account id" };
        var amount = new Argument<decimal>("amount-usd") { Description = "The amount in USD, e.g. 10.00" };
        var reference = new Option<string?>("--reference") { Description = "An idempotency reference (e.g. an invoice number): the same one never credits twice" };
        var addCredit = new Command("add-credit", "Credit an account") { creditAccount, amount, reference };
        addCredit.SetAction((parse, ct) => Run(parse, ct, async (client, output, token) =>
        {
            var entry = await client.AddCreditAsync(parse.GetValue(creditAccount)!, parse.GetValue(amount), parse.GetValue(reference), token);
            if (output.Json)
            {
                output.WriteJson(entry);
            }
            else
            {
                output.Line($"{entry.Id}  credit {Output.Money(entry.Amount)}  balance {Output.Money(entry.Balance)}");
            }

            return ExitCodes.Ok;
        }, adminKey));

        return new Command("admin", "Operator commands (admin key)") { adminKey, createAccount, createKey, addCredit };
    }

    /// <summary>Follows the execution's events until it ends (or the timeout), then prints it.</summary>
    private static async Task<int> WatchAsync(ModelRouteClient client, Output output, Execution execution, int? timeoutSeconds, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        if (timeoutSeconds is { } s)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(s));
        }

        var final = execution;
        try
        {
            if (output.Interactive)
            {
                await AnsiConsole.Status().StartAsync($"{execution.Id}: {execution.Status}", async context =>
                {
                    await foreach (var e in client.StreamEventsAsync(execution.Id, timeout.Token))
                    {
                        context.Status($"{execution.Id}: {e.Data.Status}");
                        AnsiConsole.MarkupLine($"[grey]{Output.Time(e.CreatedAt)}[/] {Markup.Escape(e.Data.Status)}");
                        final = e.Data;
                    }
                });
            }
            else
            {
                await foreach (var e in client.StreamEventsAsync(execution.Id, timeout.Token))
                {
                    output.Line($"status: {e.Data.Status}");
                    final = e.Data;
                }
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            final = await client.GetAsync(execution.Id, cancellationToken);
            output.Execution(final);
            if (!final.IsTerminal)
            {
                Output.Error($"{execution.Id} is still {final.Status} after {timeoutSeconds} s.");
                return ExitCodes.WaitTimedOut;
            }

            return Outcome(final);
        }

        if (!final.IsTerminal || final.Model is null)
        {
            final = await client.GetAsync(execution.Id, cancellationToken);
        }

        output.Execution(final);
        return Outcome(final);
    }

    internal static int Outcome(Execution execution) =>
        execution.Status == ExecutionStatuses.Completed ? ExitCodes.Ok : execution.IsTerminal ? ExitCodes.ExecutionNotCompleted : ExitCodes.WaitTimedOut;

    private static JsonElement BuildInput(string? input, string? message, string? prompt)
    {
        var given = (input is null ? 0 : 1) + (message is null ? 0 : 1) + (prompt is null ? 0 : 1);
        if (given != 1)
        {
            throw new UsageException("Give exactly one of --input, --message or --prompt.");
        }

        if (message is not null)
        {
            return JsonSerializer.SerializeToElement(new { messages = new[] { new { role = "user", content = message } } });
        }

        if (prompt is not null)
        {
            return JsonSerializer.SerializeToElement(new { prompt });
        }

        var text = input switch
        {
            "-" => Console.In.ReadToEnd(),
            ['@', .. var path] => File.Exists(path) ? File.ReadAllText(path) : throw new UsageException($"--input: no file '{path}'."),
            _ => input!,
        };
        return ParseObject(text, "--input");
    }

    private static JsonElement ParseObject(string text, string option)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? document.RootElement.Clone()
                : throw new UsageException($"{option} must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw new UsageException($"{option} is not valid JSON: {e.Message}");
        }
    }

    /// <summary>Runs one command with a configured client, turning failures into the documented exit codes.</summary>
    private static async Task<int> Run(
        ParseResult parse, CancellationToken cancellationToken, Func<ModelRouteClient, Output, CancellationToken, Task<int>> action, Option<string?>? adminKey = null)
    {
        var output = new Output(parse.GetValue(JsonOption));
        try
        {
            var url = parse.GetValue(UrlOption) ?? NonEmpty(Environment.GetEnvironmentVariable("MODELROUTE_URL")) ?? DefaultUrl;
            if (!Uri.TryCreate(url, UriKind.Absolute, out var baseAddress) || baseAddress.Scheme is not ("http" or "https"))
            {
                throw new UsageException($"'{url}' is not an http(s) URL (--url or MODELROUTE_URL).");
            }

            var key = (adminKey is null ? null : parse.GetValue(adminKey) ?? NonEmpty(Environment.GetEnvironmentVariable("MODELROUTE_ADMIN_KEY")))
                ?? parse.GetValue(ApiKeyOption) ?? NonEmpty(Environment.GetEnvironmentVariable("MODELROUTE_API_KEY"));
            using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(100) };
            using var client = new ModelRouteClient(http, new ModelRouteClientOptions { BaseAddress = baseAddress, ApiKey = key, MaxRetries = 3, InitialBackoff = TimeSpan.FromMilliseconds(200) });
            return await action(client, output, cancellationToken);
        }
        catch (UsageException e)
        {
            Output.Error(e.Message);
            Console.Error.WriteLine($"Run 'modelroute {string.Join(' ', CommandPath(parse))} --help' for usage.");
            return ExitCodes.Usage;
        }
        catch (ModelRouteApiException e)
        {
            if (output.Json)
            {
                Console.Error.WriteLine(Output.Serialize(e.Problem));
            }
            else
            {
                Output.Error(e.Message);
            }

            return ExitCodes.ApiError;
        }
        catch (HttpRequestException e)
        {
            Output.Error($"cannot reach the gateway: {e.Message}");
            return ExitCodes.ConnectionError;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Output.Error("interrupted");
            return ExitCodes.Interrupted;
        }
        catch (TaskCanceledException e)
        {
            Output.Error($"the gateway did not answer in time: {e.Message}");
            return ExitCodes.ConnectionError;
        }
    }

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static IEnumerable<string> CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null && result.Parent is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, result.Command.Name);
        }

        return names;
    }
}
