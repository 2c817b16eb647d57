using OrdersApi.Health;

namespace OrdersApi.Tests;

public sealed class DatabaseEndpointTests
{
    [Theory]
    [InlineData("Host=db.internal;Port=6432;Database=orders", "db.internal", 6432)]
    [InlineData("Server=db.internal;Database=orders", "db.internal", 5432)]
    [InlineData("host=db-a,db-b;port=5433", "db-a", 5433)]
    [InlineData("Host=db.internal:7000;Database=orders", "db.internal", 7000)]
    public void Reads_host_and_port(string connectionString, string host, int port)
    {
        Assert.True(DatabaseEndpoint.TryParse(connectionString, out var endpoint));
        Assert.Equal(new DatabaseEndpoint(host, port), endpoint);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("Database=orders;Username=orders")]
    [InlineData("Host=db.internal;Port=not-a-port")]
    [InlineData("Host=db.internal;Port=70000")]
    public void Refuses_a_connection_string_without_a_usable_endpoint(string? connectionString)
    {
        Assert.False(DatabaseEndpoint.TryParse(connectionString, out var endpoint));
        Assert.Null(endpoint);
    }
}
