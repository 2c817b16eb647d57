"""Smoke-test hook Lambda for both blue/green engines (self-contained: stdlib + boto3 only).

It calls the configured paths on the **test listener** (which routes to the green revision
while production traffic still goes to blue), with per-request timeouts, bounded exponential
retries and an overall time budget, then tells the engine the verdict:

* **CodeDeploy** (``engine="codedeploy"``), AppSpec hook ``AfterAllowTestTraffic``. The event is
  ``{"DeploymentId": ..., "LifecycleEventHookExecutionId": ...}`` and nothing else, so the
  function cannot tell which AppSpec hook it was wired to; wire it to AfterAllowTestTraffic
  only. The verdict is reported with ``PutLifecycleEventHookExecutionStatus`` (``Succeeded`` or
  ``Failed``); the return value is ignored by CodeDeploy.
  https://docs.aws.amazon.com/codedeploy/latest/APIReference/API_PutLifecycleEventHookExecutionStatus.html
  https://docs.aws.amazon.com/codedeploy/latest/userguide/reference-appspec-file-structure-hooks.html
* **ECS native blue/green** (``engine="ecs"``), lifecycle stage ``POST_TEST_TRAFFIC_SHIFT``.
  ECS sends ``{"executionId", "lifecycleStage", "resourceArn", "executionDetails":
  {"serviceArn", "targetServiceRevisionArn", "testTrafficWeights", "productionTrafficWeights"},
  "hookDetails"?}`` and expects the function to *return* ``{"hookStatus": "SUCCEEDED" |
  "FAILED" | "IN_PROGRESS"}``, optionally with ``callBackDelay`` (seconds, default 30) and
  ``hookDetails`` (merged into the next invocation's event). A missing/invalid ``hookStatus``
  or a function error rolls the deployment back.
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html

Stage handling for ECS: the checks run at the stages where the test listener serves green
(``TEST_TRAFFIC_SHIFT`` onwards). At ``RECONCILE_SERVICE`` / ``PRE_SCALE_UP`` /
``POST_SCALE_UP`` (and any stage this module does not know) the test listener still serves
blue, so a smoke test would prove nothing: the hook answers ``FAILED`` and logs that it is
mis-wired (fail closed, loudly). ECS re-invokes ``TEST_TRAFFIC_SHIFT`` and
``PRODUCTION_TRAFFIC_SHIFT`` hooks during a rollback; when the stage's traffic weights show the
target revision at 0 while another revision carries traffic (the rollback signature the ECS
guide describes), the hook answers ``SUCCEEDED`` without checking: it never blocks a rollback.

Configuration (environment variables; a bad value is reported as a failed check, naming the
variable, the value and what is allowed):

``TEST_ENDPOINT``            base URL of the test listener, e.g. ``https://alb-dns:8443``
                             (http/https, no credentials, no query)
``SMOKE_PATHS``              comma-separated paths, default ``/health/ready``
``EXPECTED_STATUS``          HTTP status every path must return, default ``200``
``REQUEST_TIMEOUT_SECONDS``  per-request timeout, default ``5``
``MAX_ATTEMPTS``             attempts per path, default ``3``
``RETRY_DELAY_SECONDS``      first back-off delay, doubled each retry, default ``2``
``RETRY_MAX_DELAY_SECONDS``  cap on one back-off delay, default ``max(20, RETRY_DELAY_SECONDS)``
``TIME_BUDGET_SECONDS``      optional cap on the whole check run
``HOST_HEADER``              optional ``Host`` header (the name the ALB rules and the
                             certificate use); for https it is also the TLS SNI and the name
                             the certificate is verified against
``TLS_VERIFY``               ``true`` (default) or ``false``
``ECS_MAX_INVOCATIONS``      ECS only: how many invocations a failing check may use before
                             answering ``FAILED`` (default ``1``: fail on the first); each
                             failing invocation before that answers ``IN_PROGRESS``
``ECS_CALLBACK_DELAY_SECONDS`` ECS only: ``callBackDelay`` for those ``IN_PROGRESS`` answers,
                             default ``30``

TLS on the test listener: it normally presents the *production* certificate (e.g. for
``api.example.com``) while the hook calls the ALB's DNS name, so default hostname verification
would fail. Set ``HOST_HEADER=api.example.com``: the hook then sends that name as SNI and
``Host`` and verifies the certificate against it - full verification, no weakening.
``TLS_VERIFY=false`` (no chain or hostname check) is an escape hatch for self-signed test
certificates only; the hook reads nothing but status codes, sends no credentials, and the test
listener is reachable only from allowed CIDRs, but a skipped check is still a skipped check.

Time: every attempt starts only if a full request timeout still fits in the budget, and every
back-off sleep only if the sleep plus one more request fits. The budget is the smaller of
``TIME_BUDGET_SECONDS`` and the Lambda's remaining time minus ``REPORT_RESERVE_SECONDS`` (kept
for the report to CodeDeploy). CodeDeploy waits for a hook far longer than a Lambda may run,
so the Lambda timeout is the binding limit; size it with :func:`required_lambda_timeout_seconds`.

Reporting: any exception while configuring or checking still reports ``Failed`` to CodeDeploy
(a deployment never waits for the hook timeout); a failure to *report* raises, so the
invocation errors and Lambda's asynchronous retry runs the hook again. The one exception is
``LifecycleEventAlreadyCompletedException``: the deployment already has its verdict, nothing is
left hanging, and retrying could never succeed, so it is logged and not raised.

Logs: one JSON line per event on stdout (``smoke.start``, one ``smoke.check`` per path,
``smoke.decision``, ``smoke.report`` / ``smoke.ecs``): status codes, error classes, attempts,
elapsed seconds. Never response bodies, credentials or query strings.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

DEFAULT_PATHS = ("/health/ready",)
DEFAULT_EXPECTED_STATUS = 200
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPTS = 3
DEFAULT_DELAY_SECONDS = 2.0
DEFAULT_MAX_DELAY_SECONDS = 20.0
DEFAULT_ECS_CALLBACK_DELAY_SECONDS = 30
REPORT_RESERVE_SECONDS = 10.0
"""Seconds of the Lambda's remaining time kept back for reporting the verdict."""
LAMBDA_MAX_TIMEOUT_SECONDS = 900
USER_AGENT = "dotnet-delivery-smoke-hook/1"

