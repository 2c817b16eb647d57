"""Typed, validated stack configuration: one model per stack role.

A stack file (``Pulumi.<stack>.yaml``) holds keys in the ``dotnet-delivery:`` namespace
(plus ``aws:region``). :func:`load` turns them into a :class:`ToolingConfig` or an
:class:`EnvironmentConfig`, or raises :class:`ConfigError` carrying *every* problem at once,
one line per bad key::

    dotnet-delivery:service.cpu: 300 is not a Fargate CPU size; use one of 256, 512, …

Keys are camelCase in YAML (``loadBalancer.certificateArn``) and snake_case in Python.
Unknown keys are errors (with a "did you mean" hint) so a typo never silently falls back to
a default. Every field below documents its default; the defaults are the safe ones.

Secrets (``secure:`` values in the stack file) arrive decrypted from the Pulumi CLI and are
held as :class:`pydantic.SecretStr`, so they never appear in reprs, errors or the preview.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components import naming
from components.render import versioning

NAMESPACE = "dotnet-delivery"
PROJECT = NAMESPACE

# --------------------------------------------------------------------------------------
# Scalar types
# --------------------------------------------------------------------------------------
ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
REGION_RE = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov)?-[a-z]+-\d$|^cn-[a-z]+-\d$")
ARN_RE = re.compile(r"^arn:aws[a-zA-Z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _account_id(value: str) -> str:
    if not ACCOUNT_ID_RE.match(value):
        raise ValueError(f"{value!r} is not an AWS account id; use exactly 12 digits (quoted)")
    return value


def _region(value: str) -> str:
    if not REGION_RE.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (for example eu-west-1)")
    return value


def _arn(value: str) -> str:
    if not ARN_RE.match(value):
        raise ValueError(f"{value!r} is not an ARN (arn:aws:<service>:<region>:<account>:…)")
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None
    return value


def _digest(value: str) -> str:
    if not DIGEST_RE.match(value):
        raise ValueError(f"{value!r} is not an image digest; use sha256:<64 lowercase hex>")
    return value


def _service_name(value: str) -> str:
    if not naming.SERVICE_NAME_RE.match(value) or len(value) > naming.SERVICE_NAME_MAX:
        raise ValueError(
            f"{value!r} is not a service name; use lowercase letters, digits and single "
            f"hyphens, starting with a letter, at most {naming.SERVICE_NAME_MAX} characters"
        )
    return value


def _environment_name(value: str) -> str:
    if value == naming.TOOLING:
        raise ValueError("'tooling' is the tooling stack, not an environment")
    if not naming.ENVIRONMENT_NAME_RE.match(value) or len(value) > naming.ENVIRONMENT_NAME_MAX:
        raise ValueError(
            f"{value!r} is not an environment name; use lowercase letters and digits, "
            f"starting with a letter, at most {naming.ENVIRONMENT_NAME_MAX} characters"
        )
    return value


AccountId = Annotated[str, AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
Arn = Annotated[str, AfterValidator(_arn)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Digest = Annotated[str, AfterValidator(_digest)]
ServiceName = Annotated[str, AfterValidator(_service_name)]
EnvironmentName = Annotated[str, AfterValidator(_environment_name)]
Percent = Annotated[int, Field(ge=1, le=99)]


class Model(BaseModel):
    """Base: camelCase keys in YAML, unknown keys refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )


# --------------------------------------------------------------------------------------
# Shared sections
# --------------------------------------------------------------------------------------
class AppConfig(Model):
    """``dotnet-delivery:app`` - who the service is; drives names and the four tags."""

    name: ServiceName
    """Service name (``orders-api``): the prefix of every physical name. Required."""
    owner: str = Field(min_length=1, max_length=256)
    """``Owner`` tag: the owning team. Required."""
    cost_center: str = Field(min_length=1, max_length=256)
    """``CostCenter`` tag. Required."""
    extra_tags: dict[str, str] = Field(default_factory=dict)
    """More tags for every resource (default none); never overrides the four."""


class Accounts(Model):
    """``dotnet-delivery:accounts`` - the tooling account and one id per environment.

    All ids may be equal (single-account mode: no cross-account roles are created).
    """

    tooling: AccountId
    """The tooling (shared services) account id. Required."""
    environments: dict[EnvironmentName, AccountId] = Field(min_length=1)
    """Environment name → account id, in promotion order (dev, stage, prod)."""


# --------------------------------------------------------------------------------------
# Environment stacks
# --------------------------------------------------------------------------------------
class AdotConfig(Model):
    enabled: bool = False
    """Run the ADOT collector sidecar (OTLP → X-Ray). Default off."""
    image: str | None = None
    """Collector image pinned by digest (``…/aws-otel-collector@sha256:…``).
    Required when enabled: every image in a task definition is pinned (policy pack)."""

    @model_validator(mode="after")
    def _check(self) -> AdotConfig:
        # One rule for digest references: the task-definition renderer's.
        from components.render.task_definition import DIGEST_REF_RE

        if self.enabled and not (self.image and DIGEST_REF_RE.match(self.image)):
            raise _field_error(
                "image",
                self.image,
                "must be the collector image pinned by digest (<repository>@sha256:<64 hex>) "
                "when adot.enabled is true",
            )
        return self


_SG_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{1,255}$")


