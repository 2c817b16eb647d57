using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using OrdersApi;
using OrdersApi.Health;
using OrdersApi.Lifecycle;
using OrdersApi.Orders;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

// Container health check mode: `dotnet /app/OrdersApi.dll --healthcheck <url>` GETs the URL
// (3 s timeout) and exits 0 on 2xx, else 1, without building the web host. The chiseled image
// has no shell or curl, so this is what the ECS container health check runs.
if (HealthProbe.IsRequested(args))
{
    return await HealthProbe.RunAsync(args, Console.Error);
}

try
{
    var builder = WebApplication.CreateBuilder(args);

    // Logs: one JSON object per line on stdout (the awslogs driver ships it to CloudWatch
    // Logs, /ecs/<env>/<service>). Levels come from the "Serilog" configuration section.
    builder.Services.AddSerilog(
        (services, logger) => logger
            .ReadFrom.Configuration(builder.Configuration)
            .ReadFrom.Services(services)
            .Enrich.FromLogContext()
            .Enrich.WithProperty("Application", builder.Environment.ApplicationName)
            .WriteTo.Console(new RenderedCompactJsonFormatter()),
        preserveStaticLogger: true);

    // Graceful shutdown. ECS sends SIGTERM, waits the container's stopTimeout (30 s by
    // default), then SIGKILL. On SIGTERM: readiness turns Unhealthy at once, the drain delay
    // lets the load balancer notice while requests are still served, then Kestrel stops
    // accepting and finishes in-flight requests, all within Shutdown:Timeout.
    builder.Services.AddOptions<ShutdownOptions>()
        .BindConfiguration(ShutdownOptions.Section)
        .Validate(
            options => options.DrainDelay >= TimeSpan.Zero && options.DrainDelay < options.Timeout,
            "Shutdown:DrainDelay must be zero or more and shorter than Shutdown:Timeout")
        .ValidateOnStart();
    builder.Services.AddOptions<HostOptions>()
        .Configure<IOptions<ShutdownOptions>>((host, shutdown) => host.ShutdownTimeout = shutdown.Value.Timeout);
    builder.Services.AddHostedService<ShutdownDrainService>();

    // The orders database: its connection string arrives as the ConnectionStrings__Orders
    // environment variable (an ECS secret from Secrets Manager); the service refuses to start
    // without a usable one.
    builder.Services.AddOptions<OrdersDatabaseOptions>()
        .Configure<IConfiguration>((options, configuration) =>
        {
            configuration.GetSection(OrdersDatabaseOptions.Section).Bind(options);
            options.ConnectionString = configuration.GetConnectionString("Orders");
        })
        .Validate(
            options => DatabaseEndpoint.TryParse(options.ConnectionString, out _),
            "ConnectionStrings:Orders must be a connection string with a Host (set the ConnectionStrings__Orders environment variable)")
        .Validate(
            options => options.ConnectTimeout > TimeSpan.Zero,
            "OrdersDatabase:ConnectTimeout must be positive")
        .ValidateOnStart();

    builder.Services.AddSingleton<IOrderStore, InMemoryOrderStore>();

    builder.Services.AddHealthChecks()
        .AddCheck<ShutdownReadinessCheck>("accepting-traffic", tags: [HealthTags.Ready])
        .AddCheck<OrdersDatabaseHealthCheck>("orders-database", tags: [HealthTags.Ready]);

    var app = builder.Build();

    app.UseSerilogRequestLogging(options =>
    {
        options.GetLevel = (http, _, exception) =>
            exception is not null ? LogEventLevel.Error
            : http.Request.Path.StartsWithSegments("/health") ? LogEventLevel.Verbose
            : http.Response.StatusCode >= 500 ? LogEventLevel.Error
            : LogEventLevel.Information;
    });

    app.Lifetime.ApplicationStarted.Register(
        () => app.Logger.LogInformation("Started, listening on {Urls}", string.Join(", ", app.Urls)));
    app.Lifetime.ApplicationStopping.Register(
        () => app.Logger.LogInformation("Stop requested (SIGTERM): readiness now reports Unhealthy"));
    app.Lifetime.ApplicationStopped.Register(
        () => app.Logger.LogInformation("Stopped"));

    app.MapOrderEndpoints();

    // Liveness: the process is up and answers HTTP. No dependency is checked, so a database
    // outage makes tasks unready (no traffic) but never gets them killed and replaced.
    app.MapHealthChecks("/health/live", new HealthCheckOptions
    {
        Predicate = _ => false,
        ResponseWriter = HealthResponseWriter.WriteAsync,
    });

    // Readiness: the task should receive traffic (not shutting down, database reachable).
    // The load balancer's target-group health check and the deploy smoke test use it.
    app.MapHealthChecks("/health/ready", new HealthCheckOptions
    {
        Predicate = registration => registration.Tags.Contains(HealthTags.Ready),
        ResponseWriter = HealthResponseWriter.WriteAsync,
    });

    await app.RunAsync();
    return 0;
}
catch (Exception exception) when (exception is not HostAbortedException)
{
    // The host's logger may not exist yet (bad configuration): log the reason as JSON anyway.
    using var startupLogger = new LoggerConfiguration()
        .WriteTo.Console(new RenderedCompactJsonFormatter())
        .CreateLogger();
    startupLogger.Fatal(exception, "Host terminated unexpectedly");
    return 1;
}

// Visible to the tests' WebApplicationFactory<Program>.
public partial class Program
{
}
