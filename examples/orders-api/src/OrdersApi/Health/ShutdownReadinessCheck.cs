using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OrdersApi.Health;

/// <summary>Unhealthy from the moment the host starts stopping (SIGTERM), so the load
/// balancer stops routing new requests to this task while it drains.</summary>
public sealed class ShutdownReadinessCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(
        HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lifetime.ApplicationStopping.IsCancellationRequested
            ? new HealthCheckResult(context.Registration.FailureStatus, "shutting down")
            : HealthCheckResult.Healthy("accepting traffic"));
}
