"""IAM documents of an environment's deploy role (pure; built from :mod:`components.render.iam`).

The role lives in the environment account and is assumed by the tooling pipeline's roles
(the CodeBuild role running ``components/runtime/deploy.py`` / ``migrate.py`` and, for a
``CodeDeployToECS`` action, the pipeline role). :func:`deploy_role_policy` grants what those
scripts call - checked against the Service Authorization Reference for Amazon ECS and AWS
CodeDeploy (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html,
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodedeploy.html):

* ``ecs:DescribeTaskDefinition`` - no resource types in the reference, so ``Resource: *``.
* ``ecs:RegisterTaskDefinition`` - the reference lists the ``task-definition`` resource type
  (older guides said ``*``), so it is scoped to ``task-definition/<family>:*``; the request's
  tags need ``ecs:TagResource`` on the same ARNs, allowed only while creating
  (``ecs:CreateAction = RegisterTaskDefinition``); registering a revision that names task and
  execution roles needs ``iam:PassRole`` on exactly those two roles, only to
  ``ecs-tasks.amazonaws.com``.
* ``ecs:DescribeServices`` on the one service; for the native engine ``ecs:UpdateService`` on
  it, only to revisions of the family (condition ``ecs:task-definition``), and the service
  deployment APIs (``List/DescribeServiceDeployments``, ``DescribeServiceRevisions``,
  ``StopServiceDeployment``), which need the ``service`` and the ``service-deployment`` /
  ``service-revision`` resource types of that service.
* CodeDeploy: ``CreateDeployment`` / ``GetDeployment`` on the deployment group;
  ``GetApplication`` / ``GetApplicationRevision`` / ``RegisterApplicationRevision`` on the
  application; ``GetDeploymentConfig`` on the configs the group uses; ``StopDeployment`` has
  no resource types in the reference, so ``Resource: *``.
* Migrations: ``ecs:RunTask`` of the migration family only in the environment's cluster
  (condition ``ecs:cluster``), ``DescribeTasks`` / ``StopTask`` / tagging at launch on tasks of
  that cluster, ``iam:PassRole`` for the migration task's roles.
* Optionally read access to the pipeline's artifact bucket and key (for a ``CodeDeployToECS``
  action that runs under this role).

* ``elasticloadbalancing:DescribeLoadBalancers`` - the pipeline's test step resolves the
  environment's ALB DNS name under this role; no resource types in the reference, so ``*``.

``engine="any"`` grants what both engines need: the single-account tooling stack gives its
deployer role :func:`deploy_role_statements` for every environment, because it cannot know
which engine an environment uses (``deploy.py --engine auto`` finds out at deploy time); the
deployment configs are then :func:`codedeploy_config_patterns` (a config name may end in one
``*``).

:func:`deploy_role_trust_policy` trusts exactly the given tooling role ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from components.render.deployment import PREDEFINED_ECS_CONFIGS
from components.render.iam import PolicyError, Statement, assume_role_policy, policy_document

ECS_TASKS_PRINCIPAL = "ecs-tasks.amazonaws.com"
ENGINES = ("codedeploy", "ecs")
ENGINE_ANY = "any"
"""Both engines' permissions (when the caller cannot know the environment's engine)."""

_PARTITION_RE = re.compile(r"^aws(-cn|-us-gov)?$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
_ECS_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CODEDEPLOY_NAME_RE = re.compile(r"^[A-Za-z0-9_.+@=,-]{1,100}$")
_CODEDEPLOY_CONFIG_RE = re.compile(r"^(?:[A-Za-z0-9_.+@=,-]{1,100}|[A-Za-z0-9_.+@=,-]{1,99}\*)$")
_ROLE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws(-cn|-us-gov)?):iam::(?P<account>[0-9]{12}):role/[A-Za-z0-9+=,.@_/-]+$"
)
_BUCKET_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov)?:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$")


def _check(key: str, value: Any, pattern: re.Pattern[str], allowed: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise PolicyError(f"{key}: {value!r} is not {allowed}")
    return value


def _role_arns(key: str, values: Sequence[str], *, account_id: str | None) -> list[str]:
    if isinstance(values, str) or not values:
        raise PolicyError(f"{key}: at least one IAM role ARN is required (got {values!r})")
    for value in values:
        match = _ROLE_ARN_RE.match(value) if isinstance(value, str) else None
        if not match:
            raise PolicyError(
                f"{key}: {value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        if account_id is not None and match["account"] != account_id:
            raise PolicyError(
                f"{key}: {value!r} is in account {match['account']}, "
                f"not the environment account {account_id}"
            )
    return list(dict.fromkeys(values))


def deploy_role_trust_policy(trusted_role_arns: Sequence[str]) -> dict[str, Any]:
    """Trust exactly these tooling-account roles (the pipeline role, the deploy CodeBuild role)."""
    return assume_role_policy(
        aws_principals=_role_arns("trusted_role_arns", trusted_role_arns, account_id=None)
    )


def codedeploy_config_patterns(name_prefix: str) -> list[str]:
    """Every deployment config an environment whose names start with ``name_prefix`` (e.g.
    ``orders-api-prod``, :attr:`components.naming.Names.prefix`) can use: AWS's predefined ECS
    configs and the custom ones :func:`components.render.deployment.custom_config_name`
    builds (``<prefix>-canary-...`` / ``<prefix>-linear-...``)."""
    _check("name_prefix", name_prefix, _CODEDEPLOY_NAME_RE, "a CodeDeploy name prefix")
    return [*PREDEFINED_ECS_CONFIGS, f"{name_prefix}-canary-*", f"{name_prefix}-linear-*"]


def deploy_role_policy(
    *,
    region: str,
    account_id: str,
    cluster: str,
    service: str,
    task_family: str,
    pass_role_arns: Sequence[str],
    engine: str,
    codedeploy_application: str | None = None,
    codedeploy_group: str | None = None,
    codedeploy_configs: Sequence[str] = (),
    migration_family: str | None = None,
    migration_pass_role_arns: Sequence[str] = (),
    artifact_bucket_arn: str | None = None,
    artifact_key_arn: str | None = None,
    partition: str = "aws",
) -> dict[str, Any]:
    """The deploy role's permissions in one environment account (see the module docstring and
    :func:`deploy_role_statements`)."""
    return policy_document(
        deploy_role_statements(
            region=region,
            account_id=account_id,
            cluster=cluster,
            service=service,
            task_family=task_family,
            pass_role_arns=pass_role_arns,
            engine=engine,
            codedeploy_application=codedeploy_application,
            codedeploy_group=codedeploy_group,
            codedeploy_configs=codedeploy_configs,
            migration_family=migration_family,
            migration_pass_role_arns=migration_pass_role_arns,
            artifact_bucket_arn=artifact_bucket_arn,
            artifact_key_arn=artifact_key_arn,
            partition=partition,
        )
    )


def deploy_role_statements(
    *,
    region: str,
    account_id: str,
    cluster: str,
    service: str,
    task_family: str,
    pass_role_arns: Sequence[str],
    engine: str,
    codedeploy_application: str | None = None,
    codedeploy_group: str | None = None,
    codedeploy_configs: Sequence[str] = (),
    migration_family: str | None = None,
    migration_pass_role_arns: Sequence[str] = (),
    artifact_bucket_arn: str | None = None,
    artifact_key_arn: str | None = None,
    partition: str = "aws",
) -> list[Statement]:
    """The statements of :func:`deploy_role_policy` for one environment.

    ``pass_role_arns`` are the service task definition's execution and task roles;
    ``migration_pass_role_arns`` the migration task definition's. With ``engine="codedeploy"``
    (or ``"any"``: both engines) the application, deployment group and the deployment config
    names it uses are required.
    """
    _check("partition", partition, _PARTITION_RE, "an AWS partition (aws, aws-cn, aws-us-gov)")
    _check("region", region, _REGION_RE, "an AWS region such as eu-west-1")
    _check("account_id", account_id, _ACCOUNT_RE, "a 12-digit AWS account id")
    for key, value in (("cluster", cluster), ("service", service), ("task_family", task_family)):
        _check(key, value, _ECS_NAME_RE, "an ECS name (1-255 letters, digits, '-' or '_')")
    if engine not in (*ENGINES, ENGINE_ANY):
        raise PolicyError(f"engine: {engine!r} is not one of {[*ENGINES, ENGINE_ANY]}")
    roles = _role_arns("pass_role_arns", pass_role_arns, account_id=account_id)

    ecs = f"arn:{partition}:ecs:{region}:{account_id}"
    family_revisions = f"{ecs}:task-definition/{task_family}:*"
    # migrate.py registers a revision of the migration family too (the promoted digest).
    registered_families = [family_revisions]
    if migration_family is not None:
        _check(
            "migration_family", migration_family, _ECS_NAME_RE, "an ECS task definition family name"
        )
        registered_families.append(f"{ecs}:task-definition/{migration_family}:*")
    service_arn = f"{ecs}:service/{cluster}/{service}"
    cluster_arn = f"{ecs}:cluster/{cluster}"

    statements = [
        Statement(
            sid="DescribeTaskDefinitions",
            actions=["ecs:DescribeTaskDefinition"],
            resources=["*"],
            star_resource_reason="ecs:DescribeTaskDefinition has no resource types in the "
            "Service Authorization Reference",
        ),
        Statement(
            sid="RegisterFamilyRevisions",
            actions=["ecs:RegisterTaskDefinition"],
            resources=registered_families,
        ),
        Statement(
            sid="TagFamilyRevisionsOnCreate",
            actions=["ecs:TagResource"],
            resources=registered_families,
            conditions={"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}},
        ),
        Statement(sid="DescribeService", actions=["ecs:DescribeServices"], resources=[service_arn]),
        Statement(
            sid="DescribeLoadBalancers",
            actions=["elasticloadbalancing:DescribeLoadBalancers"],
            resources=["*"],
            star_resource_reason="elasticloadbalancing:DescribeLoadBalancers has no resource "
            "types in the Service Authorization Reference",
        ),
    ]

    if engine in ("ecs", ENGINE_ANY):
        statements += [
            Statement(
                sid="UpdateServiceToFamilyRevisions",
                actions=["ecs:UpdateService"],
                resources=[service_arn],
                conditions={"ArnLike": {"ecs:task-definition": family_revisions}},
            ),
            Statement(
                sid="WatchServiceDeployments",
                actions=[
                    "ecs:ListServiceDeployments",
                    "ecs:DescribeServiceDeployments",
                    "ecs:DescribeServiceRevisions",
                    "ecs:StopServiceDeployment",
                ],
                resources=[
                    service_arn,
                    f"{ecs}:service-deployment/{cluster}/{service}/*",
                    f"{ecs}:service-revision/{cluster}/{service}/*",
                ],
            ),
        ]
    if engine in ("codedeploy", ENGINE_ANY):
        application = _check(
            "codedeploy_application",
            codedeploy_application,
            _CODEDEPLOY_NAME_RE,
            "a CodeDeploy application name",
        )
        group = _check(
            "codedeploy_group",
            codedeploy_group,
            _CODEDEPLOY_NAME_RE,
            "a CodeDeploy deployment group name",
        )
        if isinstance(codedeploy_configs, str) or not codedeploy_configs:
            raise PolicyError(
                "codedeploy_configs: name the deployment configs the group uses "
                "(e.g. ['CodeDeployDefault.ECSAllAtOnce'])"
            )
        configs = [
            _check(
                "codedeploy_configs",
                c,
                _CODEDEPLOY_CONFIG_RE,
                "a CodeDeploy deployment config name (or a name prefix ending in one '*')",
            )
            for c in codedeploy_configs
        ]
        codedeploy = f"arn:{partition}:codedeploy:{region}:{account_id}"
        statements += [
            Statement(
                sid="CodeDeployApplication",
                actions=[
                    "codedeploy:GetApplication",
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:RegisterApplicationRevision",
                ],
                resources=[f"{codedeploy}:application:{application}"],
            ),
            Statement(
                sid="CodeDeployDeployments",
                actions=["codedeploy:CreateDeployment", "codedeploy:GetDeployment"],
                resources=[f"{codedeploy}:deploymentgroup:{application}/{group}"],
            ),
            Statement(
                sid="CodeDeployConfigs",
                actions=["codedeploy:GetDeploymentConfig"],
                resources=[f"{codedeploy}:deploymentconfig:{c}" for c in dict.fromkeys(configs)],
            ),
            Statement(
                sid="StopTimedOutDeployments",
                actions=["codedeploy:StopDeployment"],
                resources=["*"],
                star_resource_reason="codedeploy:StopDeployment has no resource types in the "
                "Service Authorization Reference",
            ),
        ]

    if migration_family is not None:
        _check(
            "migration_family", migration_family, _ECS_NAME_RE, "an ECS task definition family name"
        )
        roles += _role_arns(
            "migration_pass_role_arns", migration_pass_role_arns, account_id=account_id
        )
        cluster_tasks = f"{ecs}:task/{cluster}/*"
        statements += [
            Statement(
                sid="RunMigrationTask",
                actions=["ecs:RunTask"],
                resources=[f"{ecs}:task-definition/{migration_family}:*"],
                conditions={"ArnEquals": {"ecs:cluster": cluster_arn}},
            ),
            Statement(
                sid="WatchMigrationTask",
                actions=["ecs:DescribeTasks", "ecs:StopTask"],
                resources=[cluster_tasks],
            ),
            Statement(
                sid="TagMigrationTaskOnLaunch",
                actions=["ecs:TagResource"],
                resources=[cluster_tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            ),
        ]
    elif migration_pass_role_arns:
        raise PolicyError("migration_pass_role_arns: given without migration_family")

    statements.append(
        Statement(
            sid="PassTaskRoles",
            actions=["iam:PassRole"],
            resources=list(dict.fromkeys(roles)),
            conditions={"StringEquals": {"iam:PassedToService": ECS_TASKS_PRINCIPAL}},
        )
    )

    if artifact_bucket_arn is not None:
        _check("artifact_bucket_arn", artifact_bucket_arn, _BUCKET_ARN_RE, "an S3 bucket ARN")
        statements.append(
            Statement(
                sid="ReadPipelineArtifacts",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[f"{artifact_bucket_arn}/*"],
            )
        )
    if artifact_key_arn is not None:
        _check("artifact_key_arn", artifact_key_arn, _KEY_ARN_RE, "a KMS key ARN")
        statements.append(
            Statement(
                sid="DecryptPipelineArtifacts",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[artifact_key_arn],
            )
        )
    return statements