class EgressRuleConfig(Model):
    """One entry of ``dotnet-delivery:service.egress``: where the tasks (and the migration
    task, which shares their security group) may connect besides HTTPS (443, always open)."""

    cidr: Cidr
    """Destination CIDR (IPv4 or IPv6), e.g. the VPC CIDR for a database inside it. Required."""
    port: int = Field(ge=1, le=65535)
    """Destination port, e.g. 5432 for PostgreSQL. Required."""
    protocol: Literal["tcp", "udp"] = "tcp"
    """``tcp`` (default) or ``udp``."""
    description: str
    """What the rule is for (shown in the console). Required; AWS's rule-description
    characters, at most 255."""

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if not _SG_DESCRIPTION.match(value):
            raise ValueError(
                f"{value!r} is not a security-group rule description: 1-255 characters of "
                "letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*"
            )
        return value


class ServiceConfig(Model):
    """``dotnet-delivery:service`` - the ECS service's shape in this environment."""

    cpu: int = 512
    """Fargate CPU units (default 512). Must pair with ``memory`` per AWS's table."""
    memory: int = 1024
    """Fargate memory in MiB (default 1024)."""
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"
    """Graviton (ARM64, default: cheaper) or X86_64. ARM64 needs linux/arm64 in the image."""
    desired_count: int = Field(default=2, ge=1, le=1000)
    """Tasks at first deploy (default 2). Autoscaling owns it afterwards."""
    min_capacity: int = Field(default=2, ge=1, le=1000)
    """Autoscaling minimum (default 2)."""
    max_capacity: int = Field(default=4, ge=1, le=1000)
    """Autoscaling maximum (default 4)."""
    cpu_target_percent: int = Field(default=60, ge=10, le=90)
    """Target tracking on average CPU (default 60 %)."""
    requests_per_target: int = Field(default=1000, ge=1)
    """Target tracking on ALB requests per target per minute (default 1000)."""
    aspnetcore_environment: str | None = None
    """``ASPNETCORE_ENVIRONMENT`` (default: Development/Staging/Production by env name)."""
    environment_variables: dict[str, str] = Field(default_factory=dict)
    """Plain, non-secret variables. Credential-looking names/values are refused."""
    secrets: dict[str, str] = Field(default_factory=dict)
    """Variable name → Secrets Manager / SSM reference in this environment's account."""
    stop_timeout_seconds: int = Field(default=30, ge=2, le=120)
    """Graceful shutdown window after SIGTERM (default 30 s; Fargate max 120)."""
    health_check_command: list[str] | None = None
    """Container health-check command in ECS exec form: ``CMD`` first, then a program that
    exists in the image, e.g. ``[CMD, dotnet, /app/OrdersApi.dll, --healthcheck,
    "http://localhost:8080/health/live"]`` (the sample app's self-probe). Chiseled images have
    no shell, curl or wget, so ``CMD-SHELL`` and those tools are refused. Default: unset, no
    container health check (the load balancer's target-group check alone)."""
    log_retention_days: int = 30
    """Days to keep ``/ecs/<env>/<service>`` logs (default 30)."""
    log_kms_key_arn: Arn | None = None
    """Customer KMS key for the log group (default: a key made by the stack)."""
    adot: AdotConfig = Field(default_factory=AdotConfig)
    secrets_kms_key_arns: list[Arn] = Field(default_factory=list)
    """Customer KMS keys (key ARNs, not aliases, in this environment's account and Region)
    that encrypt the referenced ``secrets``; the execution role may ``kms:Decrypt`` with them
    via Secrets Manager/SSM only. Default empty: the secrets use the AWS-managed key."""
    egress: list[EgressRuleConfig] = Field(default_factory=list)
    """Extra egress from the tasks' security group (``{cidr, port, protocol, description}``),
    e.g. the database: ``{cidr: 10.0.0.0/16, port: 5432, description: PostgreSQL}``. Default
    empty: HTTPS (443) out only. The migration task uses the same group."""

    @model_validator(mode="after")
    def _check(self) -> ServiceConfig:
        # The Fargate size table lives with the task-definition renderer (one place).
        from components.render.task_definition import FARGATE_SIZES, validate_fargate_size

        errors: list[_FieldError] = []
        if self.cpu not in FARGATE_SIZES:
            sizes = ", ".join(str(c) for c in FARGATE_SIZES)
            errors.append(
                _field_error("cpu", self.cpu, f"is not a Fargate CPU size; use one of {sizes}")
            )
        elif problem := validate_fargate_size(self.cpu, self.memory):
            errors.append(_field_error("memory", self.memory, problem))
        if self.min_capacity > self.max_capacity:
            errors.append(
                _field_error(
                    "minCapacity", self.min_capacity, f"exceeds maxCapacity {self.max_capacity}"
                )
            )
        if not self.min_capacity <= self.desired_count <= self.max_capacity:
            errors.append(
                _field_error(
                    "desiredCount",
                    self.desired_count,
                    f"must lie between minCapacity {self.min_capacity} and "
                    f"maxCapacity {self.max_capacity}",
                )
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            errors.append(
                _field_error(
                    "logRetentionDays",
                    self.log_retention_days,
                    f"is not a CloudWatch retention; use one of {_RETENTIONS}",
                )
            )
        command = self.health_check_command
        if command is not None and (len(command) < 2 or command[0] != "CMD"):
            errors.append(
                _field_error(
                    "healthCheckCommand",
                    command,
                    "must be ECS exec form: CMD first, then the program and its arguments "
                    "(chiseled images have no shell for CMD-SHELL)",
                )
            )
        seen: set[tuple[str, int, str]] = set()
        for rule in self.egress:
            key = (str(ipaddress.ip_network(rule.cidr)), rule.port, rule.protocol)
            if key in seen:
                errors.append(
                    _field_error(
                        "egress",
                        f"{rule.protocol}/{rule.port} to {rule.cidr}",
                        "is listed twice; each destination, port and protocol once",
                    )
                )
            seen.add(key)
        overlap = set(self.environment_variables) & set(self.secrets)
        if overlap:
            errors.append(
                _field_error(
                    "secrets", sorted(overlap), "names are also plain environmentVariables"
                )
            )
        _raise_all(errors)
        return self


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
_RETENTIONS = ", ".join(str(d) for d in LOG_RETENTION_DAYS)


class NetworkConfig(Model):
    """``dotnet-delivery:network`` - a VPC made by the stack, or existing ids."""

    vpc_id: str | None = None
    """Existing VPC id. With it, both subnet lists are required. Default: create a VPC."""
    private_subnet_ids: list[str] = Field(default_factory=list)
    """With ``vpcId``: at least two private subnets (tasks, hooks). Default none."""
    public_subnet_ids: list[str] = Field(default_factory=list)
    """With ``vpcId``: at least two public subnets (internet-facing ALB). Default none."""
    cidr_block: Cidr = "10.0.0.0/16"
    """CIDR of the VPC the stack creates (default 10.0.0.0/16)."""
    availability_zones: int = Field(default=2, ge=2, le=3)
    """AZs for the VPC the stack creates (default 2)."""
    nat_gateways: Literal["single", "onePerAz"] | None = None
    """``single`` (cheap) or ``onePerAz`` (resilient). Default: onePerAz in prod, else single."""

    @model_validator(mode="after")
    def _check(self) -> NetworkConfig:
        if self.vpc_id:
            if not re.match(r"^vpc-[0-9a-f]{8,17}$", self.vpc_id):
                raise _field_error("vpcId", self.vpc_id, "is not a VPC id (vpc-…)")
            for key, ids in (
                ("privateSubnetIds", self.private_subnet_ids),
                ("publicSubnetIds", self.public_subnet_ids),
            ):
                if len(ids) < 2:
                    raise _field_error(key, ids, "needs at least two subnet ids with vpcId")
                for sid in ids:
                    if not re.match(r"^subnet-[0-9a-f]{8,17}$", sid):
                        raise _field_error(key, sid, "is not a subnet id (subnet-…)")
        elif self.private_subnet_ids or self.public_subnet_ids:
            raise _field_error("vpcId", None, "is required when subnet ids are given")
        return self


class TargetHealthConfig(Model):
    path: str = "/health/ready"
    """Target-group health check path (default the readiness endpoint)."""
    matcher: str = "200"
    """HTTP codes that count as healthy (default 200)."""
    interval_seconds: int = Field(default=15, ge=5, le=300)
    """Seconds between checks (default 15)."""
    timeout_seconds: int = Field(default=5, ge=2, le=120)
    """Seconds before a check fails (default 5; below the interval)."""
    healthy_threshold: int = Field(default=2, ge=2, le=10)
    """Passing checks before a target is healthy (default 2)."""
    unhealthy_threshold: int = Field(default=3, ge=2, le=10)
    """Failing checks before a target is unhealthy (default 3)."""

    @model_validator(mode="after")
    def _check(self) -> TargetHealthConfig:
        if self.timeout_seconds >= self.interval_seconds:
            raise _field_error(
                "timeoutSeconds", self.timeout_seconds, "must be less than intervalSeconds"
            )
        if not self.path.startswith("/"):
            raise _field_error("path", self.path, "must start with /")
        return self


TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)


