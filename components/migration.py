"""``EfMigrationTask``: the one-off Fargate task definition that runs a release's EF Core
migration bundle before the release is deployed (DESIGN.md §3, issue 6 item 6).

The environment stack creates it when ``dotnet-delivery:migration.enabled``. The bundle ships
inside the release image (one digest, never rebuilt per environment), so this component only
owns the *template*: family :attr:`~components.naming.Names.migration_family`, one container
named :data:`CONTAINER` started from the tooling stack's initial image; the pipeline's
``Migrate<Env>`` step (``components/runtime/migrate.py``) swaps the promoted digest into that
container, registers the revision and runs it in the service's subnets and security groups.

What the task gets (and nothing more):

* the service's CPU/memory, architecture, plain environment and **secrets by reference** (the
  connection string the bundle needs), rendered by :mod:`components.render.task_definition`:
  read-only root filesystem with a writable ``/tmp``, the non-root ``app`` user, all
  capabilities dropped; no port mapping and no health check (it serves nothing);
* ``command`` from ``migration.command`` (ECS exec form: no shell, so ``$VAR`` is NOT
  expanded - let the bundle read its connection string from the app configuration, e.g. the
  ``ConnectionStrings__<Name>`` secret);
* its own execution role (pull the service's repository, write its own log group, read
  exactly the referenced secrets) and task role (no permissions: the bundle talks to the
  database, not to AWS);
* its own log group ``/ecs/<env>/<service>-migrate`` (the service's retention, KMS-encrypted
  with the configured key or a key of its own);
* the ``MigrationTimeoutSeconds`` tag (``migration.timeoutMinutes``), which ``migrate.py``
  uses when the pipeline passes no explicit timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import config as config_mod
from components import naming
from components.render import iam, iam_service, kms
from components.render import task_definition as td

TYPE_TOKEN = "dotnet-delivery:index:EfMigrationTask"
CONTAINER = "migrate"
LOG_STREAM_PREFIX = "migrate"
EXECUTION_ROLE_PURPOSE = "migrate-exec"
TASK_ROLE_PURPOSE = "migrate-task"
TIMEOUT_TAG = "MigrationTimeoutSeconds"  # = components/runtime/migrate.py TIMEOUT_TAG


def execution_role_name(names: naming.Names) -> str:
    return names.role(EXECUTION_ROLE_PURPOSE)


def task_role_name(names: naming.Names) -> str:
    return names.role(TASK_ROLE_PURPOSE)


def role_arns(names: naming.Names, *, account_id: str) -> list[str]:
    """The migration task's execution and task role ARNs (what the deploy role may pass)."""
    return [
        naming.role_arn(execution_role_name(names), account_id=account_id),
        naming.role_arn(task_role_name(names), account_id=account_id),
    ]


def log_group_name(names: naming.Names) -> str:
    """``/ecs/<env>/<service>-migrate``."""
    return names.migration_log_group


@dataclass(frozen=True, kw_only=True)
class EfMigrationTaskArgs:
    """Typed props of :class:`EfMigrationTask` (build with :meth:`from_config`)."""

    names: naming.Names
    account_id: str
    region: str
    aspnetcore_environment: str
    image: pulumi.Input[str]
    """The initial image by digest (the tooling stack's imageRef, as the service's)."""
    service: config_mod.ServiceConfig
    migration: config_mod.MigrationConfig
    tags: Mapping[str, str] = field(default_factory=dict)
    repository_arn: pulumi.Input[str] | None = None
    """The ECR repository the execution role may pull from (default: from the image)."""

    @classmethod
    def from_config(
        cls,
        cfg: config_mod.EnvironmentConfig,
        *,
        image: pulumi.Input[str],
        tags: Mapping[str, str],
        repository_arn: pulumi.Input[str] | None = None,
    ) -> EfMigrationTaskArgs:
        from components import service as service_mod

        service_args = service_mod.BlueGreenFargateServiceArgs.from_config(
            cfg, image=image, tags=tags
        )
        return cls(
            names=cfg.names,
            account_id=cfg.account_id,
            region=cfg.region,
            aspnetcore_environment=service_mod.aspnetcore_environment(service_args),
            image=image,
            service=cfg.service,
            migration=cfg.migration,
            tags=dict(tags),
            repository_arn=repository_arn,
        )