# ECS lifecycle stages at which the test listener routes to the green revision.
SMOKE_STAGES = frozenset(
    {
        "TEST_TRAFFIC_SHIFT",
        "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
    }
)
# Stages ECS re-invokes during a rollback, and the weight map that shows it.
_ROLLBACK_WEIGHTS = {
    "TEST_TRAFFIC_SHIFT": "testTrafficWeights",
    "PRODUCTION_TRAFFIC_SHIFT": "productionTrafficWeights",
}
ECS_INVOCATION_KEY = "smokeHookInvocation"
_ALREADY_COMPLETED = "LifecycleEventAlreadyCompletedException"

_HOST_RE = re.compile(
    r"^(?=.{1,253}(?::\d{1,5})?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(?::\d{1,5})?$"
)
_PATH_RE = re.compile(r"^/[\x21-\x7e]*$")  # printable ASCII, no spaces or control characters


# --------------------------------------------------------------------------- logging


def emit(record: Mapping[str, Any]) -> None:
    """Write one JSON log line to stdout (CloudWatch Logs keeps one line per record)."""
    sys.stdout.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


Log = Callable[[dict[str, Any]], None]


def _short(text: object, limit: int = 200) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _log_path(path: str) -> str:
    """A path without its query string (which may carry tokens)."""
    return urllib.parse.urlsplit(path).path


def safe_url(url: str) -> str:
    """``scheme://host[:port]/path`` of a URL: no credentials, query or fragment (for logs)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --------------------------------------------------------------------------- configuration


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key, value and rule."""


