using System.Linq.Expressions;
using System.Reflection;
using SQLitePCL;

namespace ModelRoute.Server.Storage.Sqlite;

/// <summary>
/// Reads the current row of a prepared statement into a <c>T</c> with SQLite's own column calls, as Dapper would map
/// it: a class by column name (<c>account_id</c> to <c>AccountId</c>; columns it lacks are skipped, and a NULL leaves
/// the property's default), a value tuple by position, or a single value from the first column. On the writer's
/// thread this replaces a data reader and Dapper's parser over it, which boxed every value and were most of the cost
/// of a RETURNING row there.
/// </summary>
internal static class RowReader
{
    private static readonly MethodInfo ColumnType = Method(nameof(raw.sqlite3_column_type));
    private static readonly MethodInfo Int64 = Method(nameof(raw.sqlite3_column_int64));
    private static readonly MethodInfo Double = Method(nameof(raw.sqlite3_column_double));
    private static readonly MethodInfo Text = typeof(RowReader).GetMethod(nameof(ReadText), BindingFlags.NonPublic | BindingFlags.Static)!;

    /// <summary>The reader for <typeparamref name="T"/> from <paramref name="statement"/>'s columns; null when it has a member of a type not read here.</summary>
    public static Func<sqlite3_stmt, T>? For<T>(sqlite3_stmt statement)
    {
        var type = typeof(T);
        var row = Expression.Parameter(typeof(sqlite3_stmt), "row");
        var columns = raw.sqlite3_column_count(statement);
        Expression? body;
        if (Readable(type))
        {
            body = columns < 1 ? null : Read(row, 0, type);
        }
        else if (type.IsValueType && type.FullName?.StartsWith("System.ValueTuple`", StringComparison.Ordinal) == true)
        {
            var items = type.GetGenericArguments();
            body = items.Length > 7 || items.Length > columns || !items.All(Readable)
                ? null
                : Expression.New(type.GetConstructor(items)!, items.Select((item, i) => Read(row, i, item)));
        }
        else
        {
            body = ByName(statement, row, type, columns);
        }

        return body is null ? null : Expression.Lambda<Func<sqlite3_stmt, T>>(body, row).Compile();
    }

    private static Expression? ByName(sqlite3_stmt statement, ParameterExpression row, Type type, int columns)
    {
        if (!type.IsClass || type.GetConstructor(Type.EmptyTypes) is not { } constructor)
        {
            return null;
        }

        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToList();
        var target = Expression.Variable(type, "target");
        var steps = new List<Expression> { Expression.Assign(target, Expression.New(constructor)) };
        for (var i = 0; i < columns; i++)
        {
            var name = raw.sqlite3_column_name(statement, i).utf8_to_string();
            var property = properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? properties.FirstOrDefault(p => string.Equals(p.Name, name.Replace("_", "", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase));
            if (property is null)
            {
                continue;
            }

            if (!Readable(property.PropertyType))
            {
                return null;
            }

            // A NULL leaves the property as the constructor set it, as Dapper does.
            steps.Add(Expression.IfThen(
                Expression.NotEqual(Expression.Call(ColumnType, row, Expression.Constant(i)), Expression.Constant(raw.SQLITE_NULL)),
                Expression.Assign(Expression.Property(target, property), Read(row, i, property.PropertyType))));
        }

        steps.Add(target);
        return Expression.Block([target], steps);
    }

    private static bool Readable(Type type)
    {
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        return underlying == typeof(string) || underlying == typeof(long) || underlying == typeof(int) || underlying == typeof(bool) || underlying == typeof(double);
    }

    /// <summary>Column <paramref name="index"/> as <paramref name="type"/>; a NULL reads as null (or the value type's default).</summary>
    private static Expression Read(ParameterExpression row, int index, Type type)
    {
        var column = Expression.Constant(index);
        if (type == typeof(string))
        {
            return Expression.Call(Text, row, column);
        }

        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        Expression value = underlying == typeof(double)
            ? Expression.Call(Double, row, column)
            : Expression.Call(Int64, row, column);
        value = underlying == typeof(bool) ? Expression.NotEqual(value, Expression.Constant(0L))
            : underlying == typeof(int) ? Expression.Convert(value, typeof(int))
            : value;
        if (underlying == type)
        {
            return value;
        }

        return Expression.Condition(
            Expression.Equal(Expression.Call(ColumnType, row, column), Expression.Constant(raw.SQLITE_NULL)),
            Expression.Default(type),
            Expression.Convert(value, type));
    }

    private static string? ReadText(sqlite3_stmt row, int index) =>
        raw.sqlite3_column_type(row, index) == raw.SQLITE_NULL ? null : raw.sqlite3_column_text(row, index).utf8_to_string();

    private static MethodInfo Method(string name) =>
        typeof(raw).GetMethod(name, BindingFlags.Public | BindingFlags.Static, [typeof(sqlite3_stmt), typeof(int)])!;
}
