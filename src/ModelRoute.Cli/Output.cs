using System.Globalization;
using System.Text.Json;
using ModelRoute.Client;
using Spectre.Console;

namespace ModelRoute.Cli;

/// <summary>Writes results for people (plain lines, tables) or scripts (<c>--json</c>).</summary>
internal sealed class Output(bool json)
{
    private static readonly JsonSerializerOptions Indented = new(ModelRouteJson.SerializerOptions) { WriteIndented = true };

    public bool Json { get; } = json;

    /// <summary>Whether live widgets (spinners, progress bars) may be drawn.</summary>
    public bool Interactive => !Json && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    public static string Serialize<T>(T value, bool indented = false) => JsonSerializer.Serialize(value, indented ? Indented : ModelRouteJson.SerializerOptions);

    public void WriteJson<T>(T value) => Console.Out.WriteLine(Serialize(value, indented: true));

    public void Line(string text)
    {
        if (!Json)
        {
            Console.Out.WriteLine(text);
        }
    }

    public void Execution(Execution e)
    {
        if (Json)
        {
            WriteJson(e);
            return;
        }

        Console.Out.WriteLine($"{e.Id}  {e.Status}  {e.Model}");
        Console.Out.WriteLine($"  idempotency_key: {e.IdempotencyKey}");
        if (e.Provider is not null)
        {
            Console.Out.WriteLine($"  provider: {e.Provider}  attempts: {e.Attempts}");
        }

        if (e.Cost is { } cost)
        {
            Console.Out.WriteLine($"  cost: estimated {Money(cost.Estimated)}  held {Money(cost.Held)}  actual {(cost.Actual is { } a ? Money(a) : "-")} {cost.Currency}");
        }

        Console.Out.WriteLine($"  created: {Time(e.CreatedAt)}  completed: {Time(e.CompletedAt)}");
        if (e.Output is { } output)
        {
            Console.Out.WriteLine($"  output: {output.GetRawText()}");
        }

        foreach (var artifact in e.Artifacts)
        {
            Console.Out.WriteLine($"  artifact: {artifact.Name} ({artifact.ContentType}, {artifact.SizeBytes} bytes) {artifact.Url}");
        }

        if (e.Error is { } error)
        {
            Console.Out.WriteLine($"  error: {error.Code}: {error.Message}{(error.Retryable ? " (retryable)" : "")}");
        }
    }

    public void Table(IReadOnlyList<Execution> executions, bool hasMore)
    {
        if (Json)
        {
            WriteJson(executions);
            return;
        }

        var table = new Table().Border(TableBorder.Simple);
        table.AddColumns("ID", "STATUS", "MODEL", "CREATED", "COST (USD)");
        foreach (var e in executions)
        {
            table.AddRow(
                Markup.Escape(e.Id), Markup.Escape(e.Status), Markup.Escape(e.Model ?? ""), Markup.Escape(Time(e.CreatedAt)),
                e.Cost is { } c ? Money(c.Actual ?? c.Estimated) + (c.Actual is null ? " (est.)" : "") : "");
        }

        if (!Console.IsOutputRedirected)
        {
            AnsiConsole.Write(table);
        }
        else
        {
            // A wide fixed console so redirected output is never wrapped.
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
            console.Profile.Width = 200;
            console.Write(table);
        }

        Console.Out.WriteLine($"{executions.Count} execution(s){(hasMore ? "; more with --limit or --all" : "")}");
    }

    public static void Error(string message) => Console.Error.WriteLine("modelroute: " + message);

    public static string Money(decimal value) => value.ToString("0.000000", CultureInfo.InvariantCulture);

    public static string Time(DateTimeOffset? value) => value?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "-";
}
