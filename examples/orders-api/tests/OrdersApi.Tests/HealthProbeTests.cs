using System.Net;
using OrdersApi.Health;

namespace OrdersApi.Tests;

public sealed class HealthProbeTests
{
    private const string Url = "http://localhost:8080/health/live";

    [Theory]
    [InlineData(HttpStatusCode.OK, 0)]
    [InlineData(HttpStatusCode.NoContent, 0)]
    [InlineData(HttpStatusCode.Redirect, 1)]
    [InlineData(HttpStatusCode.ServiceUnavailable, 1)]
    [InlineData(HttpStatusCode.InternalServerError, 1)]
    public async Task Exit_code_is_zero_only_for_a_2xx_answer(HttpStatusCode status, int expected)
    {
        var handler = new StubHandler(_ => new HttpResponseMessage(status));
        var exitCode = await HealthProbe.RunAsync([HealthProbe.Flag, Url], TextWriter.Null, handler);
        Assert.Equal(expected, exitCode);
        Assert.Equal(new Uri(Url), handler.LastRequest?.RequestUri);
        Assert.Equal(HttpMethod.Get, handler.LastRequest?.Method);
    }

    [Fact]
    public async Task Connection_failure_is_unhealthy()
    {
        var handler = new StubHandler(_ => throw new HttpRequestException("connection refused"));
        var error = new StringWriter();
        Assert.Equal(1, await HealthProbe.RunAsync([HealthProbe.Flag, Url], error, handler));
        Assert.Contains("connection refused", error.ToString());
    }

    [Theory]
    [InlineData("")] // the flag without a URL
    [InlineData("not a url")]
    [InlineData("file:///etc/passwd")]
    public async Task Missing_or_bad_url_is_unhealthy_with_a_usage_line(string url)
    {
        string[] args = url.Length == 0 ? [HealthProbe.Flag] : [HealthProbe.Flag, url];
        var handler = new StubHandler(_ => new HttpResponseMessage(HttpStatusCode.OK));
        var error = new StringWriter();
        Assert.Equal(1, await HealthProbe.RunAsync(args, error, handler));
        Assert.StartsWith("usage:", error.ToString());
        Assert.Null(handler.LastRequest);
    }

    [Fact]
    public void Only_the_flag_selects_probe_mode()
    {
        Assert.True(HealthProbe.IsRequested(["--healthcheck", Url]));
        Assert.False(HealthProbe.IsRequested(["--urls", Url]));
        Assert.False(HealthProbe.IsRequested([]));
    }

    private sealed class StubHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
    {
        public HttpRequestMessage? LastRequest { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(
            HttpRequestMessage request, CancellationToken cancellationToken)
        {
            LastRequest = request;
            return Task.FromResult(respond(request));
        }
    }
}
