"""IAM documents of one Fargate service (pure; built from :mod:`components.render.iam`).

Four roles, each with only what it uses:

* **execution role** (the ECS agent starting the task): pull exactly the service's ECR
  repository, write to exactly its log group, read exactly the secrets/parameters the task
  definition references, and decrypt with exactly the KMS keys given for them.
* **task role** (the application): nothing by default; X-Ray writes when the ADOT sidecar
  is on.
* **ECS infrastructure role for load balancers** (native blue/green): an inline equivalent
  of ``AmazonECSInfrastructureRolePolicyForLoadBalancers`` (v6, 2026-02-12: ELB describes
  on ``*``; Register/DeregisterTargets on ``targetgroup/*/*``; ModifyListener on
  ``listener/app|net/*/*/*``; ModifyRule on ``listener-rule/app/*/*/*/*``) scoped to this
  service's two target groups, its listeners and its listener rules.
* **lifecycle-hook role** (native blue/green): ``lambda:InvokeFunction`` on exactly the hook
  functions (AWS's example grants ``function:*``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from components.render.iam import PolicyError, Statement, assume_role_policy, policy_document
from components.render.task_definition import (
    SecretReference,
    TaskDefinitionSpec,
    ecr_repository_arn,
)

ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"
ECS_PRINCIPAL = "ecs.amazonaws.com"

_SECRET_SUFFIX_RE = re.compile(r"-[A-Za-z0-9]{6}$")
_KMS_KEY_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_ECR_REPO_RE = re.compile(r"^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository/[a-z0-9._/-]+$")
_ELB = r"^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:"
_TARGET_GROUP_RE = re.compile(_ELB + r"targetgroup/[A-Za-z0-9-]+/[0-9a-z]+$")
_LISTENER_RE = re.compile(_ELB + r"listener/(?:app|net)/[A-Za-z0-9-]+/[0-9a-z]+/[0-9a-z]+$")
_RULE_RE = re.compile(_ELB + r"listener-rule/app/[A-Za-z0-9-]+/[0-9a-z]+/[0-9a-z]+/[0-9a-z]+$")
_LAMBDA_RE = re.compile(
    r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(?::[A-Za-z0-9$_-]+)?$"
)


def _require(values: Sequence[str], pattern: re.Pattern[str], key: str, what: str) -> list[str]:
    if not values:
        raise PolicyError(f"{key}: at least one {what} ARN is required")
    for value in values:
        if not pattern.match(value):
            raise PolicyError(f"{key}: {value!r} is not a {what} ARN")
    return list(dict.fromkeys(values))


# ---- trust policies --------------------------------------------------------------------


def task_role_trust_policy(*, account_id: str, region: str, partition: str = "aws") -> dict:
    """Trust for the task role: ECS tasks of this account and region only. The
    ``aws:SourceAccount``/``aws:SourceArn`` (``arn:...:ecs:<region>:<account>:*``; ECS does not
    support a specific cluster there) conditions are the ones AWS documents for task roles."""
    return assume_role_policy(
        services=[ECS_TASKS_PRINCIPAL],
        conditions={
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account_id}:*"},
        },
    )


def execution_role_trust_policy() -> dict:
    """Trust for the execution role, as AWS documents it (no source conditions: AWS does not
    document them for the agent's use of this role, and a wrong one stops every task)."""
    return assume_role_policy(services=[ECS_TASKS_PRINCIPAL])


def ecs_service_trust_policy() -> dict:
    """Trust for the roles ECS itself assumes: the load-balancer infrastructure role and
    the lifecycle-hook role (as in AWS's documentation for both)."""
    return assume_role_policy(services=[ECS_PRINCIPAL])


# ---- execution role ------------------------------------------------------------------


def secretsmanager_resource(arn: str) -> str:
    """The IAM resource for a secret ARN: exact when it carries Secrets Manager's 6-character
    random suffix, else (a partial ARN) the ARN followed by ``-??????``.

    Limitation: a secret whose own name ends in ``-`` plus six letters/digits cannot be told
    apart from a full ARN when given partially; give full ARNs for such names.
    """
    name = arn.split(":", 6)[6]
    return arn if _SECRET_SUFFIX_RE.search(name) else f"{arn}-??????"


def ssm_parameter_resource(
    ref: SecretReference, *, account_id: str, region: str, partition: str = "aws"
) -> str:
    """The parameter ARN of an SSM reference (a bare name resolves in the task's region)."""
    if ref.arn is not None:
        return ref.arn
    name = ref.parameter_name or ""
    return f"arn:{partition}:ssm:{region}:{account_id}:parameter/{name.lstrip('/')}"


def log_group_resources(
    log_group_name: str, *, account_id: str, region: str, partition: str = "aws"
) -> list[str]:
    group = f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name}"
    return [group, f"{group}:log-stream:*"]


