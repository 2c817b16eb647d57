namespace OrdersApi.Health;

/// <summary>
/// The container health check's client mode: <c>dotnet /app/OrdersApi.dll --healthcheck URL</c>.
/// The chiseled runtime image has no shell, curl or wget, so the ECS container health check
/// (exec form, <c>["CMD", "dotnet", "/app/OrdersApi.dll", "--healthcheck", URL]</c>) runs the
/// app itself in this mode: one HTTP GET with a 3 s timeout, exit code 0 for a 2xx answer and
/// 1 for anything else (another status, no answer, timeout, a bad URL). The web host is never
/// built: the probe binds no port and needs none of the service's configuration.
/// </summary>
public static class HealthProbe
{
    public const string Flag = "--healthcheck";

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    /// <summary>True when the process was started as a health probe.</summary>
    public static bool IsRequested(string[] args) => args.Contains(Flag, StringComparer.Ordinal);

    /// <summary>Runs the probe described by <paramref name="args"/> and returns the exit code.</summary>
    public static async Task<int> RunAsync(
        string[] args, TextWriter error, HttpMessageHandler? handler = null)
    {
        var index = Array.IndexOf(args, Flag);
        if (index < 0 || index + 1 >= args.Length
            || !Uri.TryCreate(args[index + 1], UriKind.Absolute, out var url)
            || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            await error.WriteLineAsync(
                $"usage: dotnet OrdersApi.dll {Flag} http://localhost:8080/health/live");
            return 1;
        }

        using var client = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        client.Timeout = Timeout;
        try
        {
            using var response = await client.GetAsync(url, HttpCompletionOption.ResponseHeadersRead);
            if (response.IsSuccessStatusCode)
            {
                return 0;
            }

            await error.WriteLineAsync($"health check {url}: HTTP {(int)response.StatusCode}");
            return 1;
        }
        catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException)
        {
            await error.WriteLineAsync($"health check {url}: {exception.GetType().Name}: {exception.Message}");
            return 1;
        }
    }
}
