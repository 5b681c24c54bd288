// Settings are read once at start: reloading on change watches the content root, and with it every
// write to a SQLite file below it, which cost the writer about 3 % of its time in inotify events.
var builder = WebApplication.CreateBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
builder.AddModelRoute();

var app = builder.Build();
if (!app.TryValidateModelRouteConfiguration(Console.Error))
{
    return 1;
}

app.MapModelRoute();
app.Run();
return 0;
