using Microsoft.Extensions.Options;

namespace OrdersApi.Lifecycle;

/// <summary>
/// Waits <see cref="ShutdownOptions.DrainDelay"/> in <c>StoppingAsync</c>: the host runs it
/// after ApplicationStopping has fired (readiness is already Unhealthy) and before any
/// hosted service stops, so Kestrel keeps serving during the delay.
/// </summary>
public sealed class ShutdownDrainService(
    IOptions<ShutdownOptions> options,
    ILogger<ShutdownDrainService> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var delay = options.Value.DrainDelay;
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        logger.LogInformation("Draining for {DrainDelay} before the server stops accepting requests", delay);
        try
        {
            await Task.Delay(delay, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            logger.LogWarning("Drain cut short: the shutdown timeout expired");
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