@dataclass(frozen=True)
class SmokeConfig:
    base_url: str
    paths: tuple[str, ...] = DEFAULT_PATHS
    expected_status: int = DEFAULT_EXPECTED_STATUS
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    attempts: int = DEFAULT_ATTEMPTS
    delay: float = DEFAULT_DELAY_SECONDS
    max_delay: float = DEFAULT_MAX_DELAY_SECONDS
    time_budget: float | None = None
    host_header: str | None = None
    tls_verify: bool = True
    ecs_max_invocations: int = 1
    ecs_callback_delay: int = DEFAULT_ECS_CALLBACK_DELAY_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmokeConfig:
        """Read and validate the environment; raises :class:`ConfigError` on the first bad key."""
        base_url = _endpoint(env.get("TEST_ENDPOINT", ""))
        paths = _paths(env.get("SMOKE_PATHS"))
        delay = _number(env, "RETRY_DELAY_SECONDS", DEFAULT_DELAY_SECONDS, 0.0, 60.0)
        max_delay = _number(
            env, "RETRY_MAX_DELAY_SECONDS", max(DEFAULT_MAX_DELAY_SECONDS, delay), delay, 300.0
        )
        budget_raw = env.get("TIME_BUDGET_SECONDS", "").strip()
        return cls(
            base_url=base_url,
            paths=paths,
            expected_status=_integer(env, "EXPECTED_STATUS", DEFAULT_EXPECTED_STATUS, 100, 599),
            timeout=_number(env, "REQUEST_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, 0.001, 60.0),
            attempts=_integer(env, "MAX_ATTEMPTS", DEFAULT_ATTEMPTS, 1, 10),
            delay=delay,
            max_delay=max_delay,
            time_budget=(
                _number(env, "TIME_BUDGET_SECONDS", 0.0, 0.001, float(LAMBDA_MAX_TIMEOUT_SECONDS))
                if budget_raw
                else None
            ),
            host_header=_host_header(env.get("HOST_HEADER", "")),
            tls_verify=_boolean(env, "TLS_VERIFY", True),
            ecs_max_invocations=_integer(env, "ECS_MAX_INVOCATIONS", 1, 1, 20),
            ecs_callback_delay=_integer(
                env, "ECS_CALLBACK_DELAY_SECONDS", DEFAULT_ECS_CALLBACK_DELAY_SECONDS, 1, 900
            ),
        )


def _endpoint(raw: str) -> str:
    value = raw.strip()
    rule = "use http(s)://host[:port][/prefix] without credentials, query or fragment"
    if not value:
        raise ConfigError(f"TEST_ENDPOINT: is not set; {rule}")
    parts = urllib.parse.urlsplit(value)
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigError(f"TEST_ENDPOINT: {safe_url(value)!r} has a bad port; {rule}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"TEST_ENDPOINT: {safe_url(value)!r} is not an http(s) URL; {rule}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"TEST_ENDPOINT: {safe_url(value)!r} contains credentials; {rule}")
    if parts.query or parts.fragment:
        raise ConfigError(f"TEST_ENDPOINT: {safe_url(value)!r} has a query or fragment; {rule}")
    return value.rstrip("/")


def _paths(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return DEFAULT_PATHS
    paths = tuple(p.strip() for p in raw.split(",") if p.strip())
    if not paths:
        raise ConfigError(f"SMOKE_PATHS: {raw!r} names no path; use e.g. '/health/ready,/api/ping'")
    if len(paths) > 20:
        raise ConfigError(f"SMOKE_PATHS: {len(paths)} paths given; use at most 20")
    for path in paths:
        if not _PATH_RE.match(path):
            raise ConfigError(
                f"SMOKE_PATHS: {path!r} is not a path; each must start with '/' and contain "
                "only printable ASCII without spaces"
            )
    return paths


def _host_header(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    if not _HOST_RE.match(value):
        raise ConfigError(
            f"HOST_HEADER: {_short(value, 80)!r} is not a host name; use e.g. 'api.example.com'"
        )
    return value


def _number(env: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (low <= value <= high):  # also rejects nan and inf
        raise ConfigError(f"{key}: {raw!r} is not a number of seconds from {low:g} to {high:g}")
    return value


def _integer(env: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}: {raw!r} is not a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ConfigError(f"{key}: {raw!r} is not a whole number from {low} to {high}")
    return value


def _boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise ConfigError(f"{key}: {raw!r} is not a boolean; use 'true' or 'false'")


# --------------------------------------------------------------------------- timing


def backoff_delay(retry: int, delay: float, max_delay: float) -> float:
    """Sleep before retry number ``retry`` (1-based): ``delay * 2**(retry-1)``, capped."""
    if retry < 1:
        raise ValueError(f"retry: {retry} must be 1 or more")
    return min(max_delay, delay * (2 ** min(retry - 1, 30)))


def worst_case_seconds(
    *, paths: int, timeout: float, attempts: int, delay: float, max_delay: float
) -> float:
    """Longest a check run can take when every attempt times out (no budget applied)."""
    sleeps = sum(backoff_delay(r, delay, max_delay) for r in range(1, attempts))
    return paths * (attempts * timeout + sleeps)


def required_lambda_timeout_seconds(config: SmokeConfig) -> int:
    """A Lambda timeout that lets a full check run finish and still report (cold start: +5 s).

    With a ``time_budget`` the run never exceeds it; the result is capped at Lambda's maximum
    (900 s), where the budget derived from the remaining time takes over.
    """
    run = worst_case_seconds(
        paths=len(config.paths),
        timeout=config.timeout,
        attempts=config.attempts,
        delay=config.delay,
        max_delay=config.max_delay,
    )
    if config.time_budget is not None:
        run = min(run, config.time_budget)
    return min(LAMBDA_MAX_TIMEOUT_SECONDS, math.ceil(run + REPORT_RESERVE_SECONDS + 5.0))


def time_budget(config: SmokeConfig, context: object | None) -> float | None:
    """Seconds the checks may use: ``TIME_BUDGET_SECONDS`` and the Lambda's remaining time
    (minus :data:`REPORT_RESERVE_SECONDS`), whichever is smaller; ``None`` if neither is known.
    """
    limits: list[float] = []
    if config.time_budget is not None:
        limits.append(config.time_budget)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        limits.append(max(0.0, float(remaining()) / 1000.0 - REPORT_RESERVE_SECONDS))
    return min(limits) if limits else None


# --------------------------------------------------------------------------- HTTP


class Opener(Protocol):
    """What :func:`check_paths` needs from an opener (``urllib.request.OpenerDirector``)."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any:
        """Open the request; raise ``urllib.error.HTTPError`` for non-2xx statuses."""
        ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report a redirect as its own status instead of following it off the test listener."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> None:
        return None


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS connection whose TLS server name (SNI + verified name) differs from the TCP host."""

    def __init__(self, host: str, *, server_hostname: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP only
        self.sock = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock, server_hostname=self._server_hostname
        )


class _SNIHandler(urllib.request.HTTPSHandler):
    def __init__(self, context: ssl.SSLContext, server_hostname: str) -> None:
        super().__init__(context=context)
        self._tls_context = context
        self._server_hostname = server_hostname

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connect, req)  # type: ignore[arg-type]

    def _connect(self, host: str, timeout: float | None = None) -> _SNIConnection:
        kwargs: dict[str, Any] = {"context": self._tls_context}
        if timeout is not None:
            kwargs["timeout"] = timeout
        return _SNIConnection(host, server_hostname=self._server_hostname, **kwargs)


def tls_context(*, verify: bool, cafile: str | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context; ``verify=False`` skips chain and hostname checks."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def make_opener(
    *,
    tls_verify: bool = True,
    server_hostname: str | None = None,
    context: ssl.SSLContext | None = None,
) -> urllib.request.OpenerDirector:
    """An opener that never follows redirects and never uses proxies.

    ``server_hostname`` (the ``HOST_HEADER`` name without port) becomes the TLS SNI and the
    name the certificate is verified against; ``context`` overrides the TLS context (tests use
    it to trust their own CA).
    """
    ctx = context or tls_context(verify=tls_verify)
    https: urllib.request.BaseHandler = (
        _SNIHandler(ctx, server_hostname)
        if server_hostname
        else urllib.request.HTTPSHandler(context=ctx)
    )
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect(), https)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError)  # socket.timeout is an alias since Python 3.10


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if _is_timeout(exc):
        return f"timeout after {timeout:g}s"
    if isinstance(exc, ssl.SSLError):
        return f"tls error: {_short(exc, 160)}"
    return f"{type(exc).__name__}: {_short(exc, 160)}"


def _attempt(
    opener: Opener, url: str, headers: Mapping[str, str], timeout: float
) -> tuple[int | None, str | None]:
    """One GET: ``(status, None)`` when an HTTP status arrived, else ``(None, reason)``."""
    request = urllib.request.Request(url, method="GET", headers=dict(headers))
    try:
        with opener.open(request, timeout=timeout) as response:
            return int(response.status), None  # the body is never read
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code), None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        return None, _describe(exc, timeout)


