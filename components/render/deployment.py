"""Deployment settings -> blue/green engine inputs (pure; no Pulumi imports).

Every function returns plain values or **snake_case kwargs dicts** shaped exactly like the
pulumi_aws v7 ``*Args`` classes they feed, so the component passes them straight through
(``aws.ecs.Service(deployment_configuration=ecs_deployment_configuration(...))``).

CodeDeploy (engine ``codedeploy``)
    :func:`codedeploy_config` turns a validated choice into a :class:`CodeDeployConfig`:
    ``AllAtOnce``, one of AWS's predefined ECS configurations (:data:`PREDEFINED_ECS_CONFIGS`,
    the five ``CodeDeployDefault.ECS*`` names), or a custom ``TimeBasedCanary`` /
    ``TimeBasedLinear`` :class:`CustomTrafficRouting` that needs its own
    ``aws.codedeploy.DeploymentConfig`` (deterministic name, see :meth:`CodeDeployConfig.
    deployment_config_args`). :func:`codedeploy_group_args` renders the deployment group's
    blue/green, rollback and alarm blocks.

ECS native blue/green (engine ``ecs``)
    :func:`ecs_deployment_configuration` renders ``ServiceDeploymentConfigurationArgs``
    (strategy ``BLUE_GREEN`` / ``CANARY`` / ``LINEAR``, bake time, canary or linear settings,
    lifecycle hooks from :func:`ecs_lifecycle_hooks`). Note pulumi_aws types the minute
    fields as strings (``bake_time_in_minutes: str``); they are rendered as such.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


class DeploymentSettingsError(ValueError):
    """A deployment choice the engines do not accept (the message says what they do)."""


# --------------------------------------------------------------------------------------
# CodeDeploy
# --------------------------------------------------------------------------------------

RoutingType = Literal["AllAtOnce", "TimeBasedCanary", "TimeBasedLinear"]
ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"
_PREDEFINED_PREFIX = "CodeDeployDefault."

#: AWS's predefined ECS deployment configurations: name -> (type, percentage, interval min).
PREDEFINED_ECS_CONFIGS: dict[str, tuple[RoutingType, int | None, int | None]] = {
    ALL_AT_ONCE: ("AllAtOnce", None, None),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
}

_CONFIG_NAME_RE = re.compile(r"^[A-Za-z0-9+=,.@_-]{1,100}$")  # CreateDeploymentConfig


@dataclass(frozen=True)
class CustomTrafficRouting:
    """A custom CodeDeploy traffic shift: ``percentage`` first (canary) or per step (linear),
    ``interval_minutes`` between shifts."""

    type: Literal["TimeBasedCanary", "TimeBasedLinear"]
    percentage: int
    interval_minutes: int

    def __post_init__(self) -> None:
        if self.type not in ("TimeBasedCanary", "TimeBasedLinear"):
            raise DeploymentSettingsError(
                f"deployment.type: {self.type!r} is not TimeBasedCanary or TimeBasedLinear"
            )
        if isinstance(self.percentage, bool) or not 1 <= self.percentage <= 99:
            raise DeploymentSettingsError(
                f"deployment.percentage: {self.percentage!r} must be a whole percentage 1..99"
            )
        if isinstance(self.interval_minutes, bool) or self.interval_minutes < 1:
            raise DeploymentSettingsError(
                f"deployment.interval_minutes: {self.interval_minutes!r} must be at least 1"
            )


@dataclass(frozen=True)
class CodeDeployConfig:
    """The deployment group's ``deployment_config_name`` and, for a custom config, the
    values of the ``aws.codedeploy.DeploymentConfig`` the component must create."""

    deployment_config_name: str
    traffic_routing_type: RoutingType
    percentage: int | None
    interval_minutes: int | None
    predefined: bool

    @property
    def shifts_gradually(self) -> bool:
        """True for canary and linear (what a production environment should use)."""
        return self.traffic_routing_type != "AllAtOnce"

    def traffic_routing_config(self) -> dict[str, Any]:
        """``DeploymentConfigTrafficRoutingConfigArgs`` kwargs."""
        if self.traffic_routing_type == "AllAtOnce":
            return {"type": "AllAtOnce"}
        canary = self.traffic_routing_type == "TimeBasedCanary"
        block = "time_based_canary" if canary else "time_based_linear"
        return {
            "type": self.traffic_routing_type,
            block: {"interval": self.interval_minutes, "percentage": self.percentage},
        }

    def deployment_config_args(self) -> dict[str, Any] | None:
        """``aws.codedeploy.DeploymentConfig`` kwargs for a custom config; ``None`` when the
        config is predefined (AWS owns it; creating one is neither needed nor allowed)."""
        if self.predefined:
            return None
        return {
            "compute_platform": "ECS",
            "deployment_config_name": self.deployment_config_name,
            "traffic_routing_config": self.traffic_routing_config(),
        }


def _predefined(name: str) -> str | None:
    if name == "AllAtOnce":
        return ALL_AT_ONCE
    full = name if name.startswith(_PREDEFINED_PREFIX) else f"{_PREDEFINED_PREFIX}{name}"
    return full if full in PREDEFINED_ECS_CONFIGS else None


def custom_config_name(routing: CustomTrafficRouting, *, name_prefix: str) -> str:
    """The deterministic name of a custom config (same values -> same name -> no diff)."""
    if routing.type == "TimeBasedCanary":
        suffix = f"canary-{routing.percentage}pct-{routing.interval_minutes}min"
    else:
        suffix = f"linear-{routing.percentage}pct-every-{routing.interval_minutes}min"
    name = f"{name_prefix}-{suffix}"
    if not _CONFIG_NAME_RE.match(name) or name.startswith(_PREDEFINED_PREFIX):
        raise DeploymentSettingsError(
            f"deployment config name {name!r} must be 1-100 of [A-Za-z0-9+=,.@_-] and not "
            f"start with {_PREDEFINED_PREFIX!r}; use a shorter name_prefix"
        )
    return name


def codedeploy_config(
    choice: str | CustomTrafficRouting, *, name_prefix: str = ""
) -> CodeDeployConfig:
    """A validated CodeDeploy deployment configuration.

    ``choice``: ``"AllAtOnce"``, a predefined name with or without ``CodeDeployDefault.``
    (``"ECSCanary10Percent5Minutes"``), or a :class:`CustomTrafficRouting` (then
    ``name_prefix`` - e.g. ``orders-api-prod`` - names the custom config).
    """
    if isinstance(choice, CustomTrafficRouting):
        if not name_prefix:
            raise DeploymentSettingsError("a custom deployment config needs a name_prefix")
        return CodeDeployConfig(
            deployment_config_name=custom_config_name(choice, name_prefix=name_prefix),
            traffic_routing_type=choice.type,
            percentage=choice.percentage,
            interval_minutes=choice.interval_minutes,
            predefined=False,
        )
    name = _predefined(choice)
    if name is None:
        allowed = ", ".join(["AllAtOnce", *PREDEFINED_ECS_CONFIGS])
        raise DeploymentSettingsError(
            f"deployment.config: {choice!r} is not a predefined ECS deployment configuration; "
            f"use one of {allowed}, or a custom TimeBasedCanary/TimeBasedLinear "
            "(percentage 1-99, interval_minutes >= 1)"
        )
    kind, percentage, interval = PREDEFINED_ECS_CONFIGS[name]
    return CodeDeployConfig(
        deployment_config_name=name,
        traffic_routing_type=kind,
        percentage=percentage,
        interval_minutes=interval,
        predefined=True,
    )


#: CodeDeploy's limits: BlueInstanceTerminationOption.terminationWaitTimeInMinutes is at
#: most 2880 (2 days, API reference); the ready wait uses the same cap (the console offers
#: at most 2 days - not stated in the API reference). A deployment group takes <= 10 alarms.
MAX_WAIT_MINUTES = 2880
MAX_CODEDEPLOY_ALARMS = 10


@dataclass(frozen=True)
class CodeDeployGroupSettings:
    """Blue/green behaviour of the CodeDeploy deployment group."""

    #: Minutes the old (blue) task set keeps running after traffic moved (fast rollback).
    termination_wait_minutes: int = 5
    #: 0: shift traffic as soon as the green tasks are ready. N > 0: wait up to N minutes for
    #: a manual ``ContinueDeployment`` (the deployment stops if nobody continues it).
    ready_wait_minutes: int = 0

    def __post_init__(self) -> None:
        for name, value in (
            ("termination_wait_minutes", self.termination_wait_minutes),
            ("ready_wait_minutes", self.ready_wait_minutes),
        ):
            if isinstance(value, bool) or not 0 <= value <= MAX_WAIT_MINUTES:
                raise DeploymentSettingsError(
                    f"deployment.{name}: {value!r} must be 0..{MAX_WAIT_MINUTES} minutes"
                )


def codedeploy_group_args(
    settings: CodeDeployGroupSettings, *, alarm_names: Sequence[str]
) -> dict[str, Any]:
    """``aws.codedeploy.DeploymentGroup`` kwargs for the blue/green behaviour: deployment
    style, ready/termination options, auto-rollback on failure and on alarm, alarms."""
    alarms = list(dict.fromkeys(alarm_names))
    if not alarms:
        raise DeploymentSettingsError("alarm_names: rollback on alarm needs at least one alarm")
    if len(alarms) > MAX_CODEDEPLOY_ALARMS:
        raise DeploymentSettingsError(
            f"alarm_names: {len(alarms)} alarms; a CodeDeploy deployment group takes at most "
            f"{MAX_CODEDEPLOY_ALARMS}"
        )
    if settings.ready_wait_minutes:
        ready = {
            "action_on_timeout": "STOP_DEPLOYMENT",
            "wait_time_in_minutes": settings.ready_wait_minutes,
        }
    else:
        ready = {"action_on_timeout": "CONTINUE_DEPLOYMENT"}
    return {
        "deployment_style": {
            "deployment_option": "WITH_TRAFFIC_CONTROL",
            "deployment_type": "BLUE_GREEN",
        },
        "blue_green_deployment_config": {
            "deployment_ready_option": ready,
            "terminate_blue_instances_on_deployment_success": {
                "action": "TERMINATE",
                "termination_wait_time_in_minutes": settings.termination_wait_minutes,
            },
        },
        "auto_rollback_configuration": {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
        },
        "alarm_configuration": {"enabled": True, "alarms": alarms},
    }


# --------------------------------------------------------------------------------------
# ECS native blue/green
# --------------------------------------------------------------------------------------

EcsStrategy = Literal["BLUE_GREEN", "CANARY", "LINEAR"]
MAX_BAKE_MINUTES = 1440  # ECS: bake times are 0..1440 minutes


def _tenths(value: float) -> bool:
    return math.isclose(value * 10, round(value * 10), abs_tol=1e-9)


@dataclass(frozen=True)
class EcsDeploymentSettings:
    """ECS native blue/green settings (ECS API ranges enforced)."""

    strategy: EcsStrategy = "BLUE_GREEN"
    #: Minutes blue and green both run after production traffic moved (rollback window).
    bake_time_minutes: int = 5
    #: CANARY: share of production traffic first (0.1..100, multiples of 0.1) ...
    canary_percent: float | None = None
    #: ... and minutes before the rest moves (0..1440).
    canary_bake_time_minutes: int | None = None
    #: LINEAR: share per step (3.0..100, multiples of 0.1) and minutes between steps.
    linear_step_percent: float | None = None
    linear_step_bake_time_minutes: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in ("BLUE_GREEN", "CANARY", "LINEAR"):
            raise DeploymentSettingsError(
                f"deployment.strategy: {self.strategy!r} is not BLUE_GREEN, CANARY or LINEAR"
            )
        self._minutes("bake_time_minutes", self.bake_time_minutes)
        canary = (self.canary_percent, self.canary_bake_time_minutes)
        linear = (self.linear_step_percent, self.linear_step_bake_time_minutes)
        if self.strategy != "CANARY" and any(v is not None for v in canary):
            raise DeploymentSettingsError(
                f"deployment.canary_*: set only with strategy CANARY (is {self.strategy})"
            )
        if self.strategy != "LINEAR" and any(v is not None for v in linear):
            raise DeploymentSettingsError(
                f"deployment.linear_*: set only with strategy LINEAR (is {self.strategy})"
            )
        if self.strategy == "CANARY":
            self._percent("canary_percent", self.canary_percent, 0.1)
            self._minutes("canary_bake_time_minutes", self.canary_bake_time_minutes)
        if self.strategy == "LINEAR":
            self._percent("linear_step_percent", self.linear_step_percent, 3.0)
            self._minutes("linear_step_bake_time_minutes", self.linear_step_bake_time_minutes)

    def _minutes(self, name: str, value: int | None) -> None:
        if value is None or isinstance(value, bool) or not 0 <= value <= MAX_BAKE_MINUTES:
            raise DeploymentSettingsError(
                f"deployment.{name}: {value!r} must be 0..{MAX_BAKE_MINUTES} minutes "
                f"(required with strategy {self.strategy})"
            )

    def _percent(self, name: str, value: float | None, low: float) -> None:
        if (
            value is None
            or isinstance(value, bool)
            or not low <= value <= 100.0
            or not _tenths(value)
        ):
            raise DeploymentSettingsError(
                f"deployment.{name}: {value!r} must be {low}..100.0 in steps of 0.1 "
                f"(required with strategy {self.strategy})"
            )

    @property
    def shifts_gradually(self) -> bool:
        return self.strategy != "BLUE_GREEN"


SMOKE_TEST_STAGE = "POST_TEST_TRAFFIC_SHIFT"
ADMISSION_STAGE = "PRE_SCALE_UP"


def ecs_lifecycle_hooks(
    *,
    role_arn: str,
    smoke_test_function_arn: str,
    admission_function_arn: str | None = None,
    smoke_test_details: Mapping[str, Any] | None = None,
    admission_details: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``ServiceDeploymentConfigurationLifecycleHookArgs`` kwargs: the smoke test after test
    traffic reaches green (``POST_TEST_TRAFFIC_SHIFT``) and, optionally, the digest admission
    check before green scales up (``PRE_SCALE_UP``). ``*_details`` become the hook's
    ``hook_details`` (stable JSON)."""
    for key, value in (
        ("role_arn", role_arn),
        ("smoke_test_function_arn", smoke_test_function_arn),
        ("admission_function_arn", admission_function_arn),
    ):
        if value is not None and not value.startswith("arn:"):
            raise DeploymentSettingsError(f"{key}: {value!r} is not an ARN")

    def hook(arn: str, stage: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "hook_target_arn": arn,
            "role_arn": role_arn,
            "lifecycle_stages": [stage],
        }
        if details:
            rendered["hook_details"] = json.dumps(dict(details), sort_keys=True)
        return rendered

    hooks = []
    if admission_function_arn is not None:
        hooks.append(hook(admission_function_arn, ADMISSION_STAGE, admission_details))
    hooks.append(hook(smoke_test_function_arn, SMOKE_TEST_STAGE, smoke_test_details))
    return hooks


