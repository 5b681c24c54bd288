using Npgsql;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// Readiness of the PostgreSQL server. Its own type, depending on the database alone, so that what watches the
/// store's health (StoreAvailability, which the notifier reports to) never needs a store that needs the notifier.
/// </summary>
public sealed class PostgresStoreHealth(PostgresDatabase db) : IStoreHealth
{
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await db.ReadAsync(async c => await Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT 1") == 1, cancellationToken);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException)
        {
            return false;
        }
    }
}
