using System.Data.Common;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>
/// PostgreSQL's side of <see cref="ISqlDialect"/>: writes in READ COMMITTED transactions of their own
/// (<see cref="PostgresDatabase"/>).
/// </summary>
public sealed class PostgresDialect(PostgresDatabase db) : ISqlDialect
{
    public string NullableText => "::text";

    public string Greatest => "GREATEST";

    // Npgsql sends the array as one parameter.
    public string InList(string column, string parameter) => $"{column} = ANY(@{parameter})";

    // A concurrent credit with the same reference then waits for this one to commit and finds its entry, instead of
    // both crediting and one failing on the unique index.
    public string? LockAccountSql => "SELECT id FROM accounts WHERE id = @accountId FOR UPDATE";

    public Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken) => db.ReadAsync(read, cancellationToken);

    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken) =>
        db.WriteAsync(write, cancellationToken);

    public Task<T> WriteEachAsync<T>(Func<DbConnection, DbTransaction?, Task<T>> write, CancellationToken cancellationToken) =>
        db.WriteStatementAsync(c => write(c, null), cancellationToken);
}