# --------------------------------------------------------------------------- pure core


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one path: ``ok`` only if it returned the expected status."""

    path: str
    ok: bool
    status: int | None
    error: str | None
    attempts: int
    elapsed: float
    history: tuple[str, ...] = ()
    budget_exhausted: bool = False

    def to_log(self) -> dict[str, Any]:
        return {
            "event": "smoke.check",
            "path": _log_path(self.path),
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "elapsed": round(self.elapsed, 3),
            "history": list(self.history),
            "budget_exhausted": self.budget_exhausted,
        }


def check_paths(
    base_url: str,
    paths: Sequence[str],
    *,
    expected_status: int,
    timeout: float,
    attempts: int,
    delay: float,
    max_delay: float = DEFAULT_MAX_DELAY_SECONDS,
    host_header: str | None = None,
    budget: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    opener: Opener | None = None,
    log: Log = emit,
) -> list[CheckResult]:
    """GET ``base_url + path`` for each path until it returns ``expected_status``.

    Up to ``attempts`` tries per path with back-off ``delay * 2**n`` capped at ``max_delay``.
    ``budget`` (seconds, shared by all paths) stops a path early: an attempt starts only if a
    full ``timeout`` fits in what is left, a back-off only if it plus one ``timeout`` fits.
    Logs one JSON line per path.
    """
    if attempts < 1:
        raise ValueError(f"attempts: {attempts} must be 1 or more")
    if opener is None:
        server_name = host_header.rsplit(":", 1)[0] if host_header else None
        opener = make_opener(server_hostname=server_name)
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if host_header:
        headers["Host"] = host_header
    started = clock()

    def left() -> float:
        return math.inf if budget is None else budget - (clock() - started)

    results: list[CheckResult] = []
    for path in paths:
        url = base_url.rstrip("/") + path
        path_started = clock()
        history: list[str] = []
        status: int | None = None
        error: str | None = None
        ok = False
        exhausted = False
        tries = 0
        while tries < attempts:
            if left() < timeout:
                exhausted = True
                break
            tries += 1
            status, error = _attempt(opener, url, headers, timeout)
            history.append(str(status) if error is None else error)
            if error is None and status == expected_status:
                ok = True
                break
            if error is None:
                error = f"status {status}, expected {expected_status}"
            if tries < attempts:
                pause = backoff_delay(tries, delay, max_delay)
                if left() < pause + timeout:
                    exhausted = True
                    break
                sleep(pause)
        if exhausted and tries == 0:
            error = "no attempt made: time budget exhausted"
        result = CheckResult(
            path=path,
            ok=ok,
            status=status,
            error=None if ok else error,
            attempts=tries,
            elapsed=clock() - path_started,
            history=tuple(history),
            budget_exhausted=exhausted,
        )
        log(result.to_log())
        results.append(result)
    return results


def decide(results: Sequence[CheckResult]) -> bool:
    """Pass only if there was at least one check and every check passed."""
    return bool(results) and all(r.ok for r in results)


# --------------------------------------------------------------------------- handler


class EventError(ValueError):
    """An invocation event of neither known shape."""


def event_kind(event: object) -> str:
    """``"codedeploy"`` or ``"ecs"`` from the event's shape; raises :class:`EventError`."""
    if isinstance(event, Mapping):
        deployment_id = event.get("DeploymentId")
        hook_id = event.get("LifecycleEventHookExecutionId")
        if all(isinstance(v, str) and v for v in (deployment_id, hook_id)):
            return "codedeploy"
        if isinstance(event.get("lifecycleStage"), str) and "executionId" in event:
            return "ecs"
        keys = sorted(str(k) for k in event)
    else:
        keys = [type(event).__name__]
    raise EventError(
        f"event: keys {keys} match neither a CodeDeploy hook event (DeploymentId, "
        "LifecycleEventHookExecutionId) nor an ECS lifecycle hook event (executionId, "
        "lifecycleStage, executionDetails)"
    )


