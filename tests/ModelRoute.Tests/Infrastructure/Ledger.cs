namespace ModelRoute.Tests.Infrastructure;

/// <summary>The invariants of docs/api.md#money, checked from the outside through the API.</summary>
public static class Ledger
{
    public static async Task AssertBalancedAsync(HttpClient client)
    {
        var entries = await client.LedgerAsync();
        long credits = 0, charges = 0, holds = 0, releases = 0;
        foreach (var entry in entries)
        {
            var amount = HttpExtensions.Micros(entry.GetProperty("amount"));
            switch (entry.GetProperty("kind").GetString())
            {
                case "credit": credits += amount; break;
                case "charge": charges += amount; break;
                case "hold": holds += amount; break;
                case "release": releases += amount; break;
                default: throw new ShouldAssertException("unknown ledger kind " + entry);
            }
        }

        var (balance, held, available) = await client.BalanceAsync();
        balance.ShouldBe(credits - charges, "balance = credits − charges");
        held.ShouldBe(holds - releases, "held = open holds");
        available.ShouldBe(balance - held);
        available.ShouldBeGreaterThanOrEqualTo(0);

        // Every execution's hold is released exactly once, and only when it has ended.
        var byExecution = entries.Where(e => e.GetProperty("execution_id").ValueKind == JsonValueKind.String)
            .GroupBy(e => e.GetProperty("execution_id").GetString()!);
        foreach (var group in byExecution)
        {
            group.Count(e => e.GetProperty("kind").GetString() == "hold").ShouldBe(1, $"one hold for {group.Key}");
            group.Count(e => e.GetProperty("kind").GetString() == "release").ShouldBeLessThanOrEqualTo(1, $"at most one release for {group.Key}");
            group.Count(e => e.GetProperty("kind").GetString() == "charge").ShouldBeLessThanOrEqualTo(1, $"at most one charge for {group.Key}");
        }
    }
}
