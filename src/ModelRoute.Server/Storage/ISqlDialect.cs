using System.Data.Common;

namespace ModelRoute.Server.Storage;

/// <summary>
/// What the stores written once for both engines (<see cref="AccountStore"/>, <see cref="WebhookStore"/>) need of
/// SQLite or PostgreSQL: how a read and a write run, and the few SQL snippets that are spelt differently. What other
/// nodes must hear after a commit goes through <see cref="IChangeBroadcast"/>. Each engine's own text stays beside its
/// store (Storage/Sqlite, Storage/Postgres); statements that differ in more than spelling (claims, group commits) stay
/// in the engine's own code.
/// </summary>
public interface ISqlDialect
{
    /// <summary>
    /// Appended to a text parameter that may be null where only its being null is tested (<c>@before IS NULL</c>):
    /// PostgreSQL cannot infer the type of a null parameter there.
    /// </summary>
    string NullableText { get; }

    /// <summary>The larger of two values: <c>MAX</c> (SQLite's scalar form) or <c>GREATEST</c>.</summary>
    string Greatest { get; }

    /// <summary><paramref name="column"/> is one of the list parameter <paramref name="parameter"/> (an array).</summary>
    string InList(string column, string parameter);

    /// <summary>
    /// Locks the account row <c>@accountId</c> for the rest of the transaction and returns its id (none: no account);
    /// null where every write already runs alone (SQLite's single writer).
    /// </summary>
    string? LockAccountSql { get; }

    Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>Runs <paramref name="write"/> in one transaction; it commits unless it throws or asks to roll back.</summary>
    Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<(T Result, bool Commit)>> write, CancellationToken cancellationToken);

    /// <summary>
    /// Runs statements that each stand alone: on SQLite in the single writer's transaction, on PostgreSQL each in its own
    /// implicit transaction (no transaction is passed), so that none holds a row lock while it waits for another.
    /// </summary>
    Task<T> WriteEachAsync<T>(Func<DbConnection, DbTransaction?, Task<T>> write, CancellationToken cancellationToken);
}
