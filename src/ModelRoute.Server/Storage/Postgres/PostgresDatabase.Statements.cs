using System.Data;
using System.Reflection;
using System.Collections.Concurrent;
using Npgsql;
using NpgsqlTypes;

namespace ModelRoute.Server.Storage.Postgres;

/// <summary>Statements with named parameters (<c>@name</c>) rewritten to positional ones (<c>$n</c>) once per shape, for batches.</summary>
public sealed partial class PostgresDatabase
{
    private static readonly ConcurrentDictionary<(string Sql, Type Type), PositionalShape> Shapes = new();

    /// <summary>
    /// A batch statement with the public properties of <paramref name="parameters"/> as its
    /// parameters, typed as Dapper would type them (so SQL written for Dapper runs unchanged). The
    /// SQL's <c>@Name</c> placeholders are rewritten to <c>$n</c> once per text and shape: Npgsql sends
    /// positional SQL as it is, while named parameters make it parse and rewrite the text on every
    /// execution (a few percent of the gateway's CPU at a thousand writes a second).
    /// </summary>
    public static NpgsqlBatchCommand Statement(string sql, object parameters)
    {
        var shape = Shapes.GetOrAdd((sql, parameters.GetType()), static key => PositionalShape.For(key.Sql, key.Type));
        var command = new NpgsqlBatchCommand(shape.Sql);
        foreach (var (get, type) in shape.Parameters)
        {
            var parameter = new NpgsqlParameter { Value = get(parameters) ?? DBNull.Value };
            if (type is { } known)
            {
                parameter.NpgsqlDbType = known;
            }

            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>SQL with <c>$n</c> placeholders, and how to read the value of each n from the parameters object.</summary>
    internal sealed class PositionalShape(string sql, (Func<object, object?> Get, NpgsqlDbType? Type)[] parameters)
    {
        public string Sql { get; } = sql;

        public (Func<object, object?> Get, NpgsqlDbType? Type)[] Parameters { get; } = parameters;

        public static PositionalShape For(string sql, Type type)
        {
            var properties = type.GetProperties().ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
            var order = new List<System.Reflection.PropertyInfo>();
            var positions = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
            var text = new System.Text.StringBuilder(sql.Length);
            for (var i = 0; i < sql.Length; i++)
            {
                var c = sql[i];
                if (c == '\'')
                {
                    // A literal is copied as it is: an @ inside it is no placeholder.
                    var end = sql.IndexOf('\'', i + 1);
                    end = end < 0 ? sql.Length - 1 : end;
                    text.Append(sql, i, end - i + 1);
                    i = end;
                    continue;
                }

                if (c == '@' && i + 1 < sql.Length && IsNameStart(sql[i + 1]) && (i == 0 || !IsNamePart(sql[i - 1])))
                {
                    var start = i + 1;
                    var end = start;
                    while (end < sql.Length && IsNamePart(sql[end]))
                    {
                        end++;
                    }

                    var name = sql[start..end];
                    if (!positions.TryGetValue(name, out var position))
                    {
                        var property = properties.GetValueOrDefault(name)
                            ?? throw new ArgumentException($"The SQL uses @{name}, which {type.Name} does not have.", nameof(type));
                        order.Add(property);
                        position = order.Count;
                        positions.Add(name, position);
                    }

                    text.Append('$').Append(position.ToString(CultureInfo.InvariantCulture));
                    i = end - 1;
                    continue;
                }

                text.Append(c);
            }

            return new PositionalShape(text.ToString(), [.. order.Select(p =>
                (Getter(p), DbTypeOf(Nullable.GetUnderlyingType(p.PropertyType) ?? p.PropertyType)))]);
        }

        /// <summary>A compiled getter: PropertyInfo.GetValue goes through reflection on every call.</summary>
        private static Func<object, object?> Getter(System.Reflection.PropertyInfo property)
        {
            var target = System.Linq.Expressions.Expression.Parameter(typeof(object));
            var value = System.Linq.Expressions.Expression.Property(System.Linq.Expressions.Expression.Convert(target, property.DeclaringType!), property);
            return System.Linq.Expressions.Expression.Lambda<Func<object, object?>>(
                System.Linq.Expressions.Expression.Convert(value, typeof(object)), target).Compile();
        }

        private static bool IsNameStart(char c) => char.IsAsciiLetter(c) || c == '_';

        private static bool IsNamePart(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';
    }

    private static NpgsqlDbType? DbTypeOf(Type type) =>
        type == typeof(string) ? NpgsqlDbType.Text
        : type == typeof(long) ? NpgsqlDbType.Bigint
        : type == typeof(int) ? NpgsqlDbType.Integer
        : type == typeof(bool) ? NpgsqlDbType.Boolean
        : type == typeof(string[]) ? NpgsqlDbType.Array | NpgsqlDbType.Text
        : type == typeof(long[]) || type == typeof(long?[]) ? NpgsqlDbType.Array | NpgsqlDbType.Bigint
        : type == typeof(int[]) || type == typeof(int?[]) ? NpgsqlDbType.Array | NpgsqlDbType.Integer
        : null;
}
