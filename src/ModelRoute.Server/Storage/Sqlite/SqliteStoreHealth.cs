namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// Readiness of the SQLite file. Its own type, depending on the database alone, so that what watches the store's
/// health (StoreAvailability) never needs a store that may itself need that watcher.
/// </summary>
public sealed class SqliteStoreHealth(SqliteDatabase db) : IStoreHealth
{
    public async Task<bool> IsReadyAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await db.ReadAsync(async c => await Dapper.SqlMapper.ExecuteScalarAsync<long>(c, "SELECT 1") == 1, cancellationToken);
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            return false;
        }
    }
}