class LoadBalancerConfig(Model):
    """``dotnet-delivery:loadBalancer`` - ALB, listeners and target groups."""

    certificate_arn: Arn
    """ACM certificate for the 443 and 8443 listeners. Required."""
    host_name: str | None = None
    """The name the certificate is for (``orders.example.com``). Set, the smoke-test hook
    sends it as Host and TLS SNI and verifies the certificate against it; unset, the hook
    cannot verify TLS (it calls the ALB's own DNS name) and preview warns. Default unset."""
    internal: bool = False
    """Internal ALB instead of internet-facing (default internet-facing)."""
    ingress_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"])
    """Who may reach 443 (and 80, which only redirects). Default everyone."""
    test_listener_cidrs: list[Cidr] = Field(min_length=1)
    """Who may reach the 8443 test listener. Required; never 0.0.0.0/0. The smoke-test hook
    is admitted by its security group (internal ALB) or, with a stack-created VPC, by the NAT
    gateways' public IPs (added automatically). With an existing VPC (``network.vpcId``) and
    an internet-facing ALB, the hook reaches the ALB from that VPC's NAT gateway Elastic
    IPs: list each one here as ``x.x.x.x/32`` or every smoke test fails."""
    ssl_policy: Literal[TLS_POLICIES] = "ELBSecurityPolicy-TLS13-1-2-2021-06"  # type: ignore[valid-type]
    """TLS policy (default TLS 1.3 + 1.2)."""
    deletion_protection: bool | None = None
    """Default: on in production, off elsewhere."""
    deregistration_delay_seconds: int = Field(default=30, ge=0, le=3600)
    """Connection draining for old targets (default 30 s)."""
    idle_timeout_seconds: int = Field(default=60, ge=1, le=4000)
    """ALB idle timeout (default 60 s)."""
    access_log_retention_days: int = Field(default=90, ge=1)
    """Days to keep ALB access logs in their bucket (default 90)."""
    health_check: TargetHealthConfig = Field(default_factory=TargetHealthConfig)
    """Target-group health check (defaults above: ``/health/ready``)."""

    @field_validator("host_name")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not re.match(
            r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", value
        ):
            raise ValueError(
                f"{value!r} is not a DNS host name (lowercase, e.g. orders.example.com)"
            )
        return value

    @field_validator("test_listener_cidrs")
    @classmethod
    def _no_world(cls, value: list[str]) -> list[str]:
        for cidr in value:
            if ipaddress.ip_network(cidr).prefixlen == 0:
                raise ValueError(f"{cidr} opens the test listener to the internet; name CIDRs")
        return value


