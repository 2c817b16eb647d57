using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace OrdersApi.Health;

/// <summary>A small JSON body for the health endpoints: overall status plus each check's
/// status, description and duration (no exception details, no endpoints).</summary>
public static class HealthResponseWriter
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        var body = new
        {
            status = report.Status.ToString(),
            totalDurationMs = Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            checks = report.Entries.ToDictionary(
                entry => entry.Key,
                entry => new
                {
                    status = entry.Value.Status.ToString(),
                    description = entry.Value.Description,
                    durationMs = Math.Round(entry.Value.Duration.TotalMilliseconds, 1),
                }),
        };
        return context.Response.WriteAsJsonAsync(body, context.RequestAborted);
    }
}
