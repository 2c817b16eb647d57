"""The single source of every physical name.

Every AWS name the program sets comes from :class:`Names`. Names are deterministic functions
of the service and environment names, so the tooling stack can address environment
resources (cluster, service, task family, deploy role, CodeDeploy group) without reading the
environment stacks. Each name respects its resource type's character set and length limit;
a name that would be too long is truncated and given a stable 8-character hash suffix of the
full name, so distinct inputs never collide.

Limits used (AWS documentation, checked per type):

=====================  =====  ===================================
resource               max    characters
=====================  =====  ===================================
ALB / target group      32    ``[A-Za-z0-9-]``, no leading/trailing ``-``
IAM role                64    ``[A-Za-z0-9+=,.@_-]``
Lambda function         64    ``[A-Za-z0-9_-]``
ECR repository         256    lowercase ``[a-z0-9._/-]``
CodeBuild project      150    ``[A-Za-z0-9_-]`` (starts alphanumeric)
CodePipeline           100    ``[A-Za-z0-9.@_-]``
CodeDeploy app/group   100
ECS cluster/service    255    ``[A-Za-z0-9_-]``
task family            255    ``[A-Za-z0-9_-]``
S3 bucket               63    lowercase ``[a-z0-9-]``, globally unique
SNS topic              256    ``[A-Za-z0-9_-]``
log group              512
security group         255
budget                 100
=====================  =====  ===================================
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum

#: What the configuration admits (validated in config.py with these very patterns).
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
SERVICE_NAME_MAX = 40
ENVIRONMENT_NAME_RE = re.compile(r"^[a-z][a-z0-9]*$")
ENVIRONMENT_NAME_MAX = 12
TOOLING = "tooling"

_HASH_LEN = 8


class Kind(Enum):
    """A resource type's naming rule: max length, allowed characters, case."""

    ALB = (32, r"[^A-Za-z0-9-]", False)
    TARGET_GROUP = (32, r"[^A-Za-z0-9-]", False)
    IAM_ROLE = (64, r"[^A-Za-z0-9+=,.@_-]", False)
    IAM_POLICY = (128, r"[^A-Za-z0-9+=,.@_-]", False)
    LAMBDA = (64, r"[^A-Za-z0-9_-]", False)
    ECR_REPOSITORY = (256, r"[^a-z0-9._/-]", True)
    CODEBUILD_PROJECT = (150, r"[^A-Za-z0-9_-]", False)
    CODEBUILD_REPORT_GROUP = (128, r"[^A-Za-z0-9_-]", False)
    CODEPIPELINE = (100, r"[^A-Za-z0-9.@_-]", False)
    CODEDEPLOY = (100, r"[^A-Za-z0-9._+=,@-]", False)
    ECS = (255, r"[^A-Za-z0-9_-]", False)
    S3_BUCKET = (63, r"[^a-z0-9-]", True)
    SNS_TOPIC = (256, r"[^A-Za-z0-9_-]", False)
    LOG_GROUP = (512, r"[^A-Za-z0-9_/.#-]", False)
    SECURITY_GROUP = (255, r"[^A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]", False)
    ALARM = (255, r"[^A-Za-z0-9 ._/-]", False)
    BUDGET = (100, r"[^A-Za-z0-9_.:-]", False)
    KMS_ALIAS = (256, r"[^A-Za-z0-9/_-]", False)
    CONNECTION = (32, r"[^A-Za-z0-9_-]", False)
    EVENT_RULE = (64, r"[^A-Za-z0-9._-]", False)

    @property
    def max_length(self) -> int:
        return int(self.value[0])

    @property
    def invalid_chars(self) -> str:
        return str(self.value[1])

    @property
    def lowercase(self) -> bool:
        return bool(self.value[2])


