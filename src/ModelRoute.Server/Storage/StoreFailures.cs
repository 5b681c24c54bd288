using Microsoft.Data.Sqlite;
using Npgsql;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Tells a store that cannot be reached (or cannot take writes for now) apart from every other failure: the first is
/// answered 503 STORE_UNAVAILABLE with Retry-After and logged once per outage (docs/deploy.md), the rest stay bugs.
/// </summary>
public static class StoreFailures
{
    // SQLite primary result codes: BUSY and LOCKED (past the busy timeout), IOERR, FULL (disk full), CANTOPEN.
    private const int SqliteBusy = 5;
    private const int SqliteLocked = 6;
    private const int SqliteIoError = 10;
    private const int SqliteFull = 13;
    private const int SqliteCantOpen = 14;

    /// <summary>Whether <paramref name="exception"/> (or one it wraps) says the store is unreachable or unable to work now.</summary>
    public static bool IsUnavailable(Exception? exception)
    {
        for (var depth = 0; exception is not null && depth < 8; depth++)
        {
            switch (exception)
            {
                case PostgresException postgres:
                    return IsUnavailableState(postgres.SqlState);
                case NpgsqlException:
                    // Raised by Npgsql itself, not by the server: connection refused or broken, a timeout opening a
                    // connection, the pool exhausted. Nothing the server refused, so nothing about the request.
                    return true;
                case SqliteException sqlite:
                    return (sqlite.SqliteErrorCode & 0xFF) is SqliteBusy or SqliteLocked or SqliteIoError or SqliteFull or SqliteCantOpen;
                case AggregateException { InnerExceptions.Count: 1 } aggregate:
                    exception = aggregate.InnerExceptions[0];
                    break;
                default:
                    exception = exception.InnerException;
                    break;
            }
        }

        return false;
    }

    /// <summary>
    /// Connection exceptions (08), insufficient resources (53: too many connections, disk full), the server shutting
    /// down or starting (57P01–57P05), and system or I/O errors (58).
    /// </summary>
    private static bool IsUnavailableState(string state) =>
        state.StartsWith("08", StringComparison.Ordinal)
        || state.StartsWith("53", StringComparison.Ordinal)
        || state.StartsWith("57P", StringComparison.Ordinal)
        || state.StartsWith("58", StringComparison.Ordinal);
}