@dataclass(frozen=True)
class Verdict:
    passed: bool
    config: SmokeConfig | None
    results: tuple[CheckResult, ...] = ()
    error: str | None = None


def run_checks(
    env: Mapping[str, str],
    context: object | None,
    *,
    opener: Opener | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: Log = emit,
) -> Verdict:
    """Configure and run the checks; never raises (any exception is a failed verdict)."""
    config: SmokeConfig | None = None
    try:
        config = SmokeConfig.from_env(env)
        budget = time_budget(config, context)
        log(
            {
                "event": "smoke.start",
                "endpoint": safe_url(config.base_url),
                "paths": [_log_path(p) for p in config.paths],
                "expected_status": config.expected_status,
                "attempts": config.attempts,
                "timeout": config.timeout,
                "budget": None if budget is None else round(budget, 3),
                "tls_verify": config.tls_verify,
            }
        )
        if opener is None:
            server_name = config.host_header.rsplit(":", 1)[0] if config.host_header else None
            opener = make_opener(tls_verify=config.tls_verify, server_hostname=server_name)
        results = check_paths(
            config.base_url,
            config.paths,
            expected_status=config.expected_status,
            timeout=config.timeout,
            attempts=config.attempts,
            delay=config.delay,
            max_delay=config.max_delay,
            host_header=config.host_header,
            budget=budget,
            sleep=sleep,
            clock=clock,
            opener=opener,
            log=log,
        )
        verdict = Verdict(passed=decide(results), config=config, results=tuple(results))
    except Exception as exc:
        verdict = Verdict(
            passed=False, config=config, error=f"{type(exc).__name__}: {_short(exc, 300)}"
        )
    log(
        {
            "event": "smoke.decision",
            "passed": verdict.passed,
            "failed_paths": [_log_path(r.path) for r in verdict.results if not r.ok],
            "error": verdict.error,
        }
    )
    return verdict