def ecs_deployment_configuration(
    settings: EcsDeploymentSettings, *, lifecycle_hooks: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """``ServiceDeploymentConfigurationArgs`` kwargs for ``settings``."""
    config: dict[str, Any] = {
        "strategy": settings.strategy,
        "bake_time_in_minutes": str(settings.bake_time_minutes),
    }
    if settings.strategy == "CANARY":
        config["canary_configuration"] = {
            "canary_percent": float(settings.canary_percent or 0),
            "canary_bake_time_in_minutes": str(settings.canary_bake_time_minutes),
        }
    if settings.strategy == "LINEAR":
        config["linear_configuration"] = {
            "step_percent": float(settings.linear_step_percent or 0),
            "step_bake_time_in_minutes": str(settings.linear_step_bake_time_minutes),
        }
    if lifecycle_hooks:
        config["lifecycle_hooks"] = [dict(h) for h in lifecycle_hooks]
    return config


def ecs_service_alarms(alarm_names: Sequence[str], *, rollback: bool = True) -> dict[str, Any]:
    """``ServiceAlarmsArgs`` kwargs: deployments watch these alarms and roll back on them."""
    names = list(dict.fromkeys(alarm_names))
    if not names:
        raise DeploymentSettingsError("alarm_names: at least one alarm is required")
    return {"alarm_names": names, "enable": True, "rollback": rollback}


def ecs_load_balancer_advanced_configuration(
    *,
    alternate_target_group_arn: str,
    production_listener_rule_arn: str,
    test_listener_rule_arn: str,
    role_arn: str,
) -> dict[str, Any]:
    """``ServiceLoadBalancerAdvancedConfigurationArgs`` kwargs for native blue/green."""
    return {
        "alternate_target_group_arn": alternate_target_group_arn,
        "production_listener_rule": production_listener_rule_arn,
        "test_listener_rule": test_listener_rule_arn,
        "role_arn": role_arn,
    }
