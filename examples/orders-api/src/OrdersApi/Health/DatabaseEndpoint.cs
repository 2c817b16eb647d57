using System.Data.Common;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace OrdersApi.Health;

/// <summary>The host and port of a database, read from an ADO.NET connection string.</summary>
public sealed record DatabaseEndpoint(string Host, int Port)
{
    public const int DefaultPort = 5432;

    private static readonly string[] HostKeys = ["Host", "Server", "Data Source"];

    public static bool TryParse(string? connectionString, [NotNullWhen(true)] out DatabaseEndpoint? endpoint)
    {
        endpoint = null;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return false;
        }

        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = connectionString;
        }
        catch (ArgumentException)
        {
            return false;
        }

        string? host = null;
        foreach (var key in HostKeys)
        {
            if (builder.TryGetValue(key, out var value) && Convert.ToString(value, CultureInfo.InvariantCulture) is { Length: > 0 } text)
            {
                host = text;
                break;
            }
        }

        if (host is null)
        {
            return false;
        }

        // Npgsql accepts several hosts ("db-a,db-b"): probe the first, the primary.
        host = host.Split(',', 2)[0].Trim();

        var port = DefaultPort;
        if (builder.TryGetValue("Port", out var portValue)
            && !TryParsePort(Convert.ToString(portValue, CultureInfo.InvariantCulture), out port))
        {
            return false;
        }

        // "host:port" in the Host value (one colon only, so IPv6 literals are left alone).
        var colon = host.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && colon == host.LastIndexOf(':') && TryParsePort(host[(colon + 1)..], out var inlinePort))
        {
            port = inlinePort;
            host = host[..colon];
        }

        if (host.Length == 0)
        {
            return false;
        }

        endpoint = new DatabaseEndpoint(host, port);
        return true;
    }

    private static bool TryParsePort(string? text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port)
        && port is >= 1 and <= 65535;
}
