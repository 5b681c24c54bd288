using System.Collections;
using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Data.Sqlite;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// Prepared statements kept on the writer's long-lived connection. Every write runs on that one
/// thread, so compiling each statement again (as a fresh command per call does) was a large
/// part of its time. A statement is prepared once per SQL text and parameter type, and later
/// calls only bind values. On any other connection, and for list parameters (<c>IN @ids</c>),
/// the calls fall back to plain Dapper.
/// </summary>
internal sealed partial class SqlitePreparedStatements : IDisposable
{
    private static readonly ConditionalWeakTable<SqliteConnection, SqlitePreparedStatements> Attached = new();
    private readonly Dictionary<(string Sql, Type Type), Statement?> _statements = new(KeyComparer.Instance);
    private readonly Dictionary<(string Sql, Type Type), RawStatement?> _rawStatements = new(KeyComparer.Instance);
    private readonly SqliteConnection _connection;

    private SqlitePreparedStatements(SqliteConnection connection) => _connection = connection;

    /// <summary>Keeps prepared statements for <paramref name="connection"/>, which only one thread may use at a time.</summary>
    public static SqlitePreparedStatements Attach(SqliteConnection connection)
    {
        var statements = new SqlitePreparedStatements(connection);
        Attached.AddOrUpdate(connection, statements);
        return statements;
    }

    public static SqlitePreparedStatements? For(DbConnection connection) =>
        connection is SqliteConnection sqlite && Attached.TryGetValue(sqlite, out var statements) ? statements : null;

    /// <summary>The prepared statement for this SQL and parameter object, with its values bound; null when Dapper must run it.</summary>
    public Statement? Bind(string sql, object param, DbTransaction? transaction)
    {
        var key = (sql, param.GetType());
        if (!_statements.TryGetValue(key, out var statement))
        {
            statement = Statement.Create(_connection, sql, param.GetType());
            _statements[key] = statement;
        }

        if (statement is null)
        {
            return null;
        }

        statement.Command.Transaction = (SqliteTransaction?)transaction;
        foreach (var (parameter, read) in statement.Bindings)
        {
            parameter.Value = read(param) ?? DBNull.Value;
        }

        return statement;
    }

    /// <summary>Runs a statement without parameters (SAVEPOINT, RELEASE, …), prepared once.</summary>
    public void Execute(string sql, SqliteTransaction transaction) => ExecuteNonQuery(sql, NoParameters, transaction);

    /// <summary>
    /// Runs a statement that returns no rows; the number of rows it changed. Statements whose parameters are all
    /// plain values run through SQLite's own API (<see cref="RawStatement"/>); the rest through the prepared command.
    /// </summary>
    public int ExecuteNonQuery(string sql, object param, DbTransaction? transaction)
    {
        if (Raw(sql, param) is { } raw)
        {
            return raw.Execute(param);
        }

        return Bind(sql, param, transaction) is { } statement ? statement.Command.ExecuteNonQuery() : -1;
    }

    /// <summary>
    /// Runs a statement that returns rows through SQLite's own API (<see cref="RawStatement"/>), reading each row
    /// straight into a <typeparamref name="T"/>; false, with nothing run, when its parameters or <typeparamref name="T"/>
    /// need the command path.
    /// </summary>
    public bool TryQuery<T>(string sql, object param, [NotNullWhen(true)] out List<T>? rows)
    {
        rows = null;
        if (Raw(sql, param) is not { } raw)
        {
            return false;
        }

        var read = new List<T>();
        if (!raw.TryQuery(param, read))
        {
            return false;
        }

        rows = read;
        return true;
    }

    private RawStatement? Raw(string sql, object param)
    {
        var key = (sql, param.GetType());
        if (!_rawStatements.TryGetValue(key, out var raw))
        {
            raw = RawStatement.Create(_connection, sql, param.GetType());
            _rawStatements[key] = raw;
        }

        return raw;
    }

    private static readonly object NoParameters = new();

    /// <summary>
    /// Looks statements up without hashing their whole SQL text at every call (that hash was a few per cent of the writer
    /// thread's time): the texts are constants, so their length and a few characters spread them, and equality still
    /// compares them whole (at once when they are the same string).
    /// </summary>
    private sealed class KeyComparer : IEqualityComparer<(string Sql, Type Type)>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals((string Sql, Type Type) x, (string Sql, Type Type) y) => x.Type == y.Type && string.Equals(x.Sql, y.Sql, StringComparison.Ordinal);

