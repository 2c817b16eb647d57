"""The release timeline: an environment's deployment settings → steps with worst-case times.

Pure: settings in, :class:`Timeline` out. The worst case assumes every wait runs to its
limit (hooks to their timeout, every canary/linear interval, bake time, termination wait),
which is what a release can take before it either finishes or rolls back.

Assumptions that are not configuration (documented here so the numbers can be checked):

* green tasks start and pass ``healthyThreshold * interval`` ALB health checks after
  :data:`TASK_START_SECONDS` of image pull and .NET start-up;
* a deploy action's own overhead (assume role, register revision, create deployment) is
  :data:`DEPLOY_OVERHEAD_SECONDS`.

The lead time (commit → staging, commit → prod) sums the build estimate and each
environment's deploy window and test step; the manual approval wait is excluded. The
source document's targets are 10 minutes from commit to artifact and 5 minutes from
artifact to staging; :func:`lead_time` warns when a stack exceeds its budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TASK_START_SECONDS = 90
DEPLOY_OVERHEAD_SECONDS = 30
ARTIFACT_TARGET_MINUTES = 10
STAGING_TARGET_MINUTES = 5
"""The source document's artifact-to-staging target (config default)."""


@dataclass(frozen=True)
class Step:
    name: str
    seconds: int
    detail: str = ""


@dataclass(frozen=True)
class Timeline:
    environment: str
    engine: str
    strategy: str
    steps: tuple[Step, ...]

    @property
    def worst_case_seconds(self) -> int:
        return sum(s.seconds for s in self.steps)

    def lines(self) -> list[str]:
        out, t = [], 0
        for step in self.steps:
            t += step.seconds
            detail = f" ({step.detail})" if step.detail else ""
            out.append(f"+{_mmss(step.seconds):>6}  @ {_mmss(t):>6}  {step.name}{detail}")
        return out


