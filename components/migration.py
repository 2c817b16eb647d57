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

from components import _wiring, naming
from components import config as config_mod
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

        self.log_group = _wiring.encrypted_log_group(
            f"{name}-logs",
            name=log_group_name(n),
            retention_in_days=args.service.log_retention_days,
            account_id=args.account_id,
            region=args.region,
            key_description=f"{n.prefix}: migration task logs",
            key_alias=n.kms_alias("migrate-logs"),
            existing_key_arn=args.service.log_kms_key_arn,
            tags=tags,
            parent=self,
        ).log_group
        # The task role gets no policy: the bundle talks to the database, not to AWS.
        task = _wiring.fargate_task(
            name,
            family=n.migration_family,
            service=args.service,
            spec=spec,
            repository_arn=args.repository_arn,
            execution_role_name=execution_role_name(n),
            execution_role_description=(
                "ECS agent for the migration task: pull, write its logs, read its secrets"
            ),
            task_role_name=task_role_name(n),
            task_role_description="The migration bundle's own AWS permissions (none)",
            account_id=args.account_id,
            region=args.region,
            tags=tags,
            task_tags=task_tags(args),
            depends_on=[self.log_group],
            parent=self,
        )
        self.execution_role = task.execution_role
        self.task_role = task.task_role
        self.task_definition = task.task_definition

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
