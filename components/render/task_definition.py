"""The ECS task definition of a service, rendered from typed input (pure; no Pulumi).

:func:`task_definition_input` returns the complete ``RegisterTaskDefinition`` input in ECS
wire format (camelCase keys), and :func:`container_definitions` its ``containerDefinitions``
list (what ``aws.ecs.TaskDefinition(container_definitions=json.dumps(...))`` takes). Both
are validated against botocore's ``ecs`` service model in the test suite.

What the rendered task always has
---------------------------------
* Fargate, ``awsvpc``, a ``runtimePlatform`` (``ARM64`` or ``X86_64``, ``LINUX``) and a
  CPU/memory pair from AWS's Fargate table (:data:`FARGATE_SIZES`).
* The application container from an image **digest** reference (``repo@sha256:<64 hex>``);
  a tag reference is refused. Port 8080 (``ASPNETCORE_HTTP_PORTS``), ``ASPNETCORE_ENVIRONMENT``.
* Plain ``environment`` only for non-secret values: a name or value that looks like a
  credential is refused (use ``secrets``). ``secrets`` only as references - Secrets Manager
  ARNs (optionally ``:json-key:version-stage:version-id``) or SSM parameter ARNs/names - in
  the environment's own account.
* ``awslogs`` to the service's log group (``/ecs/<env>/<service>``) in ``non-blocking`` mode
  with a 25 MiB buffer: a slow CloudWatch Logs endpoint never stalls request threads
  (trade-off: under sustained back-pressure the oldest buffered lines are dropped).
* ``readonlyRootFilesystem`` with a writable ``/tmp`` (a Fargate bind-mount volume without a
  host path is task-local ephemeral storage), the non-root ``app`` user of the .NET images
  (UID 1654, the images' ``$APP_UID`` since .NET 8), all Linux capabilities dropped, and
  ``initProcessEnabled`` so signals reach the app and zombies are reaped.

  Contract with the image: Fargate creates a bind mount owned by root with mode 0755 unless
  the image declares ``VOLUME ["/tmp"]`` - then ECS copies the image's ``/tmp`` (contents,
  owner, mode) into the volume (ECS developer guide, "Use bind mounts"). So the Dockerfile
  must declare ``VOLUME ["/tmp"]`` with ``/tmp`` writable by UID 1654 (1777 or owned by
  ``$APP_UID``), or the non-root app cannot write its temp files. Only the app container
  mounts the volume, so the copy has exactly one source.
* ``stopTimeout`` for graceful shutdown (Fargate's maximum is 120 s).

The container health check (chiseled images have no shell, curl or wget)
------------------------------------------------------------------------
``mcr.microsoft.com/dotnet/aspnet:*-chiseled`` has no ``/bin/sh``, so ``CMD-SHELL`` cannot
run, and no curl/wget (dotnet/dotnet-docker#4300 is still open: Microsoft ships no probe).
ECS's ``["CMD", exe, args...]`` form execs the program directly, so the probe must be an
executable *inside the image*. Two choices, both offered by :class:`HealthCheck`:

* :meth:`HealthCheck.dotnet_self_probe` - ``dotnet /app/<App>.dll --healthcheck <url>``:
  the app's ``Main`` checks for ``--healthcheck`` before building the host, GETs the URL
  with a short timeout and exits 0/1. Nothing extra in the image (same digest, nothing more
  to scan), but every probe pays a .NET runtime start (~100-300 ms CPU and ~30-50 MB RSS for
  a moment) - noticeable on a 0.25 vCPU task, so keep the interval at 30 s or more.
* :meth:`HealthCheck.probe_binary` - a tiny static or Native-AOT probe copied into the image
  (default ``/app/healthprobe <url>``): starts in milliseconds with a few MB, but it is one
  more artifact to build for both architectures, scan and keep patched.

The default in this project is the self-probe (fewer moving parts); the choice is the
caller's, and ``health_check=None`` leaves container health to the ALB alone. Whatever is
chosen must exist in the image: a probe that is missing makes every task unhealthy.

The ADOT collector sidecar (optional)
-------------------------------------
``public.ecr.aws/aws-observability/aws-otel-collector`` pinned by digest, started with the
image's built-in ``--config=/etc/ecs/ecs-xray.yaml`` (OTLP gRPC 4317 / HTTP 4318 in, X-Ray
out - so the task role needs only X-Ray write permissions), or with a full configuration
from an SSM parameter (``AOT_CONFIG_CONTENT`` secret). It is **not essential**: a collector
crash loses traces, never requests (an essential sidecar would stop the whole task). The app
waits for it to START and exports to ``http://localhost:4317``. It logs to its own stream
prefix, has a hard memory limit so it can never starve the app, and uses the image's own
``/healthcheck`` binary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# --------------------------------------------------------------------------------------
# Fargate task sizes
# --------------------------------------------------------------------------------------


def _steps(start: int, stop: int, step: int) -> tuple[int, ...]:
    return tuple(range(start, stop + 1, step))


#: Valid Fargate (Linux) task CPU units -> memory MiB, from AWS's "Task CPU and memory"
#: table (ECS developer guide, "Troubleshoot ... invalid CPU or memory errors"). 8 and 16 vCPU
#: need Linux platform version 1.4.0 or later (LATEST is).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1024, 4096, 1024),
    1024: _steps(2048, 8192, 1024),
    2048: _steps(4096, 16384, 1024),
    4096: _steps(8192, 30720, 1024),
    8192: _steps(16384, 61440, 4096),
    16384: _steps(32768, 122880, 8192),
}


def _describe_memory(values: tuple[int, ...]) -> str:
    if len(values) <= 4:
        return ", ".join(str(v) for v in values)
    step = values[1] - values[0]
    return f"{values[0]}..{values[-1]} in steps of {step}"


def validate_fargate_size(cpu: int, memory: int) -> str | None:
    """``None`` if ``cpu``/``memory`` is a valid Fargate pair, else an error naming what is."""
    if cpu not in FARGATE_SIZES:
        allowed = ", ".join(str(c) for c in FARGATE_SIZES)
        return f"cpu {cpu} is not a Fargate size; use one of {allowed} (CPU units)"
    memories = FARGATE_SIZES[cpu]
    if memory not in memories:
        return (
            f"memory {memory} MiB is not valid with cpu {cpu} on Fargate; "
            f"use {_describe_memory(memories)} MiB"
        )
    return None


# --------------------------------------------------------------------------------------
# Errors and small validators
# --------------------------------------------------------------------------------------


class TaskDefinitionError(ValueError):
    """Input that cannot make a safe, valid task definition (the message says what is)."""


CONTAINER_PORT = 8080
APP_UID = "1654"  # $APP_UID of mcr.microsoft.com/dotnet/* images since .NET 8
TMP_VOLUME = "tmp"
LIVE_PATH = "/health/live"
LIVE_URL = f"http://localhost:{CONTAINER_PORT}{LIVE_PATH}"
FARGATE_MAX_STOP_TIMEOUT = 120
OTLP_GRPC_ENDPOINT = "http://localhost:4317"
ADOT_CONTAINER_NAME = "aws-otel-collector"
ADOT_REPOSITORY = "public.ecr.aws/aws-observability/aws-otel-collector"
ADOT_XRAY_CONFIG = "/etc/ecs/ecs-xray.yaml"

DIGEST_REF_RE = re.compile(
    r"^(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]{1,5})?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"@sha256:(?P<digest>[0-9a-f]{64})$"
)
ECR_HOST_RE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$"
)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTAINER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
LOG_GROUP_RE = re.compile(r"^[A-Za-z0-9_/.#-]{1,512}$")
SSM_NAME_RE = re.compile(r"^/?[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
USER_RE = re.compile(r"^(?P<uid>\d+)(?::(?P<gid>\d+))?$")

#: Names the renderer sets itself; a user value would silently fight it.
RESERVED_ENV = frozenset(
    {
        "ASPNETCORE_ENVIRONMENT",
        "ASPNETCORE_HTTP_PORTS",
        "ASPNETCORE_URLS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_SERVICE_NAME",
    }
)


def parse_digest_ref(image: str, *, field_name: str = "image") -> tuple[str, str]:
    """``(repository, "sha256:<hex>")`` of a digest reference; anything else is refused."""
    match = DIGEST_REF_RE.match(image or "")
    if not match:
        hint = ""
        if "@" not in (image or ""):
            hint = " (a tag is mutable: promote the digest the build pushed)"
        raise TaskDefinitionError(
            f"{field_name}: {image!r} is not a digest reference; use "
            f"'<repository>@sha256:<64 lowercase hex>'{hint}"
        )
    return match.group("repository"), f"sha256:{match.group('digest')}"


def ecr_repository_arn(image: str, *, partition: str = "aws") -> str | None:
    """The ECR repository ARN of a private-ECR digest reference (``None`` if not ECR)."""
    repository, _ = parse_digest_ref(image)
    host, _, name = repository.partition("/")
    match = ECR_HOST_RE.match(host)
    if not match:
        return None
    return f"arn:{partition}:ecr:{match.group('region')}:{match.group('account')}:repository/{name}"


# ---- credentials in plain environment variables --------------------------------------

_CREDENTIAL_NAME_WORDS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "APIKEY",
    "PRIVATEKEY",
    "ACCESSKEY",
    "CREDENTIAL",
    "SIGNINGKEY",
)
#: A last name segment saying the value is a *reference to* or *setting about* a secret
#: (``DB_PASSWORD_SECRET_ARN``, ``TOKEN_LIFETIME_MINUTES``), not the secret itself.
_REFERENCE_SUFFIXES = frozenset(
    {
        "ARN",
        "NAME",
        "ID",
        "PATH",
        "FILE",
        "ENDPOINT",
        "URL",
        "URI",
        "ISSUER",
        "AUDIENCE",
        "TTL",
        "LIFETIME",
        "SECONDS",
        "MINUTES",
        "HOURS",
        "DAYS",
        "EXPIRY",
        "EXPIRATION",
        "HEADER",
        "LENGTH",
        "ENABLED",
    }
)
_CREDENTIAL_VALUE_RES = (
    (re.compile(r"(?i)(?:^|[;\s])(?:password|pwd)\s*="), "a connection string with a password"),
    (re.compile(r"(?i)(?:^|[;\s])(?:accountkey|sharedaccesskey)\s*="), "a storage/bus key"),
    (re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]+:[^/@\s]+@"), "a URL with a password"),
    (re.compile(r"(?:^|[^A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?:$|[^A-Z0-9])"), "an AWS access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"^(?:ghp|gho|ghs|github_pat|glpat|xox[abpr])[-_][A-Za-z0-9_-]{10,}"), "a token"),
    (re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"), "a JWT"),
)


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.upper()) if w]


def credential_reason(name: str, value: str) -> str | None:
    """Why ``name=value`` looks like a credential (``None`` if it does not)."""
    words = _name_words(name)
    if words and words[-1] not in _REFERENCE_SUFFIXES:
        joined = "".join(words)
        for word in _CREDENTIAL_NAME_WORDS:
            if word in joined:
                return f"its name contains {word}"
    for pattern, what in _CREDENTIAL_VALUE_RES:
        if pattern.search(value):
            return f"its value looks like {what}"
    return None


# ---- secret references ---------------------------------------------------------------


@dataclass(frozen=True)
class SecretReference:
    """One parsed ``valueFrom``: a Secrets Manager secret or an SSM parameter."""

    kind: Literal["secretsmanager", "ssm"]
    value_from: str
    #: Secrets Manager: the secret's ARN without the json-key/version suffix (may be a
    #: partial ARN). SSM: the parameter ARN, or ``None`` for a bare (same-region) name.
    arn: str | None
    #: SSM only: the parameter name (for a bare name, what the ARN is built from).
    parameter_name: str | None = None
    account_id: str | None = None


def parse_secret_reference(value_from: str, *, key: str = "secrets") -> SecretReference:
    """Parse a ``valueFrom``; refuse what ECS cannot resolve (or we cannot scope in IAM)."""
    if value_from.startswith("arn:"):
        parts = value_from.split(":")
        if len(parts) < 6:
            raise TaskDefinitionError(f"{key}: {value_from!r} is not a valid ARN")
        service, account = parts[2], parts[4]
        if service not in ("secretsmanager", "ssm"):
            raise TaskDefinitionError(
                f"{key}: {value_from!r} is a {service or 'malformed'} ARN; secrets must come "
                "from Secrets Manager or SSM Parameter Store"
            )
        if not ACCOUNT_RE.match(account):
            raise TaskDefinitionError(
                f"{key}: {value_from!r} has no 12-digit account id; use the full ARN"
            )
        if service == "secretsmanager":
            if len(parts) < 7 or parts[5] != "secret" or not parts[6] or len(parts) > 10:
                raise TaskDefinitionError(
                    f"{key}: {value_from!r} is not a Secrets Manager secret ARN; use "
                    "'arn:aws:secretsmanager:<region>:<account>:secret:<name>' optionally "
                    "followed by ':<json-key>:<version-stage>:<version-id>'"
                )
            return SecretReference(
                "secretsmanager", value_from, ":".join(parts[:7]), account_id=account
            )
        resource = ":".join(parts[5:])  # service is "ssm" here
        if not resource.startswith("parameter/") or len(resource) == len("parameter/"):
            raise TaskDefinitionError(
                f"{key}: {value_from!r} is not an SSM parameter ARN; use "
                "'arn:aws:ssm:<region>:<account>:parameter/<name>'"
            )
        return SecretReference(
            "ssm",
            value_from,
            value_from,
            parameter_name=resource[len("parameter") :],
            account_id=account,
        )
    if SSM_NAME_RE.match(value_from):
        return SecretReference("ssm", value_from, None, parameter_name=value_from)
    raise TaskDefinitionError(
        f"{key}: {value_from!r} is neither a Secrets Manager/SSM ARN nor an SSM parameter name"
    )


# --------------------------------------------------------------------------------------
# Typed input
# --------------------------------------------------------------------------------------

_SHELLS_AND_TOOLS = frozenset({"sh", "bash", "ash", "dash", "curl", "wget", "nc"})


@dataclass(frozen=True, kw_only=True)
class HealthCheck:
    """A container health check in exec form (``CMD``); see the module docstring."""

    command: tuple[str, ...]
    interval_seconds: int = 30
    timeout_seconds: int = 5
    retries: int = 3
    start_period_seconds: int = 60

    def __post_init__(self) -> None:
        if not self.command or self.command[0] != "CMD":
            first = self.command[0] if self.command else None
            raise TaskDefinitionError(
                f"health_check.command must start with 'CMD' (exec form), not {first!r}: "
                "chiseled .NET images have no shell for 'CMD-SHELL'"
            )
        if len(self.command) < 2:
            raise TaskDefinitionError("health_check.command needs a program after 'CMD'")
        program = self.command[1].rsplit("/", 1)[-1]
        if program in _SHELLS_AND_TOOLS:
            raise TaskDefinitionError(
                f"health_check.command runs {self.command[1]!r}, which chiseled .NET images "
                "do not contain; use HealthCheck.dotnet_self_probe(...) or probe_binary(...)"
            )
        for name, value, low, high in (
            ("interval_seconds", self.interval_seconds, 5, 300),
            ("timeout_seconds", self.timeout_seconds, 2, 60),
            ("retries", self.retries, 1, 10),
            ("start_period_seconds", self.start_period_seconds, 0, 300),
        ):
            if not low <= value <= high:
                raise TaskDefinitionError(
                    f"health_check.{name}: {value} is outside ECS's range {low}..{high}"
                )
        if self.timeout_seconds >= self.interval_seconds:
            raise TaskDefinitionError(
                f"health_check.timeout_seconds ({self.timeout_seconds}) must be shorter than "
                f"interval_seconds ({self.interval_seconds})"
            )

    @classmethod
    def dotnet_self_probe(
        cls, entry_dll: str, *, url: str = LIVE_URL, **timing: int
    ) -> HealthCheck:
        """``dotnet <entry_dll> --healthcheck <url>`` (the app answers its own probe)."""
        if not entry_dll.endswith(".dll"):
            raise TaskDefinitionError(
                f"health_check entry_dll: {entry_dll!r} must be the app's .dll, "
                "e.g. '/app/Orders.Api.dll'"
            )
        if not entry_dll.startswith("/"):
            entry_dll = f"/app/{entry_dll}"
        return cls(command=("CMD", "dotnet", entry_dll, "--healthcheck", url), **timing)

    @classmethod
    def probe_binary(
        cls, path: str = "/app/healthprobe", *, url: str = LIVE_URL, **timing: int
    ) -> HealthCheck:
        """``<path> <url>``: a small probe executable shipped in the image."""
        if not path.startswith("/"):
            raise TaskDefinitionError(f"health_check path: {path!r} must be absolute")
        return cls(command=("CMD", path, url), **timing)

    def render(self) -> dict[str, Any]:
        return {
            "command": list(self.command),
            "interval": self.interval_seconds,
            "timeout": self.timeout_seconds,
            "retries": self.retries,
            "startPeriod": self.start_period_seconds,
        }


@dataclass(frozen=True, kw_only=True)
class AdotSidecar:
    """The AWS Distro for OpenTelemetry collector as a sidecar (traces -> X-Ray)."""

    image: str
    #: ``None``: the image's built-in ``ecs-xray.yaml``. Otherwise an SSM parameter (name or
    #: ARN, in the environment's account) holding the whole collector configuration.
    config_ssm_parameter: str | None = None
    cpu: int = 64
    memory_mib: int = 256
    log_stream_prefix: str = "otel"
    essential: bool = False
    #: Run as a non-root uid. The collector image's own user is ``aoc`` (uid 10001); setting
    #: it explicitly makes the task definition say so (the policy pack cannot see an image's
    #: USER). Not verified against the image here (no registry access): check on upgrade.
    user: str = "10001"

    def __post_init__(self) -> None:
        repository, _ = parse_digest_ref(self.image, field_name="adot.image")
        if repository != ADOT_REPOSITORY:
            raise TaskDefinitionError(
                f"adot.image: {repository!r} is not the ADOT collector; use "
                f"'{ADOT_REPOSITORY}@sha256:<digest>'"
            )
        if self.cpu < 0 or self.memory_mib < 64:
            raise TaskDefinitionError(
                f"adot: cpu {self.cpu} must be >= 0 and memory_mib {self.memory_mib} >= 64"
            )


@dataclass(frozen=True, kw_only=True)
class TaskDefinitionSpec:
    """Everything the task definition is rendered from (validated on construction)."""

    service_name: str
    environment_name: str
    image: str
    cpu: int
    memory: int
    cpu_architecture: Literal["ARM64", "X86_64"]
    aspnetcore_environment: str
    account_id: str
    region: str
    log_group_name: str
    health_check: HealthCheck | None
    log_stream_prefix: str = "app"
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    stop_timeout_seconds: int = 30
    user: str = APP_UID
    container_port: int = CONTAINER_PORT
    adot: AdotSidecar | None = None
    container: str | None = None
    """The container's name (default: ``service_name``); e.g. ``migrate`` for a one-off task."""
    command: tuple[str, ...] = ()
    """The container's ``command`` (exec form, no shell expansion; default: the image's CMD)."""
    listens: bool = True
    """The container serves HTTP on ``container_port``: a port mapping and
    ``ASPNETCORE_HTTP_PORTS``. ``False`` for a one-off task (a migration) that serves nothing."""

    def __post_init__(self) -> None:
        if not CONTAINER_NAME_RE.match(self.service_name):
            raise TaskDefinitionError(
                f"service_name: {self.service_name!r} must be 1-255 letters, digits, '-' or '_'"
            )
        if self.container is not None and not CONTAINER_NAME_RE.match(self.container):
            raise TaskDefinitionError(
                f"container: {self.container!r} must be 1-255 letters, digits, '-' or '_'"
            )
        if isinstance(self.command, str) or not all(
            isinstance(part, str) and part for part in self.command
        ):
            raise TaskDefinitionError(
                f"command: {self.command!r} must be a list of non-empty strings (exec form)"
            )
        if not self.environment_name:
            raise TaskDefinitionError("environment_name must not be empty")
        parse_digest_ref(self.image)
        if error := validate_fargate_size(self.cpu, self.memory):
            raise TaskDefinitionError(error)
        if self.cpu_architecture not in ("ARM64", "X86_64"):
            raise TaskDefinitionError(
                f"cpu_architecture: {self.cpu_architecture!r} is not ARM64 or X86_64"
            )
        if not ACCOUNT_RE.match(self.account_id):
            raise TaskDefinitionError(f"account_id: {self.account_id!r} is not 12 digits")
        if not REGION_RE.match(self.region):
            raise TaskDefinitionError(f"region: {self.region!r} is not an AWS region code")
        if not LOG_GROUP_RE.match(self.log_group_name):
            raise TaskDefinitionError(
                f"log_group_name: {self.log_group_name!r} is not a CloudWatch log group name"
            )
        if not self.aspnetcore_environment or not re.match(
            r"^[A-Za-z][A-Za-z0-9_.-]*$", self.aspnetcore_environment
        ):
            raise TaskDefinitionError(
                f"aspnetcore_environment: {self.aspnetcore_environment!r} must be a word "
                "such as Development, Staging or Production"
            )
        if not 1 <= self.stop_timeout_seconds <= FARGATE_MAX_STOP_TIMEOUT:
            raise TaskDefinitionError(
                f"stop_timeout_seconds: {self.stop_timeout_seconds} must be 1.."
                f"{FARGATE_MAX_STOP_TIMEOUT} (Fargate's maximum)"
            )
        user = USER_RE.match(self.user)
        if not user:
            raise TaskDefinitionError(
                f"user: {self.user!r} must be a numeric 'uid' or 'uid:gid' (e.g. {APP_UID!r}); "
                "a name cannot be checked for root"
            )
        if user.group("uid") == "0":
            raise TaskDefinitionError(f"user: {self.user!r} is root; use {APP_UID!r}")
        if self.container_port != CONTAINER_PORT:
            raise TaskDefinitionError(
                f"container_port: {self.container_port} - the runtime image listens on "
                f"{CONTAINER_PORT} (ASPNETCORE_HTTP_PORTS); keep {CONTAINER_PORT}"
            )
        self._validate_environment()
        self._validate_secrets()
        if self.adot is not None:
            if self.adot.memory_mib >= self.memory or self.adot.cpu >= self.cpu:
                raise TaskDefinitionError(
                    f"adot: cpu {self.adot.cpu}/memory {self.adot.memory_mib} MiB must leave "
                    f"room for the app in a {self.cpu}/{self.memory} task"
                )
            if self.adot.config_ssm_parameter is not None:
                self._check_reference("adot.config_ssm_parameter", self.adot.config_ssm_parameter)

    def _validate_environment(self) -> None:
        for name, value in self.environment.items():
            key = f"environment.{name}"
            if not ENV_NAME_RE.match(name):
                raise TaskDefinitionError(
                    f"{key}: {name!r} is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*; "
                    "use '__' for nested .NET configuration keys)"
                )
            if name.upper() in RESERVED_ENV:
                raise TaskDefinitionError(
                    f"{key}: {name} is set by the renderer; configure it through its own field"
                )
            if not isinstance(value, str):
                raise TaskDefinitionError(f"{key}: value must be a string, got {value!r}")
            if reason := credential_reason(name, value):
                raise TaskDefinitionError(
                    f"{key}: looks like a credential ({reason}); plain environment variables "
                    "are visible to anyone who can describe the task definition - put it in "
                    "Secrets Manager or SSM and reference it under 'secrets' instead"
                )

    def _validate_secrets(self) -> None:
        for name, value_from in self.secrets.items():
            key = f"secrets.{name}"
            if not ENV_NAME_RE.match(name):
                raise TaskDefinitionError(f"{key}: {name!r} is not a valid variable name")
            if name.upper() in RESERVED_ENV:
                raise TaskDefinitionError(f"{key}: {name} is set by the renderer")
            if name in self.environment:
                raise TaskDefinitionError(
                    f"{key}: {name} is also a plain environment variable; keep only one"
                )
            self._check_reference(key, value_from)

    def _check_reference(self, key: str, value_from: str) -> SecretReference:
        ref = parse_secret_reference(value_from, key=key)
        if ref.account_id is not None and ref.account_id != self.account_id:
            raise TaskDefinitionError(
                f"{key}: {value_from!r} is in account {ref.account_id}, not this environment's "
                f"account {self.account_id}; secrets stay account-local - create it here"
            )
        return ref

    # ---- derived ------------------------------------------------------------------------
    @property
    def container_name(self) -> str:
        """The application container's name (``container``, default the service name)."""
        return self.container or self.service_name

    def secret_references(self) -> list[SecretReference]:
        """Every secret reference any container of the task resolves at start."""
        refs = [parse_secret_reference(v) for _, v in sorted(self.secrets.items())]
        if self.adot is not None and self.adot.config_ssm_parameter is not None:
            refs.append(parse_secret_reference(self.adot.config_ssm_parameter))
        return refs


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _pairs(values: Mapping[str, str], value_key: str) -> list[dict[str, str]]:
    return [{"name": k, value_key: values[k]} for k in sorted(values)]