def migration_spec(args: EfMigrationTaskArgs, image: str) -> td.TaskDefinitionSpec:
    """The migration container's spec for ``image`` (validated by the renderer)."""
    svc = args.service
    return td.TaskDefinitionSpec(
        service_name=args.names.container,
        container=CONTAINER,
        environment_name=args.names.environment,
        image=image,
        cpu=svc.cpu,
        memory=svc.memory,
        cpu_architecture=svc.cpu_architecture,
        aspnetcore_environment=args.aspnetcore_environment,
        account_id=args.account_id,
        region=args.region,
        log_group_name=log_group_name(args.names),
        log_stream_prefix=LOG_STREAM_PREFIX,
        health_check=None,
        listens=False,
        command=tuple(args.migration.command),
        environment=dict(svc.environment_variables),
        secrets=dict(svc.secrets),
        stop_timeout_seconds=svc.stop_timeout_seconds,
    )


def task_tags(args: EfMigrationTaskArgs) -> dict[str, str]:
    return {**args.tags, TIMEOUT_TAG: str(args.migration.timeout_minutes * 60)}


class EfMigrationTask(pulumi.ComponentResource):
    """The migration task definition, its two roles and its log group (see module docstring)."""

    family: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: EfMigrationTaskArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self._args = args
        tags = dict(args.tags)
        n = args.names
        if any("$" in part for part in args.migration.command):
            pulumi.log.warn(
                f"migration.command {list(args.migration.command)!r}: ECS runs the command "
                "without a shell, so '$' variables are passed literally; let the bundle read "
                "the connection string from configuration (the service's secrets)",
                resource=self,
            )
        spec = pulumi.Output.from_input(args.image).apply(lambda image: migration_spec(args, image))

        log_key_arn: pulumi.Input[str]
        if args.service.log_kms_key_arn:
            log_key_arn = args.service.log_kms_key_arn
        else:
            key = aws.kms.Key(
                f"{name}-logs-key",
                description=f"{n.prefix}: migration task logs",
                enable_key_rotation=True,
                deletion_window_in_days=30,
                policy=iam.to_json(
                    kms.key_policy(
                        args.account_id,
                        service_principals=[f"logs.{args.region}.amazonaws.com"],
                        service_conditions={
                            "ArnEquals": {
                                "kms:EncryptionContext:aws:logs:arn": (
                                    f"arn:aws:logs:{args.region}:{args.account_id}:log-group:"
                                    f"{log_group_name(n)}"
                                )
                            }
                        },
                    )
                ),
                tags=tags,
                opts=self._opts(),
            )
            aws.kms.Alias(
                f"{name}-logs-key-alias",
                name=n.kms_alias("migrate-logs"),
                target_key_id=key.key_id,
                opts=self._opts(),
            )
            log_key_arn = key.arn
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name(n),
            retention_in_days=args.service.log_retention_days,
            kms_key_id=log_key_arn,
            tags=tags,
            opts=self._opts(),
        )

        self.execution_role = aws.iam.Role(
            f"{name}-execution-role",
            name=execution_role_name(n),
            description="ECS agent for the migration task: pull, write its logs, read its secrets",
            assume_role_policy=iam.to_json(iam_service.execution_role_trust_policy()),
            tags=tags,
            opts=self._opts(),
        )
        aws.iam.RolePolicy(
            f"{name}-execution-policy",
            role=self.execution_role.id,
            policy=pulumi.Output.all(spec, pulumi.Output.from_input(args.repository_arn)).apply(
                lambda sr: iam.to_json(
                    iam_service.execution_role_policy(sr[0], repository_arn=sr[1] or None)
                )
            ),
            opts=self._opts(),
        )
        # No policy: the bundle talks to the database, not to AWS.
        self.task_role = aws.iam.Role(
            f"{name}-task-role",
            name=task_role_name(n),
            description="The migration bundle's own AWS permissions (none)",
            assume_role_policy=iam.to_json(
                iam_service.task_role_trust_policy(account_id=args.account_id, region=args.region)
            ),
            tags=tags,
            opts=self._opts(),
        )
        svc = args.service
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=n.migration_family,
            cpu=str(svc.cpu),
            memory=str(svc.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            execution_role_arn=self.execution_role.arn,
            task_role_arn=self.task_role.arn,
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                cpu_architecture=svc.cpu_architecture, operating_system_family="LINUX"
            ),
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=td.TMP_VOLUME)],
            container_definitions=spec.apply(td.container_definitions_json),
            tags=task_tags(args),
            opts=self._opts(depends_on=[self.log_group]),
        )

        self.family = self.task_definition.family
        self.task_definition_arn = self.task_definition.arn
        self.execution_role_arn = self.execution_role.arn
        self.task_role_arn = self.task_role.arn
        self.log_group_name = self.log_group.name
        outputs: dict[str, Any] = {
            "family": self.family,
            "task_definition_arn": self.task_definition_arn,
            "execution_role_arn": self.execution_role_arn,
            "task_role_arn": self.task_role_arn,
            "log_group_name": self.log_group_name,
            "container": CONTAINER,
        }
        self.register_outputs(outputs)

    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)
