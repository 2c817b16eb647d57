"""Compose the components per stack role (``__main__.py`` only calls :func:`main`).

* ``tooling``: artifact KMS key, ECR repository + initial image, CodeBuild, CodePipeline.
* ``environment`` (dev / stage / prod): network, ALB, ECS service with its blue/green engine,
  alarms, deploy role, budget; reads the tooling stack through one ``StackReference``.

Dependencies point one way: an environment stack reads the tooling stack's exports
(:data:`TOOLING_EXPORTS`); the tooling stack never reads an environment stack and addresses
environment resources by the deterministic names in :mod:`components.naming`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import config as config_mod
from components import tags as tags_mod
from components.render import iam

#: What the tooling stack exports for the environment stacks (and nothing more).
TOOLING_EXPORTS = (
    "repositoryUrl",
    "repositoryArn",
    "imageRef",
    "platforms",
    "pipelineRoleArn",
    "artifactKeyArn",
)


def stack_tags(cfg: config_mod.StackConfig) -> dict[str, str]:
    environment = cfg.environment if isinstance(cfg, config_mod.EnvironmentConfig) else "tooling"
    return tags_mod.standard_tags(
        application=cfg.app.name,
        environment=environment,
        owner=cfg.app.owner,
        cost_center=cfg.app.cost_center,
        extra=cfg.app.extra_tags,
    )


# --------------------------------------------------------------------------------------
# Tooling stack
# --------------------------------------------------------------------------------------
@dataclass
class ToolingContext:
    """What the tooling stack's parts share."""

    cfg: config_mod.ToolingConfig
    tags: dict[str, str]
    artifact_key: aws.kms.Key


def _tooling_image(ctx: ToolingContext) -> None:
    """ECR repository + the initial image (DotnetServiceImage). Exports repositoryUrl,
    repositoryArn, imageRef, platforms."""
    from components import image as image_mod

    args = image_mod.args_from_config(ctx.cfg, kms_key_arn=ctx.artifact_key.arn, tags=ctx.tags)
    image = image_mod.DotnetServiceImage("image", args)
    pulumi.export("repositoryUrl", image.repository_url)
    pulumi.export("repositoryArn", image.repository_arn)
    pulumi.export("imageRef", image.image_ref)
    pulumi.export("platforms", image.platforms)


def _tooling_build(ctx: ToolingContext) -> pulumi.Resource:
    """The DevSecOpsBuildProject."""
    from components import build as build_mod

    return build_mod.DevSecOpsBuildProject(
        "build",
        build_mod.args_from_config(ctx.cfg, kms_key_arn=ctx.artifact_key.arn, tags=ctx.tags),
    )


def _tooling_pipeline(ctx: ToolingContext, build: pulumi.Resource) -> None:
    """The PromotionPipeline (after the build project: it grants the build role the source
    connection). Exports pipelineRoleArn."""
    from components import pipeline as pipeline_mod

    promotion = pipeline_mod.from_config(
        ctx.cfg, artifact_key=ctx.artifact_key, tags=ctx.tags, build_dependencies=[build]
    )
    pulumi.export("pipelineRoleArn", promotion.pipeline_role_arn)


def build_tooling(cfg: config_mod.ToolingConfig) -> None:
    names = cfg.names
    tags = stack_tags(cfg)
    key = aws.kms.Key(
        "artifact-key",
        description=f"{cfg.app.name}: pipeline artifacts, images and logs",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        # The key policy is one aws.kms.KeyPolicy owned by the pipeline (it adds the
        # environment deploy roles); setting it here too would make two owners fight.
        tags=tags,
    )
    aws.kms.Alias("artifact-key-alias", name=names.kms_alias("artifacts"), target_key_id=key.key_id)
    pulumi.export("artifactKeyArn", key.arn)
    ctx = ToolingContext(cfg=cfg, tags=tags, artifact_key=key)
    _tooling_image(ctx)
    build = _tooling_build(ctx)
    _tooling_pipeline(ctx, build)


# --------------------------------------------------------------------------------------
# Environment stacks
# --------------------------------------------------------------------------------------
@dataclass
class EnvironmentContext:
    """What an environment stack's parts share."""

    cfg: config_mod.EnvironmentConfig
    tags: dict[str, str]
    tooling: pulumi.StackReference


