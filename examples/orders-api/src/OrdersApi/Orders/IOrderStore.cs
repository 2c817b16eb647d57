namespace OrdersApi.Orders;

public interface IOrderStore
{
    ValueTask<Order?> FindAsync(long id, CancellationToken cancellationToken);
}
