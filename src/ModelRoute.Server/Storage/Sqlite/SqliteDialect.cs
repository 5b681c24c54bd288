using System.Data.Common;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>SQLite's side of <see cref="ISqlDialect"/>: every write joins the single writer's group commit (<see cref="SqliteDatabase"/>).</summary>
public sealed class SqliteDialect(SqliteDatabase db) : ISqlDialect
{
    public string NullableText => "";

    public string Greatest => "MAX";

    // Dapper expands the list into one parameter per value.
    public string InList(string column, string parameter) => $"{column} IN @{parameter}";

    public string? LockAccountSql => null;

    public Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken) => db.ReadAsync(read, cancellationToken);

    public Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken) =>
        db.WriteAsync(write, cancellationToken);

    public Task<T> WriteEachAsync<T>(Func<DbConnection, DbTransaction?, Task<T>> write, CancellationToken cancellationToken) =>
        db.WriteAsync(async (c, tx) => (await write(c, tx), true), cancellationToken);
}
