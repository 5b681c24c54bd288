using System.Data.Common;
using Dapper;
using ModelRoute.Server.Storage.Sqlite;

namespace ModelRoute.Server.Storage;

/// <summary>
/// Dapper-shaped calls that use the writer's prepared statements when the connection has them
/// (<see cref="SqlitePreparedStatements"/>) and are plain Dapper everywhere else, PostgreSQL included.
/// </summary>
internal static class PreparedSql
{
    public static Task<int> ExecutePreparedAsync(this DbConnection c, string sql, object param, DbTransaction? tx) =>
        SqlitePreparedStatements.For(c)?.ExecuteNonQuery(sql, param, tx) is { } changed and >= 0
            ? Task.FromResult(changed)
            : c.ExecuteAsync(sql, param, tx);

    public static Task<IEnumerable<T>> QueryPreparedAsync<T>(this DbConnection c, string sql, object param, DbTransaction? tx)
    {
        var statements = SqlitePreparedStatements.For(c);
        if (statements is not null && statements.TryQuery<T>(sql, param, out var read))
        {
            return Task.FromResult<IEnumerable<T>>(read);
        }

        if (statements?.Bind(sql, param, tx) is not { } statement)
        {
            return c.QueryAsync<T>(sql, param, tx);
        }

        var rows = new List<T>();
        using (var reader = statement.Command.ExecuteReader())
        {
            var parse = reader.HasRows ? statement.RowParser<T>(reader) : null!;
            while (reader.Read())
            {
                rows.Add(parse(reader));
            }
        }

        return Task.FromResult<IEnumerable<T>>(rows);
    }

    public static async Task<T?> QueryFirstOrDefaultPreparedAsync<T>(this DbConnection c, string sql, object param, DbTransaction? tx)
    {
        var statements = SqlitePreparedStatements.For(c);
        if (statements is not null && statements.TryQuery<T>(sql, param, out var read))
        {
            return read.Count > 0 ? read[0] : default;
        }

        if (statements?.Bind(sql, param, tx) is not { } statement)
        {
            return await c.QueryFirstOrDefaultAsync<T>(sql, param, tx);
        }

        using var reader = statement.Command.ExecuteReader();
        var row = reader.Read() ? statement.RowParser<T>(reader)(reader) : default;
        // Statements with RETURNING finish their work only when stepped to the end.
        while (reader.Read())
        {
        }

        return row;
    }

    /// <summary>Dapper's row parser, except for single values, which Dapper's parser does not cast (one column, read directly).</summary>
    internal static Func<DbDataReader, T> RowParser<T>(DbDataReader reader)
    {
        var type = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        if (type != typeof(string) && !type.IsPrimitive)
        {
            return reader.GetRowParser<T>();
        }

        return r => r.IsDBNull(0) ? default! : (T)Convert.ChangeType(r.GetValue(0), type, System.Globalization.CultureInfo.InvariantCulture);
    }

    public static async Task<T> QuerySinglePreparedAsync<T>(this DbConnection c, string sql, object param, DbTransaction? tx)
    {
        if (SqlitePreparedStatements.For(c) is null)
        {
            return await c.QuerySingleAsync<T>(sql, param, tx);
        }

        var rows = (await c.QueryPreparedAsync<T>(sql, param, tx)).ToList();
        return rows.Count == 1 ? rows[0] : throw new InvalidOperationException($"Expected one row, got {rows.Count}.");
    }
}