def _initial_image(ctx: EnvironmentContext) -> pulumi.Output[str]:
    """The tooling stack's initial image (``imageRef``, by digest) for the task definitions."""
    cfg = ctx.cfg

    def image_ref(values: list[object]) -> str:
        ref, repository_url = values
        if isinstance(ref, str) and ref:
            return ref
        # The tooling stack has not exported an image yet: fail the update loudly (an
        # error diagnostic fails `pulumi up`) but keep rendering so previews stay useful.
        pulumi.log.error(
            "tooling stack exports no imageRef; bring up the tooling stack (it builds the "
            "initial image) before this environment"
        )
        repo = repository_url or (
            f"{cfg.accounts.tooling}.dkr.ecr.{cfg.region}.amazonaws.com/{cfg.names.repository}"
        )
        return f"{repo}@sha256:{'0' * 64}"

    return pulumi.Output.all(
        ctx.tooling.get_output("imageRef"), ctx.tooling.get_output("repositoryUrl")
    ).apply(image_ref)


def _environment_service(ctx: EnvironmentContext) -> None:
    """Network, ALB, BlueGreenFargateService, alarms. Exports the service outputs."""
    from components import service as service_mod

    cfg = ctx.cfg
    image = _initial_image(ctx)
    args = service_mod.BlueGreenFargateServiceArgs.from_config(
        cfg,
        image=image,
        tags=ctx.tags,
        repository_arn=ctx.tooling.get_output("repositoryArn"),
    )
    component = service_mod.BlueGreenFargateService(cfg.names.prefix, args)
    for key, value in service_mod.service_exports(component).items():
        pulumi.export(key, value)


def _environment_migration(ctx: EnvironmentContext) -> None:
    """The EF Core migration task definition (``migration.enabled``; none otherwise). Exports
    migrationFamily."""
    cfg = ctx.cfg
    if not cfg.migration.enabled:
        return
    from components import migration as migration_mod

    args = migration_mod.EfMigrationTaskArgs.from_config(
        cfg,
        image=_initial_image(ctx),
        tags=ctx.tags,
        repository_arn=ctx.tooling.get_output("repositoryArn"),
    )
    task = migration_mod.EfMigrationTask(f"{cfg.names.prefix}-migration", args)
    pulumi.export("migrationFamily", task.family)


def _environment_deploy_role(ctx: EnvironmentContext) -> None:
    """The deploy role trusted only by the tooling pipeline role. Exports deployRoleArn.

    Created iff THIS environment's account differs from the tooling account (a per-environment
    rule: in a mixed setup, an environment that shares the tooling account gets none, while
    the others do; single-account mode is the case where no environment gets one)."""
    from components import naming as naming_mod

    cfg = ctx.cfg
    if cfg.account_id == cfg.accounts.tooling:
        return  # the pipeline deploys with its own role: no cross-account role
    names = cfg.names
    pipeline_role_arn = ctx.tooling.get_output("pipelineRoleArn")
    role = aws.iam.Role(
        "deploy-role",
        name=names.deploy_role,
        description=f"Deploys {names.prefix}; assumed only by the tooling deployer role",
        assume_role_policy=pulumi.Output.from_input(pipeline_role_arn).apply(
            lambda arn: iam.to_json(
                iam.assume_role_policy(
                    aws_principals=[
                        arn
                        or naming_mod.role_arn(
                            naming_mod.Names(cfg.app.name, naming_mod.TOOLING).deployer_role,
                            account_id=cfg.accounts.tooling,
                        )
                    ]
                )
            )
        ),
        max_session_duration=3600,
        tags=ctx.tags,
    )
    aws.iam.RolePolicy(
        "deploy-role-policy",
        role=role.id,
        policy=pulumi.Output.from_input(ctx.tooling.get_output("artifactKeyArn")).apply(
            lambda key: iam.to_json(_deploy_role_policy(cfg, artifact_key_arn=key or None))
        ),
    )
    pulumi.export("deployRoleArn", role.arn)


def _deploy_role_policy(
    cfg: config_mod.EnvironmentConfig, *, artifact_key_arn: str | None
) -> dict[str, Any]:
    """The deploy role's permissions: exactly what components/runtime/deploy.py and
    migrate.py do in this environment, scoped by the deterministic names."""
    from components import migration as migration_mod
    from components import naming as naming_mod
    from components import service as service_mod
    from components.render import iam_deploy

    names = cfg.names
    d = cfg.deployment
    codedeploy = d.engine == "codedeploy"
    choice = service_mod.codedeploy_choice(d, name_prefix=names.prefix) if codedeploy else None
    role_arns = [
        naming_mod.role_arn(names.execution_role, account_id=cfg.account_id),
        naming_mod.role_arn(names.task_role, account_id=cfg.account_id),
    ]
    return iam_deploy.deploy_role_policy(
        region=cfg.region,
        account_id=cfg.account_id,
        cluster=names.cluster,
        service=names.ecs_service,
        task_family=names.task_family,
        pass_role_arns=role_arns,
        engine=d.engine,
        codedeploy_application=names.codedeploy_application if codedeploy else None,
        codedeploy_group=names.codedeploy_group if codedeploy else None,
        codedeploy_configs=[choice.deployment_config_name] if choice else [],
        migration_family=names.migration_family if cfg.migration.enabled else None,
        # The migration task definition's own roles (components/migration.py), not the service's.
        migration_pass_role_arns=(
            migration_mod.role_arns(names, account_id=cfg.account_id)
            if cfg.migration.enabled
            else []
        ),
        artifact_key_arn=artifact_key_arn,
    )