def _codedeploy_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "codedeploy",
        config=Config(
            connect_timeout=5, read_timeout=10, retries={"max_attempts": 5, "mode": "standard"}
        ),
    )


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping):
            code = error.get("Code")
            return str(code) if code is not None else None
    return None


def handle_codedeploy(
    event: Mapping[str, Any],
    verdict: Verdict,
    client: Any,
    *,
    log: Log = emit,
) -> dict[str, Any]:
    """Report the verdict for a CodeDeploy hook; raises if the report fails."""
    status = "Succeeded" if verdict.passed else "Failed"
    deployment_id = str(event["DeploymentId"])
    hook_id = str(event["LifecycleEventHookExecutionId"])
    try:
        client.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=hook_id,
            status=status,
        )
    except Exception as exc:
        code = _error_code(exc)
        record = {
            "event": "smoke.report",
            "deployment_id": deployment_id,
            "status": status,
            "reported": False,
            "error": f"{code or type(exc).__name__}: {_short(exc, 300)}",
        }
        log(record)
        if code == _ALREADY_COMPLETED:
            return {"deploymentId": deployment_id, "status": status, "reported": False}
        raise
    log({"event": "smoke.report", "deployment_id": deployment_id, "status": status})
    return {"deploymentId": deployment_id, "status": status, "reported": True}