def short_hash(text: str, length: int = _HASH_LEN) -> str:
    """A stable lowercase hex digest prefix of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def fit(base: str, kind: Kind) -> str:
    """Make ``base`` a valid name of ``kind``: clean characters, then truncate with a hash.

    The hash is taken over the *original* ``base`` so two inputs that share a long prefix
    still get different names.
    """
    name = base.lower() if kind.lowercase else base
    name = re.sub(kind.invalid_chars, "-", name)
    name = re.sub(r"-{2,}", "-", name).strip("-")
    if len(name) <= kind.max_length and name == base:
        return name
    if len(name) + 1 + _HASH_LEN <= kind.max_length:
        # Characters were replaced: keep it readable but make it unique to the original.
        return f"{name}-{short_hash(base)}"
    keep = kind.max_length - 1 - _HASH_LEN
    return f"{name[:keep].rstrip('-.')}-{short_hash(base)}"


@dataclass(frozen=True)
class Names:
    """Physical names for one service in one environment (or the tooling stack).

    ``Names("orders-api", "prod").cluster`` → ``orders-api-prod``.
    """

    service: str
    environment: str

    def __post_init__(self) -> None:
        if not SERVICE_NAME_RE.match(self.service) or len(self.service) > SERVICE_NAME_MAX:
            raise ValueError(
                f"service name {self.service!r} must match {SERVICE_NAME_RE.pattern} "
                f"and be at most {SERVICE_NAME_MAX} characters"
            )
        if (
            not ENVIRONMENT_NAME_RE.match(self.environment)
            or len(self.environment) > ENVIRONMENT_NAME_MAX
        ):
            raise ValueError(
                f"environment name {self.environment!r} must match "
                f"{ENVIRONMENT_NAME_RE.pattern} and be at most {ENVIRONMENT_NAME_MAX} characters"
            )

    @property
    def prefix(self) -> str:
        return f"{self.service}-{self.environment}"

    def _n(self, suffix: str, kind: Kind) -> str:
        return fit(f"{self.prefix}-{suffix}" if suffix else self.prefix, kind)

    # --- environment stacks -------------------------------------------------------------
    @property
    def cluster(self) -> str:
        return self._n("", Kind.ECS)

    @property
    def ecs_service(self) -> str:
        return self._n("svc", Kind.ECS)

    @property
    def task_family(self) -> str:
        return self._n("", Kind.ECS)

    @property
    def migration_family(self) -> str:
        return self._n("migrate", Kind.ECS)

    @property
    def container(self) -> str:
        """The application container's name inside the task definition."""
        return self.service

    @property
    def alb(self) -> str:
        # AWS refuses load balancer names that begin with "internal-".
        if self.prefix.startswith("internal-"):
            return fit(f"alb-{self.prefix}", Kind.ALB)
        return self._n("alb", Kind.ALB)

    def target_group(self, color: str) -> str:
        return self._n(f"tg-{color}", Kind.TARGET_GROUP)

    @property
    def execution_role(self) -> str:
        return self._n("exec", Kind.IAM_ROLE)

    @property
    def task_role(self) -> str:
        return self._n("task", Kind.IAM_ROLE)

    @property
    def deploy_role(self) -> str:
        """The role the tooling pipeline assumes to deploy into this environment."""
        return self._n("deploy", Kind.IAM_ROLE)

    @property
    def ecs_infrastructure_role(self) -> str:
        return self._n("ecs-infra", Kind.IAM_ROLE)

    @property
    def codedeploy_role(self) -> str:
        return self._n("codedeploy", Kind.IAM_ROLE)

    @property
    def hook_role(self) -> str:
        return self._n("hook", Kind.IAM_ROLE)

    @property
    def hook_function(self) -> str:
        return self._n("smoke-hook", Kind.LAMBDA)

    @property
    def codedeploy_application(self) -> str:
        return self._n("", Kind.CODEDEPLOY)

    @property
    def codedeploy_group(self) -> str:
        return self._n("bg", Kind.CODEDEPLOY)

    @property
    def log_group(self) -> str:
        return fit(f"/ecs/{self.environment}/{self.service}", Kind.LOG_GROUP)

    def lambda_log_group(self, function_name: str) -> str:
        return fit(f"/aws/lambda/{function_name}", Kind.LOG_GROUP)

    def security_group(self, purpose: str) -> str:
        # AWS refuses security group names that begin with "sg-" (the id prefix).
        if self.prefix.startswith("sg-"):
            return fit(f"{purpose}-{self.prefix}", Kind.SECURITY_GROUP)
        return self._n(purpose, Kind.SECURITY_GROUP)

    def alarm(self, purpose: str) -> str:
        return self._n(purpose, Kind.ALARM)

    @property
    def budget(self) -> str:
        return self._n("monthly", Kind.BUDGET)

    def access_logs_bucket(self, account_id: str) -> str:
        return fit(f"{self.prefix}-alb-logs-{account_id}", Kind.S3_BUCKET)

    # --- tooling stack ------------------------------------------------------------------
    @property
    def repository(self) -> str:
        return fit(self.service, Kind.ECR_REPOSITORY)

    def build_project(self, purpose: str) -> str:
        return self._n(purpose, Kind.CODEBUILD_PROJECT)

    def report_group(self, purpose: str) -> str:
        return self._n(purpose, Kind.CODEBUILD_REPORT_GROUP)

    @property
    def pipeline(self) -> str:
        return self._n("release", Kind.CODEPIPELINE)

    @property
    def pipeline_role(self) -> str:
        return self._n("pipeline", Kind.IAM_ROLE)

    @property
    def deployer_role(self) -> str:
        """The tooling role that runs the deploy/migrate steps and alone assumes the
        environment deploy roles (what they trust; exported as ``pipelineRoleArn``)."""
        return self._n("deployer", Kind.IAM_ROLE)

    @property
    def build_role(self) -> str:
        return self._n("build", Kind.IAM_ROLE)

    @property
    def connection(self) -> str:
        return self._n("src", Kind.CONNECTION)

    def artifact_bucket(self, account_id: str) -> str:
        return fit(f"{self.prefix}-artifacts-{account_id}", Kind.S3_BUCKET)

    def kms_alias(self, purpose: str) -> str:
        return fit(f"alias/{self.prefix}-{purpose}", Kind.KMS_ALIAS)

    def topic(self, purpose: str) -> str:
        return self._n(purpose, Kind.SNS_TOPIC)

    def function(self, purpose: str) -> str:
        return self._n(purpose, Kind.LAMBDA)

    def role(self, purpose: str) -> str:
        return self._n(purpose, Kind.IAM_ROLE)

    def managed_policy(self, purpose: str) -> str:
        return self._n(purpose, Kind.IAM_POLICY)

    @property
    def migration_log_group(self) -> str:
        return fit(f"/ecs/{self.environment}/{self.service}-migrate", Kind.LOG_GROUP)

    def event_rule(self, purpose: str) -> str:
        return self._n(purpose, Kind.EVENT_RULE)


def arn(
    service: str, resource: str, *, account_id: str, region: str = "", partition: str = "aws"
) -> str:
    """An ARN from its parts: ``arn(svc, res, account_id=…, region=…)``."""
    return f"arn:{partition}:{service}:{region}:{account_id}:{resource}"


def role_arn(name: str, *, account_id: str, partition: str = "aws") -> str:
    return arn("iam", f"role/{name}", account_id=account_id, partition=partition)


def deploy_role_arn(service: str, environment: str, *, account_id: str) -> str:
    """The deploy role the environment stack creates, addressed from the tooling stack."""
    return role_arn(Names(service, environment).deploy_role, account_id=account_id)
