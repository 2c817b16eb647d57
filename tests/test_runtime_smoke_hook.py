"""The smoke-test hook Lambda, for real: a local HTTP(S) server, botocore's Stubber for CodeDeploy.

moto 5.2.5's CodeDeploy backend has no PutLifecycleEventHookExecutionStatus, so the report is
verified with ``botocore.stub.Stubber`` and its exact expected parameters. Also covers the
hook's IAM documents (components/render/iam_hooks.py).
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import ipaddress
import json
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from components.render import iam_hooks
from components.render.iam import PolicyError, actions_of
from components.runtime import smoke_hook as sh

DEPLOYMENT_ID = "d-ABCDEF123"
HOOK_ID = "hook-exec-0001"
CODEDEPLOY_EVENT = {"DeploymentId": DEPLOYMENT_ID, "LifecycleEventHookExecutionId": HOOK_ID}
SERVICE = "arn:aws:ecs:eu-west-1:123456789012:service/prod/orders"
GREEN = "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/orders/9313423515462893900"
BLUE = "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/orders/1920498462936580504"


def ecs_event(stage: str = "POST_TEST_TRAFFIC_SHIFT", **extra: Any) -> dict[str, Any]:
    """The payload shape of the ECS developer guide (lambda-lifecycle-hooks)."""
    event: dict[str, Any] = {
        "executionId": "3a0345ba-b029-404b-890d-7da2a4b266aa",
        "lifecycleStage": stage,
        "resourceArn": "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/orders/EZe5",
        "executionDetails": {
            "serviceArn": SERVICE,
            "targetServiceRevisionArn": GREEN,
            "testTrafficWeights": {},
            "productionTrafficWeights": {},
        },
    }
    event.update(extra)
    return event


# --------------------------------------------------------------------------- fixtures


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps (or a fake request)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class QuickStopHTTPServer(HTTPServer):
    """Polls for shutdown every 10 ms instead of werkzeug's 0.5 s, so stop() is near-instant."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.01)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[HTTPServer]:
    server = QuickStopHTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def server(plain_server: HTTPServer) -> Iterator[HTTPServer]:
    plain_server.clear()
    yield plain_server
    plain_server.clear()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def logs() -> list[dict[str, Any]]:
    return []