def _log_configuration(spec: TaskDefinitionSpec, stream_prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": spec.log_group_name,
            "awslogs-region": spec.region,
            "awslogs-stream-prefix": stream_prefix,
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def _app_environment(spec: TaskDefinitionSpec) -> dict[str, str]:
    env = dict(spec.environment)
    env["ASPNETCORE_ENVIRONMENT"] = spec.aspnetcore_environment
    if spec.listens:
        env["ASPNETCORE_HTTP_PORTS"] = str(spec.container_port)
    if spec.adot is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_GRPC_ENDPOINT
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
        env["OTEL_SERVICE_NAME"] = spec.service_name
        env.setdefault(
            "OTEL_RESOURCE_ATTRIBUTES", f"deployment.environment.name={spec.environment_name}"
        )
    return env


_TMP_MOUNT = {"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}


def _app_container(spec: TaskDefinitionSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": spec.container_name,
        "image": spec.image,
        "essential": True,
        "environment": _pairs(_app_environment(spec), "value"),
        "secrets": _pairs(spec.secrets, "valueFrom"),
        "logConfiguration": _log_configuration(spec, spec.log_stream_prefix),
        "stopTimeout": spec.stop_timeout_seconds,
        "readonlyRootFilesystem": True,
        "mountPoints": [dict(_TMP_MOUNT)],
        "user": spec.user,
        "linuxParameters": {
            "capabilities": {"drop": ["ALL"]},
            "initProcessEnabled": True,
        },
    }
    if spec.listens:
        container["portMappings"] = [
            {
                "name": "http",
                "containerPort": spec.container_port,
                "protocol": "tcp",
                "appProtocol": "http",
            }
        ]
    if spec.command:
        container["command"] = list(spec.command)
    if spec.health_check is not None:
        container["healthCheck"] = spec.health_check.render()
    if spec.adot is not None:
        container["dependsOn"] = [{"containerName": ADOT_CONTAINER_NAME, "condition": "START"}]
    return container


def _adot_container(spec: TaskDefinitionSpec, adot: AdotSidecar) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": ADOT_CONTAINER_NAME,
        "image": adot.image,
        "essential": adot.essential,
        "user": adot.user,
        "cpu": adot.cpu,
        "memory": adot.memory_mib,
        "environment": [{"name": "AWS_REGION", "value": spec.region}],
        "logConfiguration": _log_configuration(spec, adot.log_stream_prefix),
        "healthCheck": {
            "command": ["CMD", "/healthcheck"],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 10,
        },
        "readonlyRootFilesystem": True,
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
    }
    if adot.config_ssm_parameter is None:
        container["command"] = [f"--config={ADOT_XRAY_CONFIG}"]
    else:
        container["secrets"] = [
            {"name": "AOT_CONFIG_CONTENT", "valueFrom": adot.config_ssm_parameter}
        ]
    return container


def container_definitions(spec: TaskDefinitionSpec) -> list[dict[str, Any]]:
    """The ``containerDefinitions`` list (ECS wire format), app container first."""
    containers = [_app_container(spec)]
    if spec.adot is not None:
        containers.append(_adot_container(spec, spec.adot))
    return containers


def container_definitions_json(spec: TaskDefinitionSpec) -> str:
    """:func:`container_definitions` as stable JSON (sorted keys: re-renders never diff)."""
    return json.dumps(container_definitions(spec), sort_keys=True, separators=(",", ":"))


def task_definition_input(
    spec: TaskDefinitionSpec, *, family: str, execution_role_arn: str, task_role_arn: str
) -> dict[str, Any]:
    """The full ``RegisterTaskDefinition`` input for ``spec``."""
    if not CONTAINER_NAME_RE.match(family):
        raise TaskDefinitionError(f"family: {family!r} must be 1-255 letters, digits, '-' or '_'")
    for key, value in (
        ("execution_role_arn", execution_role_arn),
        ("task_role_arn", task_role_arn),
    ):
        if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", value):
            raise TaskDefinitionError(f"{key}: {value!r} is not an IAM role ARN")
    return {
        "family": family,
        "taskRoleArn": task_role_arn,
        "executionRoleArn": execution_role_arn,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(spec.cpu),
        "memory": str(spec.memory),
        "runtimePlatform": {
            "cpuArchitecture": spec.cpu_architecture,
            "operatingSystemFamily": "LINUX",
        },
        "volumes": [{"name": TMP_VOLUME}],
        "containerDefinitions": container_definitions(spec),
    }
