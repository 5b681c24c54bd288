using ModelRoute.Server.Storage.Postgres;
using Npgsql;
using NpgsqlTypes;

namespace ModelRoute.Tests.Storage;

/// <summary>
/// Grouped PostgreSQL statements are written with Dapper-style <c>@Name</c> placeholders and sent
/// positionally: the rewrite must keep literals, reuse one position per name and bind each value once.
/// </summary>
public sealed class PostgresStatementTests
{
    [Fact]
    public void Placeholders_become_positions_in_order_of_first_use_and_repeat_their_position()
    {
        var command = PostgresDatabase.Statement(
            "UPDATE t SET a = @Now, b = @id::text WHERE c = @now AND d = ANY(@From)",
            new { Id = "exe_1", Now = 42L, From = new[] { "PENDING" }, Unused = 7 });

        Assert.Equal("UPDATE t SET a = $1, b = $2::text WHERE c = $1 AND d = ANY($3)", command.CommandText);
        Assert.Equal(3, command.Parameters.Count);
        Assert.Equal(42L, command.Parameters[0].Value);
        Assert.Equal(NpgsqlDbType.Bigint, command.Parameters[0].NpgsqlDbType);
        Assert.Equal("exe_1", command.Parameters[1].Value);
        Assert.Equal(new[] { "PENDING" }, command.Parameters[2].Value);
        Assert.All(command.Parameters, p => Assert.Equal(string.Empty, p.ParameterName));
    }

    [Fact]
    public void Literals_and_casts_are_left_alone_and_nulls_are_sent_as_null()
    {
        var command = PostgresDatabase.Statement(
            "SELECT 'mail@example.com', x::bigint, @Value::text, '[]' FROM t WHERE y = 'a''@b' AND z = @Value",
            new { Value = (string?)null });

        Assert.Equal("SELECT 'mail@example.com', x::bigint, $1::text, '[]' FROM t WHERE y = 'a''@b' AND z = $1", command.CommandText);
        Assert.Equal(DBNull.Value, Assert.Single(command.Parameters).Value);
    }

    [Fact]
    public void A_placeholder_without_a_property_is_refused()
    {
        Assert.Throws<ArgumentException>(() => PostgresDatabase.Statement("SELECT @Missing", new { Present = 1 }));
    }

    [Theory]
    [InlineData("Host=h;Database=d", true)]
    [InlineData("Host=h;Database=d;No Reset On Close=false", false)]
    public void Pooled_connections_are_not_reset_unless_the_connection_string_asks(string given, bool expected)
    {
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(PostgresDatabase.WithDefaults(given)).NoResetOnClose);
    }
}