def base(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def requests_to(server: HTTPServer, path: str) -> int:
    return sum(1 for request, _ in server.log if request.path == path)


@functools.cache
def _botocore_session() -> botocore.session.Session:
    """One session for the module: it only caches loaded service models; clients stay fresh."""
    return botocore.session.get_session()


def stubbed_codedeploy() -> tuple[Any, Stubber]:
    client = _botocore_session().create_client(
        "codedeploy",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client, Stubber(client)


def expect_report(stubber: Stubber, status: str) -> None:
    stubber.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": HOOK_ID},
        expected_params={
            "deploymentId": DEPLOYMENT_ID,
            "lifecycleEventHookExecutionId": HOOK_ID,
            "status": status,
        },
    )


def no_client() -> Any:
    raise AssertionError("the CodeDeploy client must not be used here")


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def check(
    url: str, clock: FakeClock, logs: list[dict[str, Any]], **overrides: Any
) -> list[sh.CheckResult]:
    kwargs: dict[str, Any] = {
        "expected_status": 200,
        "timeout": 10.0,
        "attempts": 3,
        "delay": 2.0,
        "sleep": clock.sleep,
        "clock": clock,
        "log": logs.append,
    }
    kwargs.update(overrides)
    paths = kwargs.pop("paths", ["/health/ready"])
    return sh.check_paths(url, paths, **kwargs)


# --------------------------------------------------------------------------- check_paths


def test_healthy_path_passes_on_first_attempt(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready", method="GET").respond_with_data("ready")
    [result] = check(base(server), clock, logs)
    assert (result.ok, result.status, result.error, result.attempts) == (True, 200, None, 1)
    assert result.history == ("200",)
    assert clock.sleeps == []
    assert sh.decide([result]) is True
    assert logs == [result.to_log()]
    assert logs[0]["event"] == "smoke.check" and logs[0]["path"] == "/health/ready"


def test_5xx_is_retried_with_exponential_backoff_then_fails(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("down", status=503)
    [result] = check(base(server), clock, logs)
    assert not result.ok
    assert (result.status, result.attempts) == (503, 3)
    assert result.error == "status 503, expected 200"
    assert result.history == ("503", "503", "503")
    assert clock.sleeps == [2.0, 4.0]  # no sleep after the last attempt
    assert requests_to(server, "/health/ready") == 3
    assert sh.decide([result]) is False


def test_recovers_when_a_later_attempt_succeeds(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_ordered_request("/health/ready").respond_with_data("", status=502)
    server.expect_ordered_request("/health/ready").respond_with_data("", status=503)
    server.expect_ordered_request("/health/ready").respond_with_data("ok")
    [result] = check(base(server), clock, logs)
    assert (result.ok, result.attempts, result.history) == (True, 3, ("502", "503", "200"))
    assert clock.sleeps == [2.0, 4.0]


def test_slow_response_times_out(server: HTTPServer, logs: list[dict[str, Any]]) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.6)
        return Response("late")

    server.expect_request("/health/ready").respond_with_handler(slow)
    sleeps: list[float] = []
    results = sh.check_paths(
        base(server),
        ["/health/ready"],
        expected_status=200,
        timeout=0.2,
        attempts=2,
        delay=0.5,
        sleep=sleeps.append,
        log=logs.append,
    )
    [result] = results
    assert not result.ok and result.status is None
    assert result.error == "timeout after 0.2s"
    assert result.history == ("timeout after 0.2s", "timeout after 0.2s")
    assert sleeps == [0.5]


def test_refused_connection_is_retried_and_named(
    closed_port: int, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    [result] = check(f"http://127.0.0.1:{closed_port}", clock, logs)
    assert not result.ok and result.status is None and result.attempts == 3
    assert result.error is not None and result.error.startswith("ConnectionRefusedError")
    assert clock.sleeps == [2.0, 4.0]


def test_backoff_is_capped(closed_port: int, clock: FakeClock, logs: list[dict[str, Any]]) -> None:
    check(f"http://127.0.0.1:{closed_port}", clock, logs, attempts=5, max_delay=5.0)
    assert clock.sleeps == [2.0, 4.0, 5.0, 5.0]


def test_budget_stops_retries(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=500)
    # A real local server, so the request timeout is generous (10 s: a loaded CI machine must
    # not turn a 500 into a timeout); the fake clock only moves on sleeps.
    # t=0 attempt 1; sleep 10 (10+10 <= 30 left); t=10 attempt 2; a 20 s sleep + 10 s
    # timeout > 20 left.
    [result] = check(base(server), clock, logs, budget=30.0, timeout=10.0, delay=10.0)
    assert (result.attempts, result.budget_exhausted) == (2, True)
    assert clock.sleeps == [10.0]
    assert requests_to(server, "/health/ready") == 2
    assert result.error == "status 500, expected 200"
    assert logs[0]["budget_exhausted"] is True


def test_budget_is_shared_by_all_paths(clock: FakeClock, logs: list[dict[str, Any]]) -> None:
    opener = TimingOutOpener(clock)  # every request burns its full 2 s timeout
    # /a: t=0..2 attempt, sleep 1, t=3..5 attempt, a 2 s sleep + 2 s timeout > 1 s left.
    first, second = check(
        "http://unused.invalid",
        clock,
        logs,
        paths=["/a", "/b"],
        budget=6.0,
        delay=1.0,
        timeout=2.0,
        opener=opener,
    )
    assert (first.attempts, first.budget_exhausted, first.error) == (2, True, "timeout after 2s")
    assert (second.ok, second.attempts, second.error) == (
        False,
        0,
        "no attempt made: time budget exhausted",
    )
    assert opener.calls == 2 and clock.now == 5.0
    assert sh.decide([first, second]) is False


def test_all_paths_are_checked_and_all_must_pass(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    server.expect_request("/api/ping").respond_with_data("", status=404)
    results = check(base(server), clock, logs, paths=["/health/ready", "/api/ping"], attempts=1)
    assert [(r.path, r.ok, r.status) for r in results] == [
        ("/health/ready", True, 200),
        ("/api/ping", False, 404),
    ]
    assert sh.decide(results) is False
    assert len(logs) == 2


def test_host_header_is_sent(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready", headers={"Host": "api.example.test"}).respond_with_data(
        "ok"
    )
    [with_host] = check(base(server), clock, logs, host_header="api.example.test", attempts=1)
    [without] = check(base(server), clock, logs, attempts=1)
    assert with_host.ok
    assert not without.ok and without.status == 500  # pytest-httpserver: no matching handler


def test_redirects_are_reported_not_followed(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data(
        "", status=302, headers={"Location": "/elsewhere"}
    )
    server.expect_request("/elsewhere").respond_with_data("ok")
    [result] = check(base(server), clock, logs, attempts=1)
    assert (result.ok, result.status) == (False, 302)
    assert requests_to(server, "/elsewhere") == 0


def test_expected_status_other_than_200(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=204)
    [result] = check(base(server), clock, logs, expected_status=204, attempts=1)
    assert result.ok and result.status == 204


def test_decide_needs_at_least_one_passing_check() -> None:
    ok = sh.CheckResult(path="/a", ok=True, status=200, error=None, attempts=1, elapsed=0.0)
    bad = sh.CheckResult(path="/b", ok=False, status=503, error="x", attempts=3, elapsed=1.0)
    assert sh.decide([]) is False
    assert sh.decide([ok, ok]) is True
    assert sh.decide([ok, bad]) is False


class TimingOutOpener:
    """Every request takes the whole timeout (on the fake clock) and times out."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls = 0

    def open(self, fullurl: Any, data: None = None, timeout: float = 0.0) -> Any:
        self.calls += 1
        self.clock.now += timeout
        raise TimeoutError("timed out")


@settings(max_examples=80, deadline=None)
@given(
    paths=st.integers(min_value=1, max_value=3),
    attempts=st.integers(min_value=1, max_value=6),
    timeout=st.floats(min_value=0.1, max_value=10.0),
    delay=st.floats(min_value=0.0, max_value=10.0),
    extra_cap=st.floats(min_value=0.0, max_value=20.0),
    budget=st.none() | st.floats(min_value=0.0, max_value=120.0),
)
def test_run_time_never_exceeds_budget_or_worst_case(
    paths: int,
    attempts: int,
    timeout: float,
    delay: float,
    extra_cap: float,
    budget: float | None,
) -> None:
    clock = FakeClock()
    opener = TimingOutOpener(clock)
    results = sh.check_paths(
        "http://unused.invalid",
        [f"/p{i}" for i in range(paths)],
        expected_status=200,
        timeout=timeout,
        attempts=attempts,
        delay=delay,
        max_delay=delay + extra_cap,
        budget=budget,
        sleep=clock.sleep,
        clock=clock,
        opener=opener,
        log=lambda _: None,
    )
    worst = sh.worst_case_seconds(
        paths=paths, timeout=timeout, attempts=attempts, delay=delay, max_delay=delay + extra_cap
    )
    assert clock.now <= worst + 1e-6
    if budget is not None:
        assert clock.now <= budget + 1e-6
    else:
        assert opener.calls == paths * attempts
    assert all(not r.ok for r in results) and sh.decide(results) is False
    assert all(s <= delay + extra_cap for s in clock.sleeps)


def test_backoff_delay_values() -> None:
    assert [sh.backoff_delay(r, 2.0, 20.0) for r in range(1, 6)] == [2, 4, 8, 16, 20]
    with pytest.raises(ValueError, match="retry: 0"):
        sh.backoff_delay(0, 1.0, 1.0)


# --------------------------------------------------------------------------- TLS


def _cert_pair(tmp: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a leaf certificate for api.example.test (files: ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smoke-test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("api.example.test")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert ipaddress.ip_address("127.0.0.1")  # the server is reached by IP, not by that name
    return ca_path, cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, Path]]:
    ca, cert, key = _cert_pair(tmp_path_factory.mktemp("tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = QuickStopHTTPServer(ssl_context=context, threaded=True)
    server.expect_request("/health/ready").respond_with_data("ok")
    server.start()
    yield server, ca
    server.clear()
    server.stop()


def test_tls_verified_against_host_header_name(
    tls_server: tuple[HTTPServer, Path], clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server, ca = tls_server
    url = f"https://127.0.0.1:{server.port}"
    trusted = sh.tls_context(verify=True, cafile=str(ca))
    # The ALB case: connect to its address, present and verify the production name.
    [sni] = check(
        url,
        clock,
        logs,
        attempts=1,
        host_header="api.example.test",
        opener=sh.make_opener(server_hostname="api.example.test", context=trusted),
    )
    assert sni.ok, sni.error
    # Without the name the certificate does not match the address: refused, not ignored.
    [plain] = check(url, clock, logs, attempts=1, opener=sh.make_opener(context=trusted))
    assert not plain.ok and plain.error is not None and plain.error.startswith("tls error")
    # An untrusted CA is refused too, name or not.
    [untrusted] = check(
        url, clock, logs, attempts=1, opener=sh.make_opener(server_hostname="api.example.test")
    )
    assert not untrusted.ok and untrusted.error is not None
    assert "tls error" in untrusted.error
    # TLS_VERIFY=false: the escape hatch accepts it.
    [unverified] = check(url, clock, logs, attempts=1, opener=sh.make_opener(tls_verify=False))
    assert unverified.ok


# --------------------------------------------------------------------------- configuration


def test_config_defaults() -> None:
    config = sh.SmokeConfig.from_env({"TEST_ENDPOINT": "https://alb-dns:8443/"})
    assert config == sh.SmokeConfig(base_url="https://alb-dns:8443")
    assert config.paths == ("/health/ready",)
    assert (config.expected_status, config.timeout, config.attempts) == (200, 5.0, 3)
    assert (config.delay, config.max_delay, config.tls_verify) == (2.0, 20.0, True)


def test_config_full() -> None:
    config = sh.SmokeConfig.from_env(
        {
            "TEST_ENDPOINT": "https://alb-dns:8443/prefix",
            "SMOKE_PATHS": " /health/ready , /api/ping ,",
            "EXPECTED_STATUS": "204",
            "REQUEST_TIMEOUT_SECONDS": "1.5",
            "MAX_ATTEMPTS": "4",
            "RETRY_DELAY_SECONDS": "1",
            "RETRY_MAX_DELAY_SECONDS": "3",
            "TIME_BUDGET_SECONDS": "40",
            "HOST_HEADER": "api.example.com",
            "TLS_VERIFY": "FALSE",
            "ECS_MAX_INVOCATIONS": "3",
            "ECS_CALLBACK_DELAY_SECONDS": "15",
        }
    )
    assert config.base_url == "https://alb-dns:8443/prefix"
    assert config.paths == ("/health/ready", "/api/ping")
    assert (config.expected_status, config.timeout, config.attempts) == (204, 1.5, 4)
    assert (config.delay, config.max_delay, config.time_budget) == (1.0, 3.0, 40.0)
    assert (config.host_header, config.tls_verify) == ("api.example.com", False)
    assert (config.ecs_max_invocations, config.ecs_callback_delay) == (3, 15)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TEST_ENDPOINT: is not set"),
        ({"TEST_ENDPOINT": "ftp://x"}, "TEST_ENDPOINT: 'ftp://x' is not an http(s) URL"),
        (
            {"TEST_ENDPOINT": "https://user:s3cret@alb:8443"},
            "TEST_ENDPOINT: 'https://alb:8443' contains credentials",
        ),
        (
            {"TEST_ENDPOINT": "https://alb:8443?x=1"},
            "TEST_ENDPOINT: 'https://alb:8443' has a query",
        ),
        ({"TEST_ENDPOINT": "https://alb:99999"}, "TEST_ENDPOINT: 'https://alb' has a bad port"),
        ({"SMOKE_PATHS": "health"}, "SMOKE_PATHS: 'health' is not a path"),
        ({"SMOKE_PATHS": " , "}, "SMOKE_PATHS: ' , ' names no path"),
        ({"SMOKE_PATHS": "/a b"}, "SMOKE_PATHS: '/a b' is not a path"),
        (
            {"EXPECTED_STATUS": "2xx"},
            "EXPECTED_STATUS: '2xx' is not a whole number from 100 to 599",
        ),
        ({"EXPECTED_STATUS": "99"}, "EXPECTED_STATUS: '99' is not a whole number from 100 to 599"),
        ({"REQUEST_TIMEOUT_SECONDS": "0"}, "REQUEST_TIMEOUT_SECONDS: '0' is not a number"),
        ({"REQUEST_TIMEOUT_SECONDS": "nan"}, "REQUEST_TIMEOUT_SECONDS: 'nan' is not a number"),
        ({"MAX_ATTEMPTS": "0"}, "MAX_ATTEMPTS: '0' is not a whole number from 1 to 10"),
        ({"RETRY_DELAY_SECONDS": "-1"}, "RETRY_DELAY_SECONDS: '-1' is not a number"),
        (
            {"RETRY_DELAY_SECONDS": "5", "RETRY_MAX_DELAY_SECONDS": "1"},
            "RETRY_MAX_DELAY_SECONDS: '1' is not a number of seconds from 5 to 300",
        ),
        ({"TIME_BUDGET_SECONDS": "901"}, "TIME_BUDGET_SECONDS: '901' is not a number"),
        ({"HOST_HEADER": "api.example.com\r\nX: y"}, "HOST_HEADER: "),
        ({"TLS_VERIFY": "yes"}, "TLS_VERIFY: 'yes' is not a boolean; use 'true' or 'false'"),
        ({"ECS_MAX_INVOCATIONS": "21"}, "ECS_MAX_INVOCATIONS: '21' is not a whole number"),
    ],
)
def test_config_errors_name_key_value_and_rule(env: dict[str, str], message: str) -> None:
    full = env if "TEST_ENDPOINT" in env or not env else {"TEST_ENDPOINT": "https://a:8443", **env}
    with pytest.raises(sh.ConfigError) as info:
        sh.SmokeConfig.from_env(full)
    assert str(info.value).startswith(message)
    assert "s3cret" not in str(info.value)


def test_time_budget_uses_the_smaller_limit() -> None:
    config = sh.SmokeConfig(base_url="http://x", time_budget=40.0)
    assert sh.time_budget(config, None) == 40.0
    assert sh.time_budget(config, Context(30_000)) == 30.0 - sh.REPORT_RESERVE_SECONDS
    assert sh.time_budget(config, Context(500_000)) == 40.0
    assert sh.time_budget(sh.SmokeConfig(base_url="http://x"), Context(5_000)) == 0.0
    assert sh.time_budget(sh.SmokeConfig(base_url="http://x"), object()) is None


def test_required_lambda_timeout() -> None:
    config = sh.SmokeConfig(base_url="http://x")  # 1 path, 3 x 5 s + sleeps 2 + 4
    assert sh.worst_case_seconds(paths=1, timeout=5, attempts=3, delay=2, max_delay=20) == 21
    assert sh.required_lambda_timeout_seconds(config) == 21 + 10 + 5
    capped = sh.SmokeConfig(base_url="http://x", time_budget=8.0)
    assert sh.required_lambda_timeout_seconds(capped) == 8 + 10 + 5
    huge = sh.SmokeConfig(base_url="http://x", paths=("/a",) * 20, timeout=60, attempts=10)
    assert sh.required_lambda_timeout_seconds(huge) == 900


# --------------------------------------------------------------------------- CodeDeploy path


def env_for(url: str, **extra: str) -> dict[str, str]:
    env = {
        "TEST_ENDPOINT": url,
        "REQUEST_TIMEOUT_SECONDS": "2",
        "MAX_ATTEMPTS": "3",
        "RETRY_DELAY_SECONDS": "1",
    }
    env.update(extra)
    return env


def run_handle(
    event: Any,
    env: Mapping[str, str],
    clock: FakeClock,
    logs: list[dict[str, Any]],
    *,
    client: Any = None,
    context: object | None = None,
    opener: Any = None,
) -> dict[str, Any]:
    factory: Callable[[], Any] = (lambda: client) if client is not None else no_client
    return sh.handle(
        event,
        context,
        env=env,
        codedeploy_client=factory,
        opener=opener,
        sleep=clock.sleep,
        clock=clock,
        log=logs.append,
    )


def test_codedeploy_healthy_reports_succeeded(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Succeeded")
    with stubber:
        answer = run_handle(CODEDEPLOY_EVENT, env_for(base(server)), clock, logs, client=client)
        stubber.assert_no_pending_responses()
    assert answer == {"deploymentId": DEPLOYMENT_ID, "status": "Succeeded", "reported": True}
    assert [r["event"] for r in logs] == [
        "smoke.start",
        "smoke.check",
        "smoke.decision",
        "smoke.report",
    ]


def test_codedeploy_unhealthy_reports_failed_after_retries(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=500)
    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Failed")
    with stubber:
        answer = run_handle(CODEDEPLOY_EVENT, env_for(base(server)), clock, logs, client=client)
        stubber.assert_no_pending_responses()
    assert answer["status"] == "Failed"
    assert requests_to(server, "/health/ready") == 3
    assert clock.sleeps == [1.0, 2.0]


def test_codedeploy_unexpected_exception_still_reports_failed(
    clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    class Exploding:
        def open(self, fullurl: Any, data: None = None, timeout: float = 0.0) -> Any:
            raise RuntimeError("something nobody expected")

    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Failed")
    with stubber:
        answer = run_handle(
            CODEDEPLOY_EVENT, env_for("http://x"), clock, logs, client=client, opener=Exploding()
        )
        stubber.assert_no_pending_responses()
    assert answer["status"] == "Failed"
    decision = next(r for r in logs if r["event"] == "smoke.decision")
    assert decision["error"] == "RuntimeError: something nobody expected"


def test_codedeploy_bad_configuration_reports_failed(
    clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Failed")
    with stubber:
        run_handle(CODEDEPLOY_EVENT, {"MAX_ATTEMPTS": "many"}, clock, logs, client=client)
        stubber.assert_no_pending_responses()
    decision = next(r for r in logs if r["event"] == "smoke.decision")
    assert decision["error"].startswith("ConfigError: TEST_ENDPOINT: is not set")


def test_codedeploy_context_budget_stops_checks(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Failed")
    context = Context(int((sh.REPORT_RESERVE_SECONDS + 1.0) * 1000))  # 1 s left < 2 s timeout
    with stubber:
        run_handle(
            CODEDEPLOY_EVENT, env_for(base(server)), clock, logs, client=client, context=context
        )
        stubber.assert_no_pending_responses()
    assert requests_to(server, "/health/ready") == 0
    assert logs[0]["budget"] == 1.0


def test_codedeploy_report_failure_raises(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    client, stubber = stubbed_codedeploy()
    stubber.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        service_error_code="DeploymentDoesNotExistException",
        service_message="no such deployment",
        http_status_code=400,
        expected_params={
            "deploymentId": DEPLOYMENT_ID,
            "lifecycleEventHookExecutionId": HOOK_ID,
            "status": "Succeeded",
        },
    )
    with stubber, pytest.raises(ClientError, match="DeploymentDoesNotExistException"):
        run_handle(CODEDEPLOY_EVENT, env_for(base(server)), clock, logs, client=client)
    report = logs[-1]
    assert report["event"] == "smoke.report" and report["reported"] is False
    assert report["error"].startswith("DeploymentDoesNotExistException")


def test_codedeploy_client_creation_failure_raises(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")

    def broken() -> Any:
        raise RuntimeError("no region")

    with pytest.raises(RuntimeError, match="no region"):
        sh.handle(
            CODEDEPLOY_EVENT,
            None,
            env=env_for(base(server)),
            codedeploy_client=broken,
            sleep=clock.sleep,
            clock=clock,
            log=logs.append,
        )


def test_codedeploy_already_completed_is_not_an_error(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    client, stubber = stubbed_codedeploy()
    stubber.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        service_error_code="LifecycleEventAlreadyCompletedException",
        http_status_code=400,
    )
    with stubber:
        answer = run_handle(CODEDEPLOY_EVENT, env_for(base(server)), clock, logs, client=client)
    assert answer == {"deploymentId": DEPLOYMENT_ID, "status": "Succeeded", "reported": False}


def test_handler_entry_point_reads_os_environ(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.expect_request("/health/ready").respond_with_data("BODY-MARKER")
    client, stubber = stubbed_codedeploy()
    expect_report(stubber, "Succeeded")
    monkeypatch.setenv("TEST_ENDPOINT", base(server))
    monkeypatch.setenv("SMOKE_PATHS", "/health/ready?token=s3cr3t")
    monkeypatch.setattr(sh, "_codedeploy_client", lambda: client)
    with stubber:
        answer = sh.handler(dict(CODEDEPLOY_EVENT), Context(60_000))
        stubber.assert_no_pending_responses()
    assert answer["status"] == "Succeeded"
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in records] == [
        "smoke.start",
        "smoke.check",
        "smoke.decision",
        "smoke.report",
    ]
    assert "s3cr3t" not in out and "BODY-MARKER" not in out
    assert records[1]["path"] == "/health/ready"


def test_unknown_event_raises_without_reporting(
    clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    with pytest.raises(sh.EventError, match=r"keys \['DeploymentId'\] match neither"):
        run_handle({"DeploymentId": DEPLOYMENT_ID}, env_for("http://x"), clock, logs)
    with pytest.raises(sh.EventError):
        run_handle(["not", "a", "dict"], env_for("http://x"), clock, logs)
    assert logs[0]["event"] == "smoke.error"


def test_event_kind_detection() -> None:
    assert sh.event_kind(CODEDEPLOY_EVENT) == "codedeploy"
    assert sh.event_kind(ecs_event()) == "ecs"
    with pytest.raises(sh.EventError):
        sh.event_kind({"DeploymentId": "", "LifecycleEventHookExecutionId": HOOK_ID})


# --------------------------------------------------------------------------- ECS path


def test_ecs_healthy_returns_succeeded(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    answer = run_handle(ecs_event(), env_for(base(server)), clock, logs)
    assert answer == {"hookStatus": "SUCCEEDED"}
    assert logs[-1]["event"] == "smoke.ecs" and logs[-1]["stage"] == "POST_TEST_TRAFFIC_SHIFT"


def test_ecs_unhealthy_returns_failed(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=503)
    answer = run_handle(ecs_event(), env_for(base(server)), clock, logs)
    assert answer == {"hookStatus": "FAILED"}
    assert requests_to(server, "/health/ready") == 3


def test_ecs_in_progress_until_invocations_run_out(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=503)
    env = env_for(base(server), ECS_MAX_INVOCATIONS="3", ECS_CALLBACK_DELAY_SECONDS="20")
    first = run_handle(ecs_event(), env, clock, logs)
    assert first == {
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": 20,
        "hookDetails": {"smokeHookInvocation": 2},
    }
    second = run_handle(
        ecs_event(hookDetails={"smokeHookInvocation": 2, "other": 1}), env, clock, logs
    )
    assert second["hookStatus"] == "IN_PROGRESS"
    assert second["hookDetails"] == {"smokeHookInvocation": 3}
    last = run_handle(ecs_event(hookDetails={"smokeHookInvocation": 3}), env, clock, logs)
    assert last == {"hookStatus": "FAILED"}


def test_ecs_stage_without_green_behind_test_listener_fails_without_checking(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    for stage in ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "SOMETHING_NEW"):
        assert run_handle(ecs_event(stage), env_for(base(server)), clock, logs) == {
            "hookStatus": "FAILED"
        }
        assert "mis-wired" in logs[-1]["reason"]
    assert requests_to(server, "/health/ready") == 0


def test_ecs_rollback_is_never_blocked(
    server: HTTPServer, clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    server.expect_request("/health/ready").respond_with_data("", status=503)
    event = ecs_event("PRODUCTION_TRAFFIC_SHIFT")
    event["executionDetails"]["productionTrafficWeights"] = {GREEN: 0, BLUE: 100}
    assert run_handle(event, env_for(base(server)), clock, logs) == {"hookStatus": "SUCCEEDED"}
    assert requests_to(server, "/health/ready") == 0
    # Forward traffic shift (green carries traffic): checked, and failing.
    event["executionDetails"]["productionTrafficWeights"] = {GREEN: 100, BLUE: 0}
    assert run_handle(event, env_for(base(server)), clock, logs) == {"hookStatus": "FAILED"}


def test_is_rollback_only_for_recurring_stages() -> None:
    weights = {GREEN: 0, BLUE: 100}
    pre = ecs_event("PRE_PRODUCTION_TRAFFIC_SHIFT")
    pre["executionDetails"]["productionTrafficWeights"] = weights  # normal before a shift
    assert sh.is_rollback(pre) is False
    test_shift = ecs_event("TEST_TRAFFIC_SHIFT")
    test_shift["executionDetails"]["testTrafficWeights"] = weights
    assert sh.is_rollback(test_shift) is True
    test_shift["executionDetails"]["testTrafficWeights"] = {GREEN: "x", BLUE: 100}
    assert sh.is_rollback(test_shift) is False
    assert sh.is_rollback(ecs_event("PRODUCTION_TRAFFIC_SHIFT")) is False  # empty weights


def test_ecs_unexpected_exception_returns_failed(
    clock: FakeClock, logs: list[dict[str, Any]]
) -> None:
    class Exploding:
        def open(self, fullurl: Any, data: None = None, timeout: float = 0.0) -> Any:
            raise RuntimeError("boom")

    answer = run_handle(ecs_event(), env_for("http://x"), clock, logs, opener=Exploding())
    assert answer == {"hookStatus": "FAILED"}
    assert run_handle(ecs_event(), {}, clock, logs) == {"hookStatus": "FAILED"}  # bad config


def test_ecs_handler_entry_point(server: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.expect_request("/health/ready").respond_with_data("ok")
    monkeypatch.setenv("TEST_ENDPOINT", base(server))
    monkeypatch.delenv("SMOKE_PATHS", raising=False)
    monkeypatch.setattr(sh, "_codedeploy_client", no_client)
    assert sh.handler(ecs_event(), Context(60_000)) == {"hookStatus": "SUCCEEDED"}


def test_module_is_self_contained() -> None:
    """Ships as a one-file Lambda asset: stdlib, boto3 and botocore only."""
    tree = ast.parse(Path(sh.__file__).read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    third_party = {r for r in roots if r not in sys.stdlib_module_names} - {"__future__"}
    assert third_party == {"boto3", "botocore"}


# --------------------------------------------------------------------------- IAM documents

SCOPE = {"partition": "aws", "region": "eu-west-1", "account_id": "123456789012"}


def test_hook_policy_for_codedeploy() -> None:
    document = iam_hooks.smoke_hook_policy(
        **SCOPE,
        log_group_name="/aws/lambda/orders-prod-smoke",
        codedeploy_application="orders-prod",
        codedeploy_group="orders-prod-bg",
    )
    logs_statement, report = document["Statement"]
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/orders-prod-smoke"
    assert logs_statement == {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": [group, f"{group}:*"],
    }
    assert report == {
        "Sid": "ReportHookStatus",
        "Effect": "Allow",
        "Action": ["codedeploy:PutLifecycleEventHookExecutionStatus"],
        "Resource": "*",
    }
    assert "logs:CreateLogGroup" not in actions_of(document)


def test_hook_policy_for_ecs_has_logs_only() -> None:
    document = iam_hooks.smoke_hook_policy(**SCOPE, log_group_name="/aws/lambda/orders-smoke")
    assert actions_of(document) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert all(s["Resource"] != "*" for s in document["Statement"])


def test_hook_policy_needs_both_codedeploy_names() -> None:
    with pytest.raises(PolicyError, match=r"give both .* or neither"):
        iam_hooks.smoke_hook_policy(
            **SCOPE, log_group_name="/aws/lambda/x", codedeploy_application="orders"
        )
    with pytest.raises(PolicyError, match="codedeploy_group: 'orders/\\*' is not valid"):
        iam_hooks.smoke_hook_policy(
            **SCOPE,
            log_group_name="/aws/lambda/x",
            codedeploy_application="orders",
            codedeploy_group="orders/*",
        )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("partition", "amazon"),
        ("region", "*"),
        ("account_id", "12345"),
        ("log_group_name", "/aws/lambda/*"),
        ("log_group_name", ""),
    ],
)
def test_hook_policy_refuses_bad_scope(field: str, value: str) -> None:
    kwargs: dict[str, Any] = {**SCOPE, "log_group_name": "/aws/lambda/x", field: value}
    with pytest.raises(PolicyError, match=re.escape(f"{field}: {value!r} is not valid")):
        iam_hooks.smoke_hook_policy(**kwargs)


def test_trust_and_invoke_policies() -> None:
    lambda_trust = iam_hooks.smoke_hook_trust_policy()["Statement"]
    assert lambda_trust == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    ecs_trust = iam_hooks.hook_invoker_trust_policy()["Statement"][0]
    assert ecs_trust["Principal"] == {"Service": "ecs.amazonaws.com"}
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders-prod-smoke"
    invoke = iam_hooks.hook_invoke_policy(function_arn=arn)["Statement"]
    assert invoke == [
        {
            "Sid": "InvokeSmokeHook",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": arn,
        }
    ]
    with pytest.raises(PolicyError, match=r"function_arn: .* is not valid"):
        iam_hooks.hook_invoke_policy(function_arn="arn:aws:lambda:eu-west-1:123456789012:*")


def test_deployment_group_arn_format() -> None:
    assert iam_hooks.deployment_group_arn(
        partition="aws-us-gov",
        region="us-gov-west-1",
        account_id="123456789012",
        application="orders",
        group="orders-bg",
    ) == ("arn:aws-us-gov:codedeploy:us-gov-west-1:123456789012:deploymentgroup:orders/orders-bg")
