using ModelRoute.Server.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddModelRoute();

var app = builder.Build();
if (!app.TryValidateModelRouteConfiguration(Console.Error))
{
    return 1;
}

app.MapModelRoute();
app.Run();
return 0;