def execution_role_policy(
    spec: TaskDefinitionSpec,
    *,
    repository_arn: str | None = None,
    kms_key_arns: Sequence[str] = (),
    partition: str = "aws",
) -> dict[str, Any]:
    """The execution role's inline policy for ``spec``.

    ``repository_arn`` defaults to the ECR repository of ``spec.image``; an image outside
    private ECR (none in this project) gets no ECR statements. ``kms_key_arns`` are the
    customer keys of the referenced secrets/parameters (none for AWS-managed keys).
    """
    account, region = spec.account_id, spec.region
    statements: list[Statement] = []
    repository = repository_arn or ecr_repository_arn(spec.image, partition=partition)
    if repository is not None:
        if not _ECR_REPO_RE.match(repository):
            raise PolicyError(f"repository_arn: {repository!r} is not an ECR repository ARN")
        statements += [
            Statement(
                sid="EcrAuthToken",
                actions=["ecr:GetAuthorizationToken"],
                resources=["*"],
                star_resource_reason=(
                    "ecr:GetAuthorizationToken is registry-wide; it has no resource-level "
                    "permission (the pull itself is scoped below)"
                ),
            ),
            Statement(
                sid="EcrPullServiceImage",
                actions=[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                resources=[repository],
            ),
        ]
    statements.append(
        Statement(
            sid="WriteServiceLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=log_group_resources(
                spec.log_group_name, account_id=account, region=region, partition=partition
            ),
        )
    )
    refs = spec.secret_references()
    secrets = [secretsmanager_resource(r.arn) for r in refs if r.kind == "secretsmanager" and r.arn]
    parameters = [
        ssm_parameter_resource(r, account_id=account, region=region, partition=partition)
        for r in refs
        if r.kind == "ssm"
    ]
    if secrets:
        statements.append(
            Statement(
                sid="ReadReferencedSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=secrets,
            )
        )
    if parameters:
        statements.append(
            Statement(
                sid="ReadReferencedParameters",
                actions=["ssm:GetParameters"],
                resources=parameters,
            )
        )
    if kms_key_arns:
        keys = _require(kms_key_arns, _KMS_KEY_RE, "kms_key_arns", "KMS key (not alias)")
        via = [f"secretsmanager.{region}.amazonaws.com", f"ssm.{region}.amazonaws.com"]
        statements.append(
            Statement(
                sid="DecryptReferencedSecrets",
                actions=["kms:Decrypt"],
                resources=keys,
                conditions={"StringEquals": {"kms:ViaService": via}},
            )
        )
    return policy_document(statements)


# ---- task role -----------------------------------------------------------------------

#: What the ADOT collector's ``awsxray`` exporter calls.
XRAY_WRITE_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


def task_role_policy(spec: TaskDefinitionSpec) -> dict[str, Any] | None:
    """The task role's inline policy, or ``None`` when the app needs no AWS permission."""
    if spec.adot is None:
        return None
    return policy_document(
        [
            Statement(
                sid="AdotWriteTraces",
                actions=list(XRAY_WRITE_ACTIONS),
                resources=["*"],
                star_resource_reason=(
                    "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permission"
                ),
            )
        ]
    )


# ---- ECS native blue/green -------------------------------------------------------------


def ecs_infrastructure_role_policy(
    *,
    target_group_arns: Sequence[str],
    listener_arns: Sequence[str],
    listener_rule_arns: Sequence[str],
) -> dict[str, Any]:
    """Least-privilege equivalent of ``AmazonECSInfrastructureRolePolicyForLoadBalancers``.

    ``target_group_arns``: the blue and green target groups. ``listener_arns``: production
    and test listeners (ECS modifies a listener when a rule is its default action).
    ``listener_rule_arns``: the production and test listener rules ECS shifts weights on.
    """
    target_groups = _require(
        target_group_arns, _TARGET_GROUP_RE, "target_group_arns", "target group"
    )
    listeners = _require(listener_arns, _LISTENER_RE, "listener_arns", "listener")
    rules = _require(listener_rule_arns, _RULE_RE, "listener_rule_arns", "ALB listener rule")
    return policy_document(
        [
            Statement(
                sid="ELBReadOperations",
                actions=[
                    "elasticloadbalancing:DescribeListeners",
                    "elasticloadbalancing:DescribeRules",
                    "elasticloadbalancing:DescribeTargetGroups",
                    "elasticloadbalancing:DescribeTargetHealth",
                ],
                resources=["*"],
                star_resource_reason=(
                    "Elastic Load Balancing Describe* actions have no resource-level permission"
                ),
            ),
            Statement(
                sid="TargetGroupOperations",
                actions=[
                    "elasticloadbalancing:DeregisterTargets",
                    "elasticloadbalancing:RegisterTargets",
                ],
                resources=target_groups,
            ),
            Statement(
                sid="ModifyServiceListeners",
                actions=["elasticloadbalancing:ModifyListener"],
                resources=listeners,
            ),
            Statement(
                sid="ModifyServiceListenerRules",
                actions=["elasticloadbalancing:ModifyRule"],
                resources=rules,
            ),
        ]
    )


def lifecycle_hook_role_policy(function_arns: Sequence[str]) -> dict[str, Any]:
    """Lets ECS invoke exactly the lifecycle-hook Lambda functions."""
    functions = _require(function_arns, _LAMBDA_RE, "function_arns", "Lambda function")
    return policy_document(
        [
            Statement(
                sid="InvokeLifecycleHooks",
                actions=["lambda:InvokeFunction"],
                resources=functions,
            )
        ]
    )
