using System.Reflection;

namespace ModelRoute.Server.Storage;

/// <summary>
/// The numbered schema migrations embedded for an engine (Storage/&lt;engine&gt;/Migrations/NNNN_name.sql), in order.
/// Each database applies them its own way (<see cref="IStoreMigrations"/>).
/// </summary>
internal static class EmbeddedMigrations
{
    /// <param name="engine">The folder under Storage: <c>Sqlite</c> or <c>Postgres</c>.</param>
    public static IEnumerable<(long Version, string Name, string Sql)> Load(string engine)
    {
        var assembly = Assembly.GetExecutingAssembly();
        var prefix = $"ModelRoute.Server.Storage.{engine}.Migrations.";
        foreach (var resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var name = resource[prefix.Length..];
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            yield return (long.Parse(name[..name.IndexOf('_', StringComparison.Ordinal)], CultureInfo.InvariantCulture), name, reader.ReadToEnd());
        }
    }
}