def _mmss(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass(frozen=True)
class DeploySettings:
    """What the timeline needs from an environment's config (plain values)."""

    environment: str
    engine: str  # "codedeploy" | "ecs"
    strategy: str  # "allAtOnce" | "canary" | "linear"
    canary_percent: int = 10
    canary_minutes: int = 5
    linear_percent: int = 10
    linear_minutes: int = 1
    bake_time_minutes: int = 0
    termination_wait_minutes: int = 0
    ready_wait_minutes: int = 0
    hook_timeout_seconds: int = 300
    health_interval_seconds: int = 15
    healthy_threshold: int = 2
    deregistration_delay_seconds: int = 30
    migration_timeout_minutes: int | None = None
    admission_hook_seconds: int = 0
    """ECS engine: the PRE_SCALE_UP digest admission hook's timeout (0: no hook)."""


def shift_seconds(
    strategy: str, *, canary_minutes: int, linear_percent: int, linear_minutes: int
) -> int:
    """Time from the first production traffic to 100 %."""
    if strategy == "allAtOnce":
        return 0
    if strategy == "canary":
        return canary_minutes * 60
    if strategy == "linear":
        steps = math.ceil(100 / linear_percent)
        return (steps - 1) * linear_minutes * 60
    raise ValueError(f"strategy {strategy!r}: use allAtOnce, canary or linear")


def deploy_timeline(s: DeploySettings) -> Timeline:
    steps: list[Step] = []
    if s.migration_timeout_minutes:
        steps.append(Step("EF Core migration task", s.migration_timeout_minutes * 60, "timeout"))
    steps.append(Step("register task definition + start deployment", DEPLOY_OVERHEAD_SECONDS))
    if s.engine == "ecs" and s.admission_hook_seconds:
        steps.append(
            Step("PRE_SCALE_UP digest admission hook", s.admission_hook_seconds, "timeout")
        )
    health = TASK_START_SECONDS + s.healthy_threshold * s.health_interval_seconds
    steps.append(Step("green tasks start and pass health checks", health))
    shift = shift_seconds(
        s.strategy,
        canary_minutes=s.canary_minutes,
        linear_percent=s.linear_percent,
        linear_minutes=s.linear_minutes,
    )
    if s.strategy == "canary":
        how = f"{s.canary_percent}% for {s.canary_minutes} min, then 100%"
    elif s.strategy == "linear":
        how = f"{s.linear_percent}% every {s.linear_minutes} min"
    else:
        how = "100% at once"
    if s.engine == "codedeploy":
        steps.append(Step("AfterAllowTestTraffic smoke hook", s.hook_timeout_seconds, "timeout"))
        if s.ready_wait_minutes:
            steps.append(Step("wait for reroute approval", s.ready_wait_minutes * 60))
        steps.append(Step("production traffic shift", shift, how))
        steps.append(Step("termination wait (rollback window)", s.termination_wait_minutes * 60))
    else:
        steps.append(Step("POST_TEST_TRAFFIC_SHIFT smoke hook", s.hook_timeout_seconds, "timeout"))
        steps.append(Step("production traffic shift", shift, how))
        steps.append(Step("bake time (rollback window)", s.bake_time_minutes * 60))
    steps.append(Step("blue deregistration delay", s.deregistration_delay_seconds))
    return Timeline(s.environment, s.engine, s.strategy, tuple(steps))


@dataclass(frozen=True)
class LeadTime:
    build_seconds: int
    to_staging_seconds: int | None
    to_prod_seconds: int
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def lead_time(
    *,
    build_minutes: int,
    stages: Sequence[tuple[str, Timeline | None, int, bool]],
    budget_minutes: int,
    staging_environment: str = "stage",
    build_budget_minutes: int = ARTIFACT_TARGET_MINUTES,
    staging_budget_minutes: int | None = None,
) -> LeadTime:
    """Commit → each environment. ``stages`` = (env, its timeline or None when unknown,
    test minutes, approval before it). Approval waits are excluded.

    Warnings: the build estimate over ``build_budget_minutes`` (commit → artifact; the
    source document's 10), artifact → staging (worst case) over ``staging_budget_minutes``
    (its 5), and commit → staging over ``budget_minutes``."""
    steps = [Step("build, test, scan, push (estimate)", build_minutes * 60)]
    warnings: list[str] = []
    to_staging: int | None = None
    for env, tl, test_minutes, approval in stages:
        if approval:
            steps.append(Step(f"manual approval before {env}", 0, "wait excluded"))
        window = tl.worst_case_seconds if tl else 0
        steps.append(Step(f"deploy {env}", window, "worst case" if tl else "unknown"))
        steps.append(Step(f"test {env}", test_minutes * 60))
        if env == staging_environment:
            to_staging = sum(s.seconds for s in steps)
    total = sum(s.seconds for s in steps)
    if build_minutes > build_budget_minutes:
        warnings.append(
            f"commit to artifact is estimated at {build_minutes} min; the target is "
            f"{build_budget_minutes} min"
        )
    if (
        to_staging is not None
        and staging_budget_minutes is not None
        and to_staging - build_minutes * 60 > staging_budget_minutes * 60
    ):
        warnings.append(
            f"artifact to {staging_environment} takes up to "
            f"{_mmss(to_staging - build_minutes * 60)} (worst case), over the target of "
            f"{staging_budget_minutes} min"
        )
    if to_staging is not None and to_staging > budget_minutes * 60:
        warnings.append(
            f"commit to {staging_environment} takes up to {_mmss(to_staging)} (worst "
            f"case), over the lead-time budget of {budget_minutes} min"
        )
    return LeadTime(build_minutes * 60, to_staging, total, tuple(steps), tuple(warnings))


# --------------------------------------------------------------------------------------
# From validated config (imported lazily to keep this module free of pydantic at import)
# --------------------------------------------------------------------------------------
def settings_from_config(env: Any) -> DeploySettings:
    """:class:`DeploySettings` from a :class:`components.config.EnvironmentConfig`."""
    d, hc = env.deployment, env.load_balancer.health_check
    return DeploySettings(
        environment=env.environment,
        engine=d.engine,
        strategy=d.strategy,
        canary_percent=d.canary_percent,
        canary_minutes=d.canary_minutes,
        linear_percent=d.linear_percent,
        linear_minutes=d.linear_minutes,
        bake_time_minutes=d.bake_time_minutes if d.engine == "ecs" else 0,
        termination_wait_minutes=d.termination_wait_minutes if d.engine == "codedeploy" else 0,
        ready_wait_minutes=d.ready_wait_minutes if d.engine == "codedeploy" else 0,
        hook_timeout_seconds=d.hook_timeout_seconds,
        health_interval_seconds=hc.interval_seconds,
        healthy_threshold=hc.healthy_threshold,
        deregistration_delay_seconds=env.load_balancer.deregistration_delay_seconds,
        migration_timeout_minutes=env.migration.timeout_minutes if env.migration.enabled else None,
        admission_hook_seconds=_admission_hook_seconds() if d.admission_hook else 0,
    )


def _admission_hook_seconds() -> int:
    from components.service import ADMISSION_HOOK_TIMEOUT_SECONDS

    return ADMISSION_HOOK_TIMEOUT_SECONDS


def for_stack(cfg: Any, siblings: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Timeline entries for ``preview``: an environment's own deploy timeline, or, for the
    tooling stack, every environment's plus the commit-to-prod lead time (``siblings`` maps
    environment names to their validated configs, read from their stack files)."""
    from components import config as config_mod

    if isinstance(cfg, config_mod.EnvironmentConfig):
        return [_entry(deploy_timeline(settings_from_config(cfg)))]
    entries: list[dict[str, Any]] = []
    stages = []
    for env in cfg.pipeline.environments:
        sibling = (siblings or {}).get(env.name)
        tl: Timeline | None = None
        if sibling is not None:
            tl = deploy_timeline(settings_from_config(sibling))
        if tl:
            entries.append(_entry(tl))
        stages.append((env.name, tl, env.test_estimate_minutes, env.approval_before))
    lt = lead_time(
        build_minutes=cfg.build.estimate_minutes,
        stages=stages,
        budget_minutes=cfg.pipeline.lead_time_budget_minutes,
        build_budget_minutes=cfg.pipeline.build_budget_minutes,
        staging_budget_minutes=cfg.pipeline.staging_budget_minutes,
    )
    lines, t = [], 0
    for step in lt.steps:
        t += step.seconds
        detail = f" ({step.detail})" if step.detail else ""
        lines.append(f"+{_mmss(step.seconds):>6}  @ {_mmss(t):>6}  {step.name}{detail}")
    summary = f"commit → prod: {_mmss(lt.to_prod_seconds)} worst case, approval wait excluded"
    if lt.to_staging_seconds is not None:
        summary += f"; commit → stage: {_mmss(lt.to_staging_seconds)}"
    entries.append(
        {
            "title": f"Lead time ({summary})",
            "environment": None,
            "worstCaseSeconds": lt.to_prod_seconds,
            "toStagingSeconds": lt.to_staging_seconds,
            "lines": lines,
            "warnings": list(lt.warnings),
        }
    )
    return entries


def _entry(tl: Timeline) -> dict[str, Any]:
    return {
        "title": (
            f"Release timeline {tl.environment} ({tl.engine}, {tl.strategy}): "
            f"worst case {_mmss(tl.worst_case_seconds)}"
        ),
        "environment": tl.environment,
        "worstCaseSeconds": tl.worst_case_seconds,
        "lines": tl.lines(),
        "warnings": [],
    }
