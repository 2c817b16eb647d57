namespace OrdersApi.Orders;

/// <summary>
/// Sample data, so the sample runs without a schema. A real service implements
/// <see cref="IOrderStore"/> against the orders database that the readiness check probes.
/// </summary>
public sealed class InMemoryOrderStore : IOrderStore
{
    private static readonly Dictionary<long, Order> SampleOrders = new[]
    {
        new Order(1001, "cust-42", "Shipped", 129.90m, "EUR", new DateTimeOffset(2025, 11, 3, 9, 15, 0, TimeSpan.Zero)),
        new Order(1002, "cust-7", "Pending", 18.50m, "EUR", new DateTimeOffset(2025, 11, 4, 17, 2, 0, TimeSpan.Zero)),
    }.ToDictionary(order => order.Id);

    public ValueTask<Order?> FindAsync(long id, CancellationToken cancellationToken) =>
        ValueTask.FromResult<Order?>(SampleOrders.GetValueOrDefault(id));
}