def is_rollback(event: Mapping[str, Any]) -> bool:
    """ECS re-invokes traffic-shift hooks on rollback; the weights then show the target
    revision at 0 while another revision carries the traffic."""
    key = _ROLLBACK_WEIGHTS.get(str(event.get("lifecycleStage")))
    details = event.get("executionDetails")
    if key is None or not isinstance(details, Mapping):
        return False
    weights = details.get(key)
    target = details.get("targetServiceRevisionArn")
    if not isinstance(weights, Mapping) or target not in weights:
        return False
    try:
        others = [float(v) for k, v in weights.items() if k != target]
        return float(weights[target]) == 0 and any(w > 0 for w in others)
    except (TypeError, ValueError):
        return False


def _invocation(event: Mapping[str, Any]) -> int:
    details = event.get("hookDetails")
    value = details.get(ECS_INVOCATION_KEY) if isinstance(details, Mapping) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return 1


def handle_ecs(
    event: Mapping[str, Any],
    run: Callable[[], Verdict],
    *,
    log: Log = emit,
) -> dict[str, Any]:
    """The ``hookStatus`` answer for an ECS lifecycle hook event; never raises."""
    stage = str(event.get("lifecycleStage"))
    base = {"event": "smoke.ecs", "stage": stage, "execution_id": event.get("executionId")}
    try:
        if is_rollback(event):
            log({**base, "hook_status": "SUCCEEDED", "reason": "rollback: never blocked"})
            return {"hookStatus": "SUCCEEDED"}
        if stage not in SMOKE_STAGES:
            log(
                {
                    **base,
                    "hook_status": "FAILED",
                    "reason": f"mis-wired: the test listener does not serve the new revision "
                    f"at {stage}; attach this hook to POST_TEST_TRAFFIC_SHIFT",
                }
            )
            return {"hookStatus": "FAILED"}
        verdict = run()
        if verdict.passed:
            log({**base, "hook_status": "SUCCEEDED"})
            return {"hookStatus": "SUCCEEDED"}
        invocation = _invocation(event)
        config = verdict.config
        if config is not None and invocation < config.ecs_max_invocations:
            answer: dict[str, Any] = {
                "hookStatus": "IN_PROGRESS",
                "callBackDelay": config.ecs_callback_delay,
                "hookDetails": {ECS_INVOCATION_KEY: invocation + 1},
            }
            log({**base, "hook_status": "IN_PROGRESS", "invocation": invocation})
            return answer
        log({**base, "hook_status": "FAILED", "invocation": invocation})
        return {"hookStatus": "FAILED"}
    except Exception as exc:
        log({**base, "hook_status": "FAILED", "error": f"{type(exc).__name__}: {_short(exc)}"})
        return {"hookStatus": "FAILED"}


def handle(
    event: Any,
    context: object | None,
    *,
    env: Mapping[str, str],
    codedeploy_client: Callable[[], Any] | None = None,
    opener: Opener | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    log: Log = emit,
) -> dict[str, Any]:
    """:func:`handler` with its collaborators injectable (tests, local runs)."""
    try:
        kind = event_kind(event)
    except EventError as exc:
        log({"event": "smoke.error", "error": str(exc)})
        raise

    def run() -> Verdict:
        return run_checks(env, context, opener=opener, sleep=sleep, clock=clock, log=log)

    if kind == "ecs":
        return handle_ecs(event, run, log=log)
    verdict = run()
    client = (codedeploy_client or _codedeploy_client)()  # a failure here raises: not reported
    return handle_codedeploy(event, verdict, client, log=log)


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (both engines; see the module docstring)."""
    return handle(event, context, env=os.environ)
