using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using ModelRoute.Client;
using Spectre.Console;

namespace ModelRoute.Cli;

/// <summary>
/// <c>modelroute batch FILE.jsonl</c>: submits each line, in chunks, with an idempotency key derived from the file name,
/// the line number and the line's content (unless the line has its own), so a re-run answers the same executions.
/// </summary>
internal sealed class BatchRunner(ModelRouteClient client, Output output)
{
    private static readonly JsonSerializerOptions Strict = new(ModelRouteJson.SerializerOptions) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow };

    public async Task<int> RunAsync(FileInfo file, FileInfo? outputFile, int chunkSize, bool wait, CancellationToken cancellationToken)
    {
        if (chunkSize is < 1 or > 1000)
        {
            throw new UsageException("--chunk-size must be from 1 to 1000.");
        }

        if (!file.Exists)
        {
            throw new UsageException($"No file '{file.FullName}'.");
        }

        var resultsPath = outputFile?.FullName ?? Path.Combine(file.DirectoryName!, Path.GetFileNameWithoutExtension(file.Name) + ".results.jsonl");
        var lines = await File.ReadAllLinesAsync(file.FullName, cancellationToken);
        var results = new SortedDictionary<int, BatchLineResult>();
        var pending = ReadLines(file.Name, lines, results);
        if (pending.Count == 0 && results.Count == 0)
        {
            throw new UsageException($"'{file.Name}' has no submissions.");
        }

        var chunks = pending.Chunk(chunkSize).ToList();
        if (output.Interactive)
        {
            await RunWithProgressBarsAsync(chunks, pending.Count, results, wait, cancellationToken);
        }
        else
        {
            await RunWithProgressLinesAsync(chunks, pending.Count, results, wait, cancellationToken);
        }

        await using (var writer = new StreamWriter(resultsPath, append: false, new UTF8Encoding(false)))
        {
            foreach (var result in results.Values)
            {
                await writer.WriteLineAsync(Output.Serialize(result));
            }
        }

        return Summarize(file, resultsPath, results, wait);
    }

    /// <summary>Each non-empty line as a submission with its key; a line that is not one is recorded as INVALID_LINE.</summary>
    private static List<(int Line, SubmitExecutionRequest Request)> ReadLines(string fileName, string[] lines, SortedDictionary<int, BatchLineResult> results)
    {
        var pending = new List<(int Line, SubmitExecutionRequest Request)>();
        for (var i = 0; i < lines.Length; i++)
        {
            var text = lines[i].Trim();
            if (text.Length == 0)
            {
                continue;
            }

            var number = i + 1;
            var key = DeriveKey(fileName, number, text);
            try
            {
                var node = JsonNode.Parse(text) as JsonObject ?? throw new JsonException("The line is not a JSON object.");
                if (node["idempotency_key"] is null)
                {
                    node["idempotency_key"] = key;
                }

                var request = node.Deserialize<SubmitExecutionRequest>(Strict) ?? throw new JsonException("The line is empty.");
                pending.Add((number, request));
            }
            catch (JsonException e)
            {
                results[number] = new BatchLineResult(number, key, 0, null, new ApiProblem { Status = 0, Code = "INVALID_LINE", Detail = e.Message });
            }
        }

        return pending;
    }

    private Task RunWithProgressBarsAsync(
        List<(int Line, SubmitExecutionRequest Request)[]> chunks, int count, SortedDictionary<int, BatchLineResult> results, bool wait, CancellationToken cancellationToken) =>
        AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var submitting = context.AddTask("submitting", maxValue: count);
                var finishing = wait ? context.AddTask("completing", maxValue: count) : null;
                await SubmitAsync(chunks, results, n => submitting.Increment(n), cancellationToken);
                if (finishing is not null)
                {
                    await WaitAllAsync(results, () => finishing.Increment(1), cancellationToken);
                }
            });

    private async Task RunWithProgressLinesAsync(
        List<(int Line, SubmitExecutionRequest Request)[]> chunks, int count, SortedDictionary<int, BatchLineResult> results, bool wait, CancellationToken cancellationToken)
    {
        var submitted = 0;
        var done = 0;
        await SubmitAsync(chunks, results, n => output.Line($"submitted {submitted += n}/{count}"), cancellationToken);
        if (wait)
        {
            var step = Math.Max(1, count / 10);
            await WaitAllAsync(results, () =>
            {
                var now = Interlocked.Increment(ref done);
                if (now % step == 0 || now == count)
                {
                    output.Line($"ended {now}/{count}");
                }
            }, cancellationToken);
        }
    }

    /// <summary>Prints the counts (and the first rejections) and gives the exit code.</summary>
    private int Summarize(FileInfo file, string resultsPath, SortedDictionary<int, BatchLineResult> results, bool wait)
    {
        var created = results.Values.Count(r => r.Status == 202);
        var replayed = results.Values.Count(r => r.Status == 200);
        var rejected = results.Values.Count(r => r.Execution is null);
        var completed = results.Values.Count(r => r.Execution?.Status == ExecutionStatuses.Completed);
        var notCompleted = results.Values.Count(r => r.Execution is { IsTerminal: true } e && e.Status != ExecutionStatuses.Completed);
        if (output.Json)
        {
            output.WriteJson(new { file = file.FullName, output = resultsPath, lines = results.Count, created, replayed, rejected, completed = wait ? completed : (int?)null, not_completed = wait ? notCompleted : (int?)null });
        }
        else
        {
            output.Line($"{results.Count} line(s): {created} created, {replayed} already submitted, {rejected} rejected{(wait ? $", {completed} completed, {notCompleted} did not complete" : "")}");
            output.Line($"results: {resultsPath}");
        }

        foreach (var bad in results.Values.Where(r => r.Error is not null).Take(10))
        {
            Output.Error($"line {bad.Line}: {bad.Error!.Code}: {bad.Error.Detail}{(bad.Error.Field is null ? "" : $" ({bad.Error.Field})")}");
        }

        return rejected > 0 ? ExitCodes.ApiError : wait && notCompleted > 0 ? ExitCodes.ExecutionNotCompleted : ExitCodes.Ok;
    }

    /// <summary>The key of a line without its own: the same file name, line number and content always give the same key.</summary>
    internal static string DeriveKey(string fileName, int line, string content)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{fileName}\n{line}\n{content}"));
        return $"batch:{fileName}:{line}:{Convert.ToHexStringLower(hash)[..16]}";
    }

    private async Task SubmitAsync(
        List<(int Line, SubmitExecutionRequest Request)[]> chunks, SortedDictionary<int, BatchLineResult> results, Action<int> progress, CancellationToken cancellationToken)
    {
        foreach (var chunk in chunks)
        {
            var answers = await client.SubmitBatchAsync(chunk.Select(c => c.Request), cancellationToken);
            for (var i = 0; i < chunk.Length; i++)
            {
                var answer = answers[i];
                results[chunk[i].Line] = new BatchLineResult(chunk[i].Line, chunk[i].Request.IdempotencyKey!, answer.Status, answer.Execution, answer.Error);
            }

            progress(chunk.Length);
        }
    }

    private async Task WaitAllAsync(SortedDictionary<int, BatchLineResult> results, Action progress, CancellationToken cancellationToken)
    {
        var accepted = results.Values.Where(r => r.Execution is not null).ToList();
        var finals = new System.Collections.Concurrent.ConcurrentDictionary<int, Execution>();
        await Parallel.ForEachAsync(accepted, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken }, async (r, token) =>
        {
            finals[r.Line] = await client.WaitAsync(r.Execution!.Id, cancellationToken: token);
            progress();
        });
        foreach (var (line, execution) in finals)
        {
            results[line] = results[line] with { Execution = execution };
        }
    }
}

/// <summary>One line of the results file.</summary>
internal sealed record BatchLineResult(int Line, string IdempotencyKey, int Status, Execution? Execution, ApiProblem? Error);
