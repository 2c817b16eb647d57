namespace OrdersApi.Orders;

public sealed record Order(
    long Id,
    string CustomerId,
    string Status,
    decimal Total,
    string Currency,
    DateTimeOffset PlacedAt);
