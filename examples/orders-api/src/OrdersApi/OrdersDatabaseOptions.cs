namespace OrdersApi;

/// <summary>Where the orders database is and how long a readiness probe may wait for it.</summary>
public sealed class OrdersDatabaseOptions
{
    public const string Section = "OrdersDatabase";

    /// <summary>From <c>ConnectionStrings:Orders</c> (Npgsql keys: Host, Port, Database...).</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The readiness probe's TCP connect timeout; keep it below the load balancer's
    /// health-check timeout.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);
}
