using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OrdersApi.Health;

namespace OrdersApi.Tests;

public sealed class ReadinessCheckTests
{
    [Fact]
    public async Task Database_check_is_healthy_when_the_endpoint_accepts_connections()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            var result = await CheckDatabase($"Host=127.0.0.1;Port={Ports.Of(listener)}");
            Assert.Equal(HealthStatus.Healthy, result.Status);
        }
        finally
        {
            listener.Stop();
        }
    }

    [Fact]
    public async Task Database_check_is_unhealthy_when_nothing_listens()
    {
        var result = await CheckDatabase($"Host=127.0.0.1;Port={Ports.Closed()}");
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
        Assert.StartsWith("unreachable", result.Description);
        Assert.DoesNotContain("127.0.0.1", result.Description); // endpoints stay in the log
    }

    [Fact]
    public async Task Database_check_is_unhealthy_without_a_connection_string()
    {
        var result = await CheckDatabase(null);
        Assert.Equal(HealthStatus.Unhealthy, result.Status);
    }

    [Fact]
    public async Task Shutdown_check_turns_unhealthy_once_stopping_begins()
    {
        var lifetime = new FakeLifetime();
        var check = new ShutdownReadinessCheck(lifetime);

        Assert.Equal(HealthStatus.Healthy, (await check.CheckHealthAsync(Context(check))).Status);
        lifetime.StopApplication();
        Assert.Equal(HealthStatus.Unhealthy, (await check.CheckHealthAsync(Context(check))).Status);
    }

    private static Task<HealthCheckResult> CheckDatabase(string? connectionString)
    {
        var check = new OrdersDatabaseHealthCheck(
            Options.Create(new OrdersDatabaseOptions
            {
                ConnectionString = connectionString,
                ConnectTimeout = TimeSpan.FromSeconds(5),
            }),
            NullLogger<OrdersDatabaseHealthCheck>.Instance);
        return check.CheckHealthAsync(Context(check));
    }

    private static HealthCheckContext Context(IHealthCheck check) => new()
    {
        Registration = new HealthCheckRegistration("under-test", check, HealthStatus.Unhealthy, null),
    };

    private sealed class FakeLifetime : IHostApplicationLifetime
    {
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => _stopping.Token;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public void StopApplication() => _stopping.Cancel();
    }
}
