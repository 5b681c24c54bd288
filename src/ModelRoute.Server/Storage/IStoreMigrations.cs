namespace ModelRoute.Server.Storage;

/// <summary>A store's schema: brings the database up to date before any worker uses it.</summary>
public interface IStoreMigrations
{
    Task MigrateAsync(CancellationToken cancellationToken);
}
