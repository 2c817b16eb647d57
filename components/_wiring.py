"""Small resource-wiring helpers shared by the components (service, migration, build, pipeline).

Each helper registers the same resources, with the same logical names, inputs and options, that
the components used to spell out inline; the logical names are derived from the caller's
``resource_name`` exactly as before, so stack URNs do not change. Policy documents still come
from :mod:`components.render`; these helpers only wire them to resources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import config as config_mod
from components.render import iam, iam_service, kms
from components.render import task_definition as td


def same_account_trust(service: str, account_id: str) -> str:
    """Trust policy JSON: ``service`` may assume the role, on behalf of ``account_id`` only
    (the ``aws:SourceAccount`` confused-deputy guard)."""
    return iam.to_json(
        iam.assume_role_policy(
            services=[service],
            conditions={"StringEquals": {"aws:SourceAccount": account_id}},
        )
    )


def same_account_service_role(
    resource_name: str,
    *,
    name: str,
    service: str,
    account_id: str,
    description: str | None = None,
    max_session_duration: int | None = None,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role that ``service`` assumes for ``account_id`` only (:func:`same_account_trust`)."""
    return aws.iam.Role(
        resource_name,
        name=name,
        description=description,
        assume_role_policy=same_account_trust(service, account_id),
        max_session_duration=max_session_duration,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def logs_key_policy(
    *, account_id: str, region: str, log_groups: str | Sequence[str], partition: str = "aws"
) -> str:
    """Key policy JSON letting CloudWatch Logs (``logs.<region>.amazonaws.com``) use the key
    for the log groups named by ``log_groups`` only: exact names (``ArnEquals``) or, when
    any holds ``*``, patterns (``ArnLike``)."""
    names = [log_groups] if isinstance(log_groups, str) else list(log_groups)
    operator = "ArnLike" if any("*" in n for n in names) else "ArnEquals"
    arns = [f"arn:{partition}:logs:{region}:{account_id}:log-group:{n}" for n in names]
    return iam.to_json(
        kms.key_policy(
            account_id,
            service_principals=[f"logs.{region}.amazonaws.com"],
            service_conditions={
                operator: {
                    "kms:EncryptionContext:aws:logs:arn": arns[0] if len(arns) == 1 else arns
                }
            },
            partition=partition,
        )
    )


@dataclass(frozen=True)
class EncryptedLogGroup:
    log_group: aws.cloudwatch.LogGroup
    key_arn: pulumi.Input[str]
    """The KMS key the group is encrypted with (created here or the one passed in)."""


def encrypted_log_group(
    resource_name: str,
    *,
    name: str,
    retention_in_days: int,
    account_id: str,
    region: str,
    key_description: str,
    key_alias: str | None = None,
    key_scope: str | Sequence[str] | None = None,
    existing_key_arn: pulumi.Input[str] | None = None,
    partition: str = "aws",
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> EncryptedLogGroup:
    """A log group ``name`` encrypted with ``existing_key_arn`` or, when that is empty, with a
    new rotating key (``<resource_name>-key``, alias ``<resource_name>-key-alias`` when
    ``key_alias``) that CloudWatch Logs may use for ``key_scope`` only (default: exactly this
    group; a ``*`` pattern shares the key with sibling groups)."""
    key_arn: pulumi.Input[str]
    if existing_key_arn:
        key_arn = existing_key_arn
    else:
        key_arn = logs_key(
            f"{resource_name}-key",
            account_id=account_id,
            region=region,
            log_groups=key_scope or name,
            description=key_description,
            alias=key_alias,
            partition=partition,
            tags=tags,
            parent=parent,
        ).arn
    group = log_group(
        resource_name,
        name=name,
        retention_in_days=retention_in_days,
        kms_key_arn=key_arn,
        tags=tags,
        parent=parent,
    )
    return EncryptedLogGroup(log_group=group, key_arn=key_arn)


def logs_key(
    resource_name: str,
    *,
    account_id: str,
    region: str,
    log_groups: str | Sequence[str],
    description: str,
    alias: str | None = None,
    partition: str = "aws",
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.kms.Key:
    """A rotating KMS key that CloudWatch Logs may use for exactly ``log_groups`` (alias
    ``<resource_name>-alias`` when ``alias``)."""
    opts = pulumi.ResourceOptions(parent=parent)
    key = aws.kms.Key(
        resource_name,
        description=description,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=logs_key_policy(
            account_id=account_id, region=region, log_groups=log_groups, partition=partition
        ),
        tags=dict(tags),
        opts=opts,
    )
    if alias:
        aws.kms.Alias(f"{resource_name}-alias", name=alias, target_key_id=key.key_id, opts=opts)
    return key


def log_group(
    resource_name: str,
    *,
    name: str,
    retention_in_days: int,
    kms_key_arn: pulumi.Input[str] | None = None,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.cloudwatch.LogGroup:
    """A log group with retention (and a KMS key when given)."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=name,
        retention_in_days=retention_in_days,
        kms_key_id=kms_key_arn,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class FargateTask:
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    task_definition: aws.ecs.TaskDefinition


def fargate_task(
    resource_name: str,
    *,
    family: str,
    service: config_mod.ServiceConfig,
    spec: pulumi.Output[td.TaskDefinitionSpec],
    repository_arn: pulumi.Input[str] | None,
    execution_role_name: str,
    execution_role_description: str,
    task_role_name: str,
    task_role_description: str,
    account_id: str,
    region: str,
    tags: Mapping[str, str],
    task_tags: Mapping[str, str] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    parent: pulumi.Resource,
) -> FargateTask:
    """A Fargate task definition rendered from ``spec`` with its execution role (trusting
    ecs-tasks, inline policy from :func:`iam_service.execution_role_policy`) and its task
    role (no policy here; callers attach what the application needs).

    Logical names: ``<resource_name>-execution-role``, ``-execution-policy``, ``-task-role``
    and ``<resource_name>-task``."""
    opts = pulumi.ResourceOptions(parent=parent)
    execution_role = aws.iam.Role(
        f"{resource_name}-execution-role",
        name=execution_role_name,
        description=execution_role_description,
        assume_role_policy=iam.to_json(iam_service.execution_role_trust_policy()),
        tags=dict(tags),
        opts=opts,
    )
    aws.iam.RolePolicy(
        f"{resource_name}-execution-policy",
        role=execution_role.id,
        policy=pulumi.Output.all(spec, pulumi.Output.from_input(repository_arn)).apply(
            lambda sr: iam.to_json(
                iam_service.execution_role_policy(
                    sr[0],
                    repository_arn=sr[1] or None,
                    kms_key_arns=list(service.secrets_kms_key_arns),
                )
            )
        ),
        opts=opts,
    )
    task_role = aws.iam.Role(
        f"{resource_name}-task-role",
        name=task_role_name,
        description=task_role_description,
        assume_role_policy=iam.to_json(
            iam_service.task_role_trust_policy(account_id=account_id, region=region)
        ),
        tags=dict(tags),
        opts=opts,
    )
    task_definition = aws.ecs.TaskDefinition(
        f"{resource_name}-task",
        family=family,
        cpu=str(service.cpu),
        memory=str(service.memory),
        network_mode="awsvpc",
        requires_compatibilities=["FARGATE"],
        execution_role_arn=execution_role.arn,
        task_role_arn=task_role.arn,
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            cpu_architecture=service.cpu_architecture, operating_system_family="LINUX"
        ),
        volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=td.TMP_VOLUME)],
        container_definitions=spec.apply(td.container_definitions_json),
        tags=dict(task_tags if task_tags is not None else tags),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
    return FargateTask(execution_role, task_role, task_definition)
