using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace OrdersApi.Health;

/// <summary>
/// Readiness: can this task reach the orders database? A TCP connect under a timeout: cheap
/// enough for every load-balancer probe, and it fails for a wrong endpoint, a security group
/// that does not admit the task, a DNS name that does not resolve, or a database that is down.
/// The response says only what failed; the endpoint itself goes to the log, not to callers.
/// </summary>
public sealed class OrdersDatabaseHealthCheck(
    IOptions<OrdersDatabaseOptions> options,
    ILogger<OrdersDatabaseHealthCheck> logger) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(
        HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var settings = options.Value;
        if (!DatabaseEndpoint.TryParse(settings.ConnectionString, out var endpoint))
        {
            return new HealthCheckResult(
                context.Registration.FailureStatus, "no usable orders database connection string");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.ConnectTimeout);
        using var client = new TcpClient();
        var started = Stopwatch.GetTimestamp();
        try
        {
            await client.ConnectAsync(endpoint.Host, endpoint.Port, timeout.Token);
            var elapsed = Stopwatch.GetElapsedTime(started);
            return HealthCheckResult.Healthy($"reachable in {elapsed.TotalMilliseconds:F0} ms");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(
                "Orders database {Host}:{Port} did not accept a connection within {Timeout}",
                endpoint.Host, endpoint.Port, settings.ConnectTimeout);
            return new HealthCheckResult(
                context.Registration.FailureStatus,
                $"no connection within {settings.ConnectTimeout.TotalMilliseconds:F0} ms");
        }
        catch (SocketException exception)
        {
            logger.LogWarning(
                exception, "Orders database {Host}:{Port} is unreachable ({SocketError})",
                endpoint.Host, endpoint.Port, exception.SocketErrorCode);
            return new HealthCheckResult(
                context.Registration.FailureStatus, $"unreachable ({exception.SocketErrorCode})");
        }
    }
}