        public int GetHashCode((string Sql, Type Type) key)
        {
            var sql = key.Sql;
            return sql.Length == 0
                ? key.Type.GetHashCode()
                : HashCode.Combine(sql.Length, sql[sql.Length / 3], sql[sql.Length / 2], sql[^1], key.Type);
        }
    }

    public void Dispose()
    {
        foreach (var statement in _statements.Values)
        {
            statement?.Command.Dispose();
        }

        foreach (var raw in _rawStatements.Values)
        {
            raw?.Dispose();
        }

        _statements.Clear();
        _rawStatements.Clear();
        Attached.Remove(_connection);
    }

    [GeneratedRegex(@"@([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex ParameterName();

    /// <summary>
    /// A statement that returns no rows, run with SQLite's own API on the writer's connection: parameters are bound by
    /// the index found once at preparation, and no command, reader or parameter collection is involved. Microsoft.Data.Sqlite
    /// looks every parameter up by name and builds a reader for each execution, which was much of the writer thread's time.
    /// </summary>
    public sealed class RawStatement : IDisposable
    {
        private static readonly HashSet<Type> Plain = [typeof(string), typeof(long), typeof(int), typeof(bool), typeof(double), typeof(byte[])];
        private readonly SQLitePCL.sqlite3 _db;
        private readonly SQLitePCL.sqlite3_stmt _statement;
        private readonly (int Index, Func<object, object?> Read)[] _bindings;

        private RawStatement(SQLitePCL.sqlite3 db, SQLitePCL.sqlite3_stmt statement, (int Index, Func<object, object?> Read)[] bindings)
        {
            _db = db;
            _statement = statement;
            _bindings = bindings;
        }

        /// <summary>Prepared for <paramref name="sql"/> (one statement) and the parameter type; null when a parameter is not a plain value.</summary>
        public static RawStatement? Create(SqliteConnection connection, string sql, Type type)
        {
            var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance);
            var found = new List<(string Name, PropertyInfo Property)>();
            foreach (var name in ParameterName().Matches(sql).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal))
            {
                var property = properties.FirstOrDefault(p => p.Name == name)
                    ?? properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
                var underlying = property is null ? null : Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                if (property is null || underlying is null || !(Plain.Contains(underlying) || underlying.IsEnum))
                {
                    return null;
                }

                found.Add((name, property));
            }

            if (connection.Handle is not { } db)
            {
                return null;
            }

            var rc = SQLitePCL.raw.sqlite3_prepare_v2(db, sql, out var statement);
            if (rc != SQLitePCL.raw.SQLITE_OK || statement is null)
            {
                statement?.Dispose();
                SqliteException.ThrowExceptionForRC(rc, db);
                return null; // Nothing to run (no statement in the text): the command path decides.
            }

            var bindings = new (int, Func<object, object?>)[found.Count];
            for (var i = 0; i < found.Count; i++)
            {
                bindings[i] = (SQLitePCL.raw.sqlite3_bind_parameter_index(statement, "@" + found[i].Name), Statement.Getter(type, found[i].Property));
            }

            return new RawStatement(db, statement, bindings);
        }

        /// <summary>Binds <paramref name="param"/>, runs the statement to its end, and returns the number of rows it changed.</summary>
        public int Execute(object param)
        {
            Run<object?>(param, null, null);
            return SQLitePCL.raw.sqlite3_changes(_db);
        }

        /// <summary>
        /// Binds <paramref name="param"/>, runs the statement to its end and adds each row it returns to <paramref name="rows"/>;
        /// false, with nothing run, when <see cref="RowReader"/> cannot read a <typeparamref name="T"/> from its columns.
        /// </summary>
        public bool TryQuery<T>(object param, List<T> rows)
        {
            if (_reader?.Type != typeof(T))
            {
                _reader = (typeof(T), RowReader.For<T>(_statement));
            }

            if (_reader.Value.Read is not Func<SQLitePCL.sqlite3_stmt, T> read)
            {
                return false;
            }

            Run(param, read, rows);
            return true;
        }

        /// <summary>Binds, steps to the end (a RETURNING statement finishes its work only then), reading rows if asked, and resets.</summary>
        private void Run<T>(object param, Func<SQLitePCL.sqlite3_stmt, T>? read, List<T>? rows)
        {
            try
            {
                foreach (var (index, value) in _bindings)
                {
                    Check(Bind(index, value(param)));
                }

                int rc;
                while ((rc = SQLitePCL.raw.sqlite3_step(_statement)) == SQLitePCL.raw.SQLITE_ROW)
                {
                    if (read is not null)
                    {
                        rows!.Add(read(_statement));
                    }
                }

                Check(rc == SQLitePCL.raw.SQLITE_DONE ? SQLitePCL.raw.SQLITE_OK : rc);
            }
            finally
            {
                SQLitePCL.raw.sqlite3_reset(_statement);
            }
        }

        // How rows become the T of the last query (a statement's columns never change); null Read: not readable here.
        private (Type Type, Delegate? Read)? _reader;

        private int Bind(int index, object? value) => value switch
        {
            null => SQLitePCL.raw.sqlite3_bind_null(_statement, index),
            string text => SQLitePCL.raw.sqlite3_bind_text(_statement, index, text),
            long number => SQLitePCL.raw.sqlite3_bind_int64(_statement, index, number),
            int number => SQLitePCL.raw.sqlite3_bind_int64(_statement, index, number),
            bool flag => SQLitePCL.raw.sqlite3_bind_int64(_statement, index, flag ? 1 : 0),
            double real => SQLitePCL.raw.sqlite3_bind_double(_statement, index, real),
            byte[] bytes => SQLitePCL.raw.sqlite3_bind_blob(_statement, index, bytes),
            _ => SQLitePCL.raw.sqlite3_bind_int64(_statement, index, Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)),
        };

        private void Check(int rc)
        {
            if (rc != SQLitePCL.raw.SQLITE_OK)
            {
                SqliteException.ThrowExceptionForRC(rc, _db);
            }
        }

        public void Dispose() => _statement.Dispose();
    }

    public sealed class Statement(SqliteCommand command, (SqliteParameter Parameter, Func<object, object?> Read)[] bindings)
    {
        public SqliteCommand Command { get; } = command;

        public (SqliteParameter Parameter, Func<object, object?> Read)[] Bindings { get; } = bindings;

        private object? _rowParser;

        /// <summary>Dapper's parser for this statement's rows, built at the first row: a statement's columns never change.</summary>
        public Func<DbDataReader, T> RowParser<T>(DbDataReader reader) =>
            _rowParser as Func<DbDataReader, T> ?? (Func<DbDataReader, T>)(_rowParser = PreparedSql.RowParser<T>(reader));

        public static Statement? Create(SqliteConnection connection, string sql, Type type)
        {
            var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance);
            var bindings = new List<(SqliteParameter, Func<object, object?>)>();
            var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in ParameterName().Matches(sql).Select(m => m.Groups[1].Value).Distinct(StringComparer.Ordinal))
            {
                var property = properties.FirstOrDefault(p => p.Name == name)
                    ?? properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
                if (property is null || (property.PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(property.PropertyType)))
                {
                    command.Dispose();
                    return null; // Unknown to us, or a list Dapper expands: leave it to Dapper.
                }

                var parameter = command.CreateParameter();
                parameter.ParameterName = "@" + name;
                command.Parameters.Add(parameter);
                bindings.Add((parameter, Getter(type, property)));
            }

            // Without an explicit Prepare, Microsoft.Data.Sqlite compiles the SQL again at every execution.
            command.Prepare();
            return new Statement(command, [.. bindings]);
        }

        internal static Func<object, object?> Getter(Type type, PropertyInfo property)
        {
            var instance = Expression.Parameter(typeof(object));
            Expression value = Expression.Property(Expression.Convert(instance, type), property);
            var underlying = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (underlying.IsEnum)
            {
                // Dapper writes enums as their numbers; so do we.
                value = Expression.Convert(value, property.PropertyType == underlying ? Enum.GetUnderlyingType(underlying) : typeof(Nullable<>).MakeGenericType(Enum.GetUnderlyingType(underlying)));
            }

            return Expression.Lambda<Func<object, object?>>(Expression.Convert(value, typeof(object)), instance).Compile();
        }
    }
}
