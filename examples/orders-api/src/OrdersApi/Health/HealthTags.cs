namespace OrdersApi.Health;

public static class HealthTags
{
    /// <summary>Checks that decide whether the task should receive traffic.</summary>
    public const string Ready = "ready";
}
