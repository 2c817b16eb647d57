namespace OrdersApi.Lifecycle;

public sealed class ShutdownOptions
{
    public const string Section = "Shutdown";

    /// <summary>How long the server keeps serving after SIGTERM while readiness already
    /// reports Unhealthy, so the load balancer stops sending new requests first.</summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>HostOptions.ShutdownTimeout: drain plus in-flight requests. Keep it below the
    /// ECS container stopTimeout (30 s by default), after which ECS sends SIGKILL.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(25);
}
