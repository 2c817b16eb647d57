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

import pulumi
import pulumi_aws as aws

from components import config as config_mod
from components import tags as tags_mod
from components.render import iam, kms

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


def _tooling_build(ctx: ToolingContext) -> None:
    """The DevSecOpsBuildProject."""
    from components import build as build_mod

    build_mod.DevSecOpsBuildProject(
        "build",
        build_mod.args_from_config(ctx.cfg, kms_key_arn=ctx.artifact_key.arn, tags=ctx.tags),
    )


def _tooling_pipeline(ctx: ToolingContext) -> None:
    """The PromotionPipeline. Exports pipelineRoleArn."""
    from components import pipeline as pipeline_mod

    promotion = pipeline_mod.from_config(ctx.cfg, artifact_key=ctx.artifact_key, tags=ctx.tags)
    pulumi.export("pipelineRoleArn", promotion.pipeline_role_arn)


def build_tooling(cfg: config_mod.ToolingConfig) -> None:
    names = cfg.names
    tags = stack_tags(cfg)
    key = aws.kms.Key(
        "artifact-key",
        description=f"{cfg.app.name}: pipeline artifacts, images and logs",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=iam.to_json(kms.key_policy(cfg.account_id)),
        tags=tags,
    )
    aws.kms.Alias("artifact-key-alias", name=names.kms_alias("artifacts"), target_key_id=key.key_id)
    pulumi.export("artifactKeyArn", key.arn)
    ctx = ToolingContext(cfg=cfg, tags=tags, artifact_key=key)
    _tooling_image(ctx)
    _tooling_build(ctx)
    _tooling_pipeline(ctx)


# --------------------------------------------------------------------------------------
# Environment stacks
# --------------------------------------------------------------------------------------
@dataclass
class EnvironmentContext:
    """What an environment stack's parts share."""

    cfg: config_mod.EnvironmentConfig
    tags: dict[str, str]
    tooling: pulumi.StackReference


def _environment_service(ctx: EnvironmentContext) -> None:
    """Network, ALB, BlueGreenFargateService, alarms. Exports the service outputs."""


def _environment_deploy_role(ctx: EnvironmentContext) -> None:
    """The deploy role trusted only by the tooling pipeline role (none in single-account
    mode). Exports deployRoleArn."""


def _environment_budget(ctx: EnvironmentContext) -> None:
    """A monthly AWS Budgets cost budget for this service in this environment, filtered by
    the ``Application`` AND ``Environment`` cost-allocation tags, alerting on actual and
    forecasted spend. (Tags count for Budgets only once they are activated as cost
    allocation tags in the payer account - see README, "Cost governance".)"""
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
    tooling = pulumi.StackReference("tooling", stack_name=tooling_stack)
    ctx = EnvironmentContext(cfg=cfg, tags=stack_tags(cfg), tooling=tooling)
    _environment_service(ctx)
    _environment_deploy_role(ctx)
    _environment_budget(ctx)


def main() -> None:
    """Entry point of the Pulumi program."""
    try:
        cfg = config_mod.load_from_pulumi()
    except config_mod.ConfigError as exc:
        # RunError: Pulumi prints the message without a traceback; nothing is registered.
        raise pulumi.RunError("invalid configuration:\n  " + "\n  ".join(exc.problems)) from None
    if isinstance(cfg, config_mod.ToolingConfig):
        build_tooling(cfg)
    else:
        build_environment(cfg)
