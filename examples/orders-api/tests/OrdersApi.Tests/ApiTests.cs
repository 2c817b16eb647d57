using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;

namespace OrdersApi.Tests;

public sealed class ApiTests : IDisposable
{
    // Stands in for the orders database: the readiness check only needs a TCP accept.
    private readonly TcpListener _database = new(IPAddress.Loopback, 0);

    public ApiTests() => _database.Start();

    public void Dispose() => _database.Stop();

    [Fact]
    public async Task Get_order_returns_the_order_and_404_for_an_unknown_id()
    {
        await using var factory = Factory($"Host=127.0.0.1;Port={Ports.Of(_database)}");
        using var client = factory.CreateClient();

        var order = await client.GetFromJsonAsync<JsonElement>("/orders/1001");
        Assert.Equal(1001, order.GetProperty("id").GetInt64());
        Assert.Equal("Shipped", order.GetProperty("status").GetString());

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/orders/424242")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/orders/not-a-number")).StatusCode);
    }

    [Fact]
    public async Task Readiness_reports_the_database_and_liveness_does_not_depend_on_it()
    {
        await using var up = Factory($"Host=127.0.0.1;Port={Ports.Of(_database)}");
        using var upClient = up.CreateClient();
        var ready = await upClient.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await CheckStatus(ready, "orders-database"));

        await using var down = Factory($"Host=127.0.0.1;Port={Ports.Closed()}");
        using var downClient = down.CreateClient();
        var notReady = await downClient.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Equal("Unhealthy", await CheckStatus(notReady, "orders-database"));
        Assert.Equal(HttpStatusCode.OK, (await downClient.GetAsync("/health/live")).StatusCode);
    }

    private static WebApplicationFactory<Program> Factory(string connectionString) =>
        new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
            builder.ConfigureAppConfiguration((_, configuration) =>
                configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["ConnectionStrings:Orders"] = connectionString,
                    ["Shutdown:DrainDelay"] = "00:00:00",
                })));

    private static async Task<string?> CheckStatus(HttpResponseMessage response, string check)
    {
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return body.RootElement.GetProperty("checks").GetProperty(check).GetProperty("status").GetString();
    }
}
