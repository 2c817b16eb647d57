using System.Net;
using System.Net.Sockets;

namespace OrdersApi.Tests;

internal static class Ports
{
    public static int Of(TcpListener listener) => ((IPEndPoint)listener.LocalEndpoint).Port;

    /// <summary>A loopback port that was free a moment ago and has nothing listening.</summary>
    public static int Closed()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = Of(listener);
        listener.Stop();
        return port;
    }
}