def _environment_budget(ctx: EnvironmentContext) -> None:
    """A monthly AWS Budgets cost budget for this service in this environment, filtered by
    the ``Application`` AND ``Environment`` cost-allocation tags, alerting on actual and
    forecasted spend. (Tags count for Budgets only once they are activated as cost
    allocation tags in the payer account - see README, "Cost governance".)

    ``metrics="UnblendedCost"``: pulumi-aws v7 documents ``filter_expression`` as
    "Conflicts with ``cost_filter`` and requires ``metrics``" (and every filter_expression
    example in ``pulumi_aws/budgets/budget.py`` sets one); the Budgets API's ``Metrics`` is a
    one-element list of ``BlendedCost | UnblendedCost | AmortizedCost | …`` and replaces the
    deprecated ``CostTypes``. Unblended cost is what the bill charges and Cost Explorer's
    default view."""
    budget = ctx.cfg.budget
    if budget is None:
        return
    subscribers = list(budget.subscriber_emails)
    aws.budgets.Budget(
        "budget",
        name=ctx.cfg.names.budget,
        budget_type="COST",
        time_unit="MONTHLY",
        limit_amount=f"{budget.monthly_limit_usd:.2f}",
        limit_unit="USD",
        metrics="UnblendedCost",
        filter_expression=aws.budgets.BudgetFilterExpressionArgs(
            ands=[
                aws.budgets.BudgetFilterExpressionAndArgs(
                    tags=aws.budgets.BudgetFilterExpressionAndTagsArgs(
                        key=key, values=[ctx.tags[key]], match_options=["EQUALS"]
                    )
                )
                for key in ("Application", "Environment")
            ]
        ),
        notifications=[
            aws.budgets.BudgetNotificationArgs(
                comparison_operator="GREATER_THAN",
                notification_type=kind,
                threshold=float(budget.alert_threshold_percent),
                threshold_type="PERCENTAGE",
                subscriber_email_addresses=subscribers,
            )
            for kind in ("ACTUAL", "FORECASTED")
        ],
        tags=ctx.tags,
    )


def build_environment(cfg: config_mod.EnvironmentConfig) -> None:
    tooling_stack = cfg.tooling_stack or (
        f"{pulumi.get_organization()}/{pulumi.get_project()}/tooling"
    )
    for warning in cfg.warnings:
        pulumi.log.warn(warning)
    tooling = pulumi.StackReference("tooling", stack_name=tooling_stack)
    # An ARM64 (or X86_64) runtime needs that platform in the image the tooling stack builds.
    tooling.get_output("platforms").apply(lambda platforms: _check_platforms(cfg, platforms))
    ctx = EnvironmentContext(cfg=cfg, tags=stack_tags(cfg), tooling=tooling)
    _environment_service(ctx)
    _environment_migration(ctx)
    _environment_deploy_role(ctx)
    _environment_budget(ctx)


def _check_platforms(cfg: config_mod.EnvironmentConfig, platforms: Any) -> None:
    """Fail the update (an error diagnostic, no traceback) when the image the tooling stack
    exports lacks this environment's CPU architecture."""
    if not isinstance(platforms, list) or not platforms:
        return  # not exported yet (first bring-up of an old tooling stack): nothing to judge
    problem = config_mod.architecture_problem(cfg.service.cpu_architecture, platforms)
    if problem:
        pulumi.log.error(f"{config_mod.NAMESPACE}:service.cpuArchitecture: {problem}")


class InvalidConfiguration(pulumi.RunError):
    """A configuration problem: Pulumi prints a RunError's message without a traceback."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def main() -> None:
    """Entry point of the Pulumi program."""
    try:
        cfg = config_mod.load_from_pulumi()
        # Components validate what only they can see (a VERSION file, the git commit) before
        # they register anything, raising ConfigError too.
        if isinstance(cfg, config_mod.ToolingConfig):
            build_tooling(cfg)
        else:
            build_environment(cfg)
    except config_mod.ConfigError as exc:
        # RunError: Pulumi prints the message without a traceback.
        raise InvalidConfiguration(exc.problems) from None