class DeploymentConfig(Model):
    """``dotnet-delivery:deployment`` - the blue/green engine and how traffic moves."""

    engine: Literal["codedeploy", "ecs"] = "ecs"
    """``ecs`` (native ECS blue/green, default) or ``codedeploy``."""
    strategy: Literal["allAtOnce", "canary", "linear"] = "canary"
    """Traffic shift (default canary). ``allAtOnce`` in production needs allowAllAtOnce."""
    canary_percent: Percent = 10
    """Canary: share of traffic first shifted (default 10 %)."""
    canary_minutes: int = Field(default=5, ge=1, le=2880)
    """Canary: minutes before the rest shifts (default 5)."""
    linear_percent: Percent = 10
    """Linear: share shifted per step (default 10 %)."""
    linear_minutes: int = Field(default=1, ge=1, le=2880)
    """Linear: minutes between steps (default 1)."""
    predefined_config: str | None = None
    """CodeDeploy only: a predefined ``CodeDeployDefault.ECS…`` name instead of the above."""
    bake_time_minutes: int = Field(default=5, ge=0, le=1440)
    """ECS engine: minutes both colours run after the shift before blue goes (default 5)."""
    termination_wait_minutes: int = Field(default=5, ge=0, le=2880)
    """CodeDeploy: minutes before the old tasks terminate (default 5)."""
    ready_wait_minutes: int = Field(default=0, ge=0, le=2880)
    """CodeDeploy: minutes to wait for a manual go before rerouting (0 = continue)."""
    hook_timeout_seconds: int = Field(default=300, ge=30, le=900)
    """Smoke-test hook Lambda timeout (default 300 s)."""
    smoke_paths: list[str] = Field(default_factory=lambda: ["/health/ready"])
    """Paths the smoke-test hook calls on the test listener (default readiness)."""
    admission_hook: bool = False
    """ECS engine: PRE_SCALE_UP hook that refuses images not pinned by digest (default off)."""
    allow_all_at_once: bool = False
    """Explicit opt-in for ``allAtOnce`` in production (default refused)."""


class AlarmsConfig(Model):
    """``dotnet-delivery:alarms`` - the alarms that roll a release back."""

    target_5xx_threshold: int = Field(default=10, ge=1, alias="target5xxThreshold")
    """5xx responses from targets per period that count as bad (default 10)."""
    latency_p99_seconds: float = Field(default=2.0, gt=0)
    """Target response time p99 that counts as bad (default 2.0 s)."""
    latency_p95_seconds: float = Field(default=1.0, gt=0)
    """Target response time p95 that counts as bad (default 1.0 s; at most p99)."""
    period_seconds: Literal[10, 30, 60, 300] = 60
    """Alarm period (default 60 s)."""
    evaluation_periods: int = Field(default=3, ge=1, le=20)
    """M of N: N periods looked at (default 3) …"""
    datapoints_to_alarm: int = Field(default=2, ge=1, le=20)
    """… M of them breaching (default 2), so one transient 502 never fails a release."""

    @model_validator(mode="after")
    def _check(self) -> AlarmsConfig:
        if self.datapoints_to_alarm > self.evaluation_periods:
            raise _field_error(
                "datapointsToAlarm",
                self.datapoints_to_alarm,
                f"exceeds evaluationPeriods {self.evaluation_periods}",
            )
        if self.latency_p95_seconds > self.latency_p99_seconds:
            raise _field_error(
                "latencyP95Seconds", self.latency_p95_seconds, "exceeds latencyP99Seconds"
            )
        return self


