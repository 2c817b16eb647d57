using Microsoft.AspNetCore.Http.HttpResults;

namespace OrdersApi.Orders;

public static class OrderEndpoints
{
    public static IEndpointRouteBuilder MapOrderEndpoints(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/orders/{id:long:min(1)}", GetOrderAsync).WithName("GetOrder");
        return routes;
    }

    internal static async Task<Results<Ok<Order>, NotFound>> GetOrderAsync(
        long id, IOrderStore store, CancellationToken cancellationToken)
    {
        var order = await store.FindAsync(id, cancellationToken);
        return order is null ? TypedResults.NotFound() : TypedResults.Ok(order);
    }
}
