using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;
using ModelRoute.Server.Accounts;
using ModelRoute.Server.Hosting;

namespace ModelRoute.Tests.Hosting;

/// <summary>
/// The gateway's services resolve on both stores. Registrations made with factories hide cycles from the container,
/// which then does not throw but recurses across threads and hangs the start (the store health watcher once needed the
/// account store, which needed the notifier, which needed the watcher).
/// </summary>
public sealed class ServiceGraphTests
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Every_service_the_gateway_starts_resolves_without_a_cycle(string store)
    {
        var directory = Directory.CreateTempSubdirectory("modelroute-graph-");
        try
        {
            var builder = WebApplication.CreateBuilder();
            builder.Configuration["ModelRoute:DataDirectory"] = directory.FullName;
            builder.Configuration["ModelRoute:Store:Kind"] = store;
            if (store == "postgres")
            {
                // Never opened: resolving builds data sources but connects to nothing.
                builder.Configuration["ModelRoute:Store:ConnectionString"] = "Host=127.0.0.1;Port=1;Username=nobody;Database=none";
            }

            builder.AddModelRoute();
            await using var app = builder.Build();
            var resolving = Task.Run(() =>
            {
                _ = app.Services.GetServices<IHostedService>().ToList();
                _ = app.Services.GetRequiredService<IExecutionStore>();
                _ = app.Services.GetRequiredService<IAccountStore>();
                _ = app.Services.GetRequiredService<IStoreHealth>();
                _ = app.Services.GetRequiredService<ApiKeyCache>();
            });

            (await Task.WhenAny(resolving, Task.Delay(TimeSpan.FromSeconds(30)))).ShouldBe(resolving, "resolving the services hung: a dependency cycle");
            await resolving;
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