class BudgetConfig(Model):
    """``dotnet-delivery:budget`` - an AWS Budgets cost budget filtered by the tags."""

    monthly_limit_usd: float = Field(gt=0)
    """Monthly cost limit in USD. Required with a budget."""
    alert_threshold_percent: int = Field(default=80, ge=1, le=1000)
    """Alert at this share of the limit, actual and forecast (default 80)."""
    subscriber_emails: list[str] = Field(min_length=1)
    """Who gets the alerts. Required with a budget."""

    @field_validator("subscriber_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
                raise ValueError(f"{email!r} is not an email address")
        return value


class MigrationConfig(Model):
    """``dotnet-delivery:migration`` - EF Core bundle run before the deploy (default off)."""

    enabled: bool = False
    """Run the migration task before each deploy of this environment (default off)."""
    command: list[str] = Field(default_factory=lambda: ["/app/efbundle"], min_length=1)
    """Exec-form command of the ``migrate`` container (default ``/app/efbundle``). No shell
    runs it, so ``$VARS`` are not expanded; the bundle reads its connection string from the
    app's configuration (``ConnectionStrings__…`` from ``service.secrets``). The release
    image must contain the bundle: ``dotnet ef migrations bundle -o /app/efbundle`` in the
    service's Dockerfile (the rendered one does not build it)."""
    timeout_minutes: int = Field(default=15, ge=1, le=120)
    """Stop the task and fail the pipeline after this long (default 15)."""


class EnvironmentConfig(Model):
    """An environment stack (dev / stage / prod): ``dotnet-delivery:role: environment``."""

    role: Literal["environment"]
    region: Region
    app: AppConfig
    accounts: Accounts
    environment: EnvironmentName
    """This stack's environment; a key of ``accounts.environments``. Required."""
    production: bool | None = None
    """Production guard rails (default: true when the environment is named prod)."""
    tooling_stack: str | None = None
    """StackReference name of the tooling stack (default ``<org>/dotnet-delivery/tooling``)."""
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    load_balancer: LoadBalancerConfig
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    alarms: AlarmsConfig = Field(default_factory=AlarmsConfig)
    budget: BudgetConfig | None = None
    """Monthly cost budget (default none)."""
    migration: MigrationConfig = Field(default_factory=MigrationConfig)

    @property
    def warnings(self) -> list[str]:
        """Settings that are valid but do nothing with this stack's engine (set for the other
        engine, e.g. left over from a switch): worth a look, not an error."""
        d = self.deployment
        only_for = {
            "bake_time_minutes": "ecs",
            "termination_wait_minutes": "codedeploy",
            "ready_wait_minutes": "codedeploy",
        }
        out = []
        for field_name, engine in only_for.items():
            if field_name in d.model_fields_set and d.engine != engine:
                key = DeploymentConfig.model_fields[field_name].alias or field_name
                out.append(
                    f"{NAMESPACE}:deployment.{key}: only applies to engine {engine}; "
                    f"this stack uses {d.engine}, so it has no effect"
                )
        if not self.load_balancer.host_name:
            out.append(
                f"{NAMESPACE}:loadBalancer.hostName: not set; the smoke-test hook calls the "
                "test listener without verifying its certificate (set the certificate's name)"
            )
        return out

    @property
    def is_production(self) -> bool:
        return self.production if self.production is not None else self.environment == "prod"

    @property
    def account_id(self) -> str:
        return self.accounts.environments[self.environment]

    @property
    def names(self) -> naming.Names:
        return naming.Names(self.app.name, self.environment)

    @model_validator(mode="after")
    def _check(self) -> EnvironmentConfig:
        errors: list[_FieldError] = []
        if self.environment not in self.accounts.environments:
            known = ", ".join(self.accounts.environments)
            errors.append(
                _field_error(
                    "environment", self.environment, f"is not in accounts.environments ({known})"
                )
            )
        deployment = self.deployment
        if (
            self.is_production
            and deployment.strategy == "allAtOnce"
            and not deployment.allow_all_at_once
        ):
            errors.append(
                _field_error(
                    "deployment.strategy",
                    "allAtOnce",
                    "is refused in production; use canary or linear, or set "
                    "deployment.allowAllAtOnce: true",
                )
            )
        if deployment.predefined_config and deployment.engine != "codedeploy":
            errors.append(
                _field_error(
                    "deployment.predefinedConfig",
                    deployment.predefined_config,
                    "only applies to engine codedeploy",
                )
            )
        account = self.accounts.environments.get(self.environment, "<account>")
        key_prefix = f"arn:aws:kms:{self.region}:{account}:key/"
        for key in self.service.secrets_kms_key_arns:
            if not key.startswith(key_prefix) or len(key) == len(key_prefix):
                errors.append(
                    _field_error(
                        "service.secretsKmsKeyArns",
                        key,
                        f"is not a KMS key ARN of this environment ({key_prefix}<key-id>)",
                    )
                )
        if deployment.admission_hook and deployment.engine != "ecs":
            errors.append(
                _field_error(
                    "deployment.admissionHook", True, "only applies to engine ecs (PRE_SCALE_UP)"
                )
            )
        _raise_all(errors)
        return self


# --------------------------------------------------------------------------------------
# Tooling stack
# --------------------------------------------------------------------------------------
Platform = Literal["linux/amd64", "linux/arm64"]
PLATFORMS: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
Severity = Literal["Low", "Moderate", "High", "Critical"]


def _default_platforms() -> list[Platform]:
    return list(PLATFORMS)


def _default_severities() -> list[Severity]:
    return ["High", "Critical"]


class ImageConfig(Model):
    """``dotnet-delivery:image`` - the ECR repository and the initial image."""

    context: str = "examples/orders-api"
    """Build context, relative to the project root (default the sample service)."""
    project_path: str = "src/OrdersApi/OrdersApi.csproj"
    """Entry project inside the context (for the rendered Dockerfile)."""
    dockerfile: str | None = None
    """Service Dockerfile inside the context (default: its own ``Dockerfile`` if present,
    else the rendered recommended one)."""
    version: str | None = None
    """SemVer (default: read from ``<context>/VERSION``). Never ``latest``."""
    build_number: int = Field(default=0, ge=0, le=versioning.MAX_BUILD_NUMBER)
    """Build number in the initial image's tag (default 0; CodeBuild numbers later ones)."""
    git_sha: str | None = None
    """Commit of the initial image (default: ``git rev-parse HEAD`` of the context)."""
    platforms: list[Platform] = Field(default_factory=_default_platforms, min_length=1)
    """Platforms of the manifest list (default both)."""
    native_builders: dict[Literal["linux/amd64", "linux/arm64"], str] = Field(default_factory=dict)
    """Per-platform BuildKit endpoints (``tcp://…``): one Image per platform + an Index,
    no QEMU. Default none (one multi-platform build)."""
    dotnet_version: Literal["8.0", "9.0", "10.0"] = "10.0"
    """.NET version of the SDK/runtime images (default 10.0)."""
    chiseled_extra: bool = False
    """Use ``-noble-chiseled-extra`` (ICU/globalization). Default off."""
    sdk_digest: Digest | None = None
    """Pin the SDK base image by digest (default: tag only)."""
    runtime_digest: Digest | None = None
    """Pin the chiseled runtime base image by digest (default: tag only)."""
    build_on_preview: bool = False
    """Build during ``pulumi preview`` (default off: previews stay fast)."""
    nuget_feed_secret: SecretStr | None = None
    """A NuGet.config with feed credentials, as a ``secure:`` value; passed as a BuildKit
    secret, never a build arg. Default none."""
    dev_tag_prefix: str | None = None
    """Mutable tags allowed only under this prefix (``IMMUTABLE_WITH_EXCLUSION``)."""
    keep_release_images: int = Field(default=50, ge=1, le=10000)
    """Release images kept by the lifecycle policy (default 50)."""
    untagged_expiry_days: int = Field(default=7, ge=1, le=3650)
    """Days before untagged and dev images expire (default 7)."""
    enhanced_scanning: bool = False
    """Amazon Inspector enhanced scanning for the registry (default basic scan on push)."""
    kms_key_arn: Arn | None = None
    """Customer KMS key for the repository (default: the stack's artifact key)."""
    initial_digest: Digest | None = None
    """Freeze the bootstrap image: the digest the first ``pulumi up`` built (``pulumi stack
    output imageRef``). Set, the stack stops building and exports ``<repo>@<digest>``, so
    later ``pulumi up`` runs stay quiet when the build context changes (docker-build would
    otherwise rebuild and push the same immutable release tag, which ECR refuses). Default
    unset: build (the first bring-up)."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return versioning.validate_version(value)
        except versioning.TagError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("git_sha")
    @classmethod
    def _sha(cls, value: str | None) -> str | None:
        if value is not None and not versioning.GIT_SHA_RE.match(value.lower()):
            raise ValueError(f"{value!r} is not a git commit id (7-40 hex characters)")
        return value

    @field_validator("dev_tag_prefix")
    @classmethod
    def _dev_prefix(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^[a-z][a-z0-9._-]{0,30}$", value) or value.lower() == "latest":
            raise ValueError(
                f"{value!r} must start with a letter (release tags start with a digit) "
                "and may hold lowercase letters, digits, '.', '_' and '-'"
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> ImageConfig:
        for platform in self.native_builders:
            if platform not in self.platforms:
                raise _field_error("nativeBuilders", platform, "is not in platforms")
        if self.native_builders and set(self.native_builders) != set(self.platforms):
            raise _field_error(
                "nativeBuilders", sorted(self.native_builders), "must name every platform"
            )
        return self


class TrivyPolicy(Model):
    ignore_unfixed: bool = True
    """Skip vulnerabilities with no fixed version (default on)."""
    exceptions_file: str = ".trivy-exceptions.json"
    """JSON file in the source repo naming excepted CVEs (release branches only):
    ``{"exceptions": [{"id": "CVE-…", "reason": "…", "expires": "YYYY-MM-DD"}]}``, each with a
    reason and an expiry date (the build's Trivy gate reads it with Python's ``json``)."""


class SonarConfig(Model):
    host_url: str
    """SonarQube/SonarCloud URL. Required with sonar."""
    project_key: str
    """The Sonar project key. Required with sonar."""
    token_secret_arn: Arn
    """Secrets Manager secret holding the token (read via env.secrets-manager)."""


class BuildConfig(Model):
    """``dotnet-delivery:build`` - the CodeBuild projects."""

    compute_type: Literal[
        "BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"
    ] = "BUILD_GENERAL1_MEDIUM"
    """CodeBuild compute type (default MEDIUM; ARM builds use LARGE)."""
    timeout_minutes: int = Field(default=30, ge=5, le=480)
    """Build timeout (default 30; batches get twice that)."""
    concurrent_build_limit: int = Field(default=2, ge=1, le=100)
    """Concurrent builds of the project (default 2)."""
    log_retention_days: int = 30
    """Days to keep build and pipeline step logs (default 30)."""
    qemu_fallback: bool = False
    """Build both platforms on one x86 builder under QEMU (slow) instead of native fan-out."""
    vulnerable_package_severities: list[Severity] = Field(default_factory=_default_severities)
    """``dotnet list package --vulnerable`` severities that fail the build."""
    trivy: TrivyPolicy = Field(default_factory=TrivyPolicy)
    """Trivy gate settings (defaults above)."""
    sonar: SonarConfig | None = None
    """Optional Sonar analysis (default off)."""
    test_projects: str = "**/*Tests.csproj"
    """Glob of the test projects ``dotnet test`` runs (default ``**/*Tests.csproj``)."""
    vpc_id: str | None = None
    """Run builds in this VPC (with ``subnetIds``; default: no VPC)."""
    subnet_ids: list[str] = Field(default_factory=list)
    """Private subnets for VPC builds (with ``vpcId``)."""
    estimate_minutes: int = Field(default=8, ge=1, le=480)
    """Expected commit-to-artifact time, for the release timeline (default 8)."""

    @model_validator(mode="after")
    def _check(self) -> BuildConfig:
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise _field_error(
                "logRetentionDays",
                self.log_retention_days,
                f"is not a CloudWatch retention; use one of {_RETENTIONS}",
            )
        if bool(self.vpc_id) != bool(self.subnet_ids):
            raise _field_error("vpcId", self.vpc_id, "and subnetIds go together")
        return self


class SourceConfig(Model):
    provider: Literal["GitHub", "GitLab", "Bitbucket"] = "GitHub"
    """GitHub (default), GitLab or Bitbucket."""
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+$")
    """``owner/name`` of the service repository. Required."""
    branch: str = "main"
    """Branch whose pushes start the pipeline (default main)."""
    connection_arn: Arn | None = None
    """An existing CodeConnections connection (default: the stack creates one; a human
    completes the handshake once in the console - AWS requires it)."""
    full_clone: bool = True
    """Full clone (git history for gitleaks and versioning). Default on."""


class PipelineEnvironment(Model):
    """One promotion step: deploy, test, and (optionally) approve before the next."""

    name: EnvironmentName
    """An environment of ``accounts.environments``, in promotion order. Required."""
    test_command: str | None = None
    """Command run against the environment after the deploy (smoke/integration/validation),
    from the source checkout, under a tester role with no deploy rights; ``ENDPOINT`` and
    ``BASE_URL`` hold ``https://<ALB DNS name>`` (the certificate names
    ``loadBalancer.hostName``: resolve it to the ALB to verify TLS). Default none."""
    migrate: bool = False
    """Run the EF Core migration bundle before deploying (default off)."""
    approval_before: bool = False
    """Manual approval before deploying here (default off; on for prod in the examples)."""
    test_estimate_minutes: int = Field(default=3, ge=0, le=240)
    """Expected duration of the test step, for the release timeline (default 3)."""


class ApprovalConfig(Model):
    format: Literal["slack", "teams"] = "slack"
    """Chat message format: slack (default) or teams."""
    webhook_url: SecretStr | None = None
    """Chat webhook URL as a ``secure:`` value; stored in Secrets Manager by the stack."""
    webhook_secret_arn: Arn | None = None
    """…or an existing Secrets Manager secret holding it."""
    timeout_minutes: int = Field(default=1440, ge=5, le=10080)
    """How long an approval waits before it fails (default 1440)."""

    @model_validator(mode="after")
    def _check(self) -> ApprovalConfig:
        if bool(self.webhook_url) == bool(self.webhook_secret_arn):
            raise _field_error(
                "webhookUrl", None, "set exactly one of webhookUrl (secure) or webhookSecretArn"
            )
        return self


class PipelineConfig(Model):
    """``dotnet-delivery:pipeline`` - CodePipeline V2 from commit to prod."""

    source: SourceConfig
    """Where the service's source comes from. Required."""
    environments: list[PipelineEnvironment] = Field(min_length=1)
    """Promotion order (default none: required)."""
    approval: ApprovalConfig
    """The manual approval's chat notification. Required."""
    failure_emails: list[str] = Field(default_factory=list)
    """Emails subscribed to pipeline failure notifications (default none)."""
    lead_time_budget_minutes: int = Field(default=15, ge=1)
    """Commit-to-staging budget, worst case (default 15 = the source document's 10 + 5)."""
    build_budget_minutes: int = Field(default=10, ge=1)
    """Commit-to-artifact target for the build estimate (default 10, the source document's)."""
    staging_budget_minutes: int = Field(default=5, ge=1)
    """Artifact-to-staging target, worst case (default 5, the source document's)."""


class ToolingConfig(Model):
    """The tooling stack: ``dotnet-delivery:role: tooling``."""

    role: Literal["tooling"]
    region: Region
    app: AppConfig
    accounts: Accounts
    image: ImageConfig = Field(default_factory=ImageConfig)
    build: BuildConfig = Field(default_factory=BuildConfig)
    pipeline: PipelineConfig

    @property
    def account_id(self) -> str:
        return self.accounts.tooling

    @property
    def names(self) -> naming.Names:
        return naming.Names(self.app.name, naming.TOOLING)

    @model_validator(mode="after")
    def _check(self) -> ToolingConfig:
        known = list(self.accounts.environments)
        for i, env in enumerate(self.pipeline.environments):
            if env.name not in self.accounts.environments:
                raise _field_error(
                    f"pipeline.environments.{i}.name",
                    env.name,
                    f"is not in accounts.environments ({', '.join(known)})",
                )
        return self


StackConfig = ToolingConfig | EnvironmentConfig


# --------------------------------------------------------------------------------------
# Errors and loading
# --------------------------------------------------------------------------------------
class _FieldError(ValueError):
    def __init__(self, path: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.value = value
        self.message = message


def _field_error(path: str, value: Any, message: str) -> _FieldError:
    return _FieldError(path, value, message)


class _FieldErrors(ValueError):
    """Several independent problems found by one model validator (all reported)."""

    def __init__(self, errors: list[_FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors


def _raise_all(errors: list[_FieldError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise _FieldErrors(errors)


class ConfigError(Exception):
    """Every problem in a stack's configuration, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _fmt_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return "[secret]"
    if isinstance(value, str):
        return json.dumps(value)
    try:
        return json.dumps(value, default=str)
    except TypeError:  # pragma: no cover - defensive
        return repr(value)


def _model_for_loc(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the last key of ``loc`` (for "did you mean")."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return current


def _problems(exc: ValidationError, model: type[BaseModel], raw: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        # model_validator errors arrive with the model's location; ours carry their path.
        ctx_error = error.get("ctx", {}).get("error")
        field_errors = (
            ctx_error.errors
            if isinstance(ctx_error, _FieldErrors)
            else [ctx_error]
            if isinstance(ctx_error, _FieldError)
            else []
        )
        for field_error in field_errors:
            path_parts = [str(p) for p in loc] + field_error.path.split(".")
            problems.append(
                f"{_key(path_parts)}: {_fmt_value(field_error.value)} {field_error.message}"
                if field_error.value is not None
                else f"{_key(path_parts)}: {field_error.message}"
            )
        if field_errors:
            continue
        path_parts = [str(p) for p in loc]
        kind = error["type"]
        if kind == "missing":
            problems.append(f"{_key(path_parts)}: required key is missing")
        elif kind == "extra_forbidden":
            owner = _model_for_loc(model, loc)
            hint = ""
            if owner is not None:
                allowed = sorted(f.alias or n for n, f in owner.model_fields.items())
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                hint += f"; allowed keys: {', '.join(allowed)}"
            problems.append(f"{_key(path_parts)}: unknown key{hint}")
        else:
            message = error["msg"]
            message = re.sub(r"^(Value error|Assertion failed), ", "", message)
            value = error.get("input")
            if isinstance(value, dict):
                problems.append(f"{_key(path_parts)}: {message}")
            else:
                problems.append(f"{_key(path_parts)}: {_fmt_value(value)}: {message}")
    return problems


def _key(parts: list[str]) -> str:
    if not parts:
        return NAMESPACE
    head, *rest = parts
    if head == "region":
        return "aws:region" + ("." + ".".join(rest) if rest else "")
    return f"{NAMESPACE}:{'.'.join([head, *rest])}"


def parse(raw_config: Mapping[str, Any]) -> StackConfig:
    """Validate a stack's raw config (``{"dotnet-delivery:app": {...}, "aws:region": …}``).

    Values may be JSON text (as the Pulumi runtime hands structured config) or plain data.
    Raises :class:`ConfigError` with every problem.
    """
    data: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in raw_config.items():
        namespace, _, name = key.partition(":")
        if key == "aws:region":
            data["region"] = value
            continue
        if namespace != NAMESPACE:
            continue  # other providers' keys (aws:profile, …) are theirs to validate
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                problems.append(f"{key}: is not valid structured config")
                continue
        data[name] = value
    role = data.get("role")
    model: type[BaseModel]
    if role == "tooling":
        model = ToolingConfig
    elif role == "environment":
        model = EnvironmentConfig
    else:
        problems.append(
            f"{NAMESPACE}:role: {_fmt_value(role) if role is not None else 'missing'}: "
            "use tooling or environment"
        )
        raise ConfigError(problems)
    if "region" not in data:
        problems.append("aws:region: required key is missing")
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(p for p in _problems(exc, model, data) if p not in problems)
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_from_pulumi() -> StackConfig:
    """Read the running stack's config through the Pulumi runtime and validate it."""
    from pulumi.runtime import config as runtime_config

    raw: dict[str, Any] = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return parse(raw)


def cross_stack_problems(
    tooling: ToolingConfig, environments: list[EnvironmentConfig | ToolingConfig]
) -> list[str]:
    """Rules that span stacks (checked by ``preview`` over the stack files, and by an
    environment stack against the tooling stack's exported ``platforms`` at deploy time).

    * An ARM64 runtime needs an image that includes ``linux/arm64`` (likewise X86_64 and
      ``linux/amd64``).
    """
    problems: list[str] = []
    for env in environments:
        if not isinstance(env, EnvironmentConfig):
            continue
        problem = architecture_problem(env.service.cpu_architecture, tooling.image.platforms)
        if problem:
            problems.append(
                f"{NAMESPACE}:service.cpuArchitecture (stack {env.environment}): {problem}"
            )
    return problems


def architecture_problem(architecture: str, platforms: Sequence[str]) -> str | None:
    needed = {"ARM64": "linux/arm64", "X86_64": "linux/amd64"}[architecture]
    if needed in platforms:
        return None
    return (
        f"{json.dumps(architecture)} needs {needed} in the tooling stack's "
        f"{NAMESPACE}:image.platforms ({json.dumps(list(platforms))})"
    )
