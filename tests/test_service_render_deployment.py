"""Deployment settings -> engine inputs, checked against the pulumi_aws v7 Args classes."""

from __future__ import annotations

import inspect
import json
import re
import types
from typing import Any

import pulumi_aws.codedeploy as codedeploy
import pulumi_aws.ecs as ecs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render.deployment import (
    ALL_AT_ONCE,
    PREDEFINED_ECS_CONFIGS,
    CodeDeployGroupSettings,
    CustomTrafficRouting,
    DeploymentSettingsError,
    EcsDeploymentSettings,
    codedeploy_config,
    codedeploy_group_args,
    ecs_deployment_configuration,
    ecs_lifecycle_hooks,
    ecs_load_balancer_advanced_configuration,
    ecs_service_alarms,
)

ACCOUNT = "123456789012"
HOOK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-api-prod-hook"
SMOKE = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders-api-prod-smoke-hook"
ADMIT = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders-api-prod-admission"

_SCALARS: dict[str, type] = {"str": str, "float": float, "int": int, "bool": bool}


def assert_fits(cls: type, kwargs: dict[str, Any], module: types.ModuleType) -> None:
    """``kwargs`` are accepted by ``cls.__init__``: known names, required ones present, and
    scalars/nested blocks of the annotated type (recursively, for nested ``*Args``)."""
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    unknown = set(kwargs) - set(params)
    assert not unknown, f"{cls.__name__} has no {sorted(unknown)}"
    required = {
        n for n, p in params.items() if n != "__self__" and p.default is inspect.Parameter.empty
    }
    required.discard("self")
    assert required <= set(kwargs), f"{cls.__name__} needs {sorted(required - set(kwargs))}"
    for name, value in kwargs.items():
        annotation = str(params[name].annotation)
        nested = re.search(r"'(\w+Args)'", annotation)
        if nested:
            nested_cls = getattr(module, nested.group(1))
            items = value if "Sequence[" in annotation else [value]
            assert isinstance(items, list)
            for item in items:
                assert isinstance(item, dict)
                assert_fits(nested_cls, item, module)
            continue
        if "Sequence[" in annotation:
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), name
            continue
        scalar = re.match(r"typing\.Union\[(str|float|int|bool),", annotation)
        assert scalar, f"{cls.__name__}.{name}: unexpected annotation {annotation}"
        python_type = _SCALARS[scalar.group(1)]
        assert isinstance(value, python_type), (
            f"{cls.__name__}.{name}={value!r} is not {python_type.__name__}"
        )
        if python_type is not bool:
            assert not isinstance(value, bool), f"{cls.__name__}.{name}={value!r} is a bool"


def test_assert_fits_catches_a_wrong_type_and_an_unknown_name() -> None:
    with pytest.raises(AssertionError, match="is not str"):
        assert_fits(ecs.ServiceDeploymentConfigurationArgs, {"bake_time_in_minutes": 5}, ecs)
    with pytest.raises(AssertionError, match="has no"):
        assert_fits(ecs.ServiceDeploymentConfigurationArgs, {"bakeTimeInMinutes": "5"}, ecs)


# ---- CodeDeploy ----------------------------------------------------------------------


def test_the_predefined_ecs_configurations_are_awss_five() -> None:
    assert PREDEFINED_ECS_CONFIGS == {
        "CodeDeployDefault.ECSAllAtOnce": ("AllAtOnce", None, None),
        "CodeDeployDefault.ECSCanary10Percent5Minutes": ("TimeBasedCanary", 10, 5),
        "CodeDeployDefault.ECSCanary10Percent15Minutes": ("TimeBasedCanary", 10, 15),
        "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": ("TimeBasedLinear", 10, 1),
        "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": ("TimeBasedLinear", 10, 3),
    }


def test_all_at_once() -> None:
    config = codedeploy_config("AllAtOnce")
    assert config.deployment_config_name == ALL_AT_ONCE
    assert config.predefined and not config.shifts_gradually
    assert config.deployment_config_args() is None


@pytest.mark.parametrize(
    "choice", ["ECSCanary10Percent5Minutes", "CodeDeployDefault.ECSCanary10Percent5Minutes"]
)
def test_predefined_names_with_or_without_prefix(choice: str) -> None:
    config = codedeploy_config(choice)
    assert config.deployment_config_name == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    assert config.shifts_gradually
    assert (config.traffic_routing_type, config.percentage, config.interval_minutes) == (
        "TimeBasedCanary",
        10,
        5,
    )
    assert config.deployment_config_args() is None


@pytest.mark.parametrize(
    "choice",
    ["ECSCanary25Percent5Minutes", "CodeDeployDefault.OneAtATime", "canary", "", "ECSAllAtOnce "],
)
def test_unknown_choices_list_what_is_allowed(choice: str) -> None:
    with pytest.raises(DeploymentSettingsError) as info:
        codedeploy_config(choice)
    message = str(info.value)
    assert message.startswith(f"deployment.config: {choice!r} is not a predefined")
    for name in PREDEFINED_ECS_CONFIGS:
        assert name in message
    assert "TimeBasedCanary/TimeBasedLinear" in message


def test_custom_canary() -> None:
    config = codedeploy_config(
        CustomTrafficRouting("TimeBasedCanary", 25, 10), name_prefix="orders-api-prod"
    )
    assert not config.predefined and config.shifts_gradually
    args = config.deployment_config_args()
    assert args == {
        "compute_platform": "ECS",
        "deployment_config_name": "orders-api-prod-canary-25pct-10min",
        "traffic_routing_config": {
            "type": "TimeBasedCanary",
            "time_based_canary": {"interval": 10, "percentage": 25},
        },
    }
    assert_fits(codedeploy.DeploymentConfigArgs, args, codedeploy)


def test_custom_linear() -> None:
    config = codedeploy_config(
        CustomTrafficRouting("TimeBasedLinear", 20, 2), name_prefix="orders-api-stage"
    )
    args = config.deployment_config_args()
    assert args is not None
    assert args["deployment_config_name"] == "orders-api-stage-linear-20pct-every-2min"
    assert args["traffic_routing_config"] == {
        "type": "TimeBasedLinear",
        "time_based_linear": {"interval": 2, "percentage": 20},
    }
    assert_fits(codedeploy.DeploymentConfigArgs, args, codedeploy)


@pytest.mark.parametrize(
    ("routing", "fragment"),
    [
        (("TimeBasedCanary", 0, 5), "deployment.percentage: 0 must be a whole percentage 1..99"),
        (("TimeBasedCanary", 100, 5), "deployment.percentage: 100 must be"),
        (("TimeBasedLinear", True, 5), "deployment.percentage: True must be"),
        (("TimeBasedLinear", 10, 0), "deployment.interval_minutes: 0 must be at least 1"),
        (("AllAtOnce", 10, 1), "deployment.type: 'AllAtOnce' is not TimeBasedCanary"),
    ],
)
def test_custom_routing_is_validated(routing: tuple[Any, Any, Any], fragment: str) -> None:
    with pytest.raises(DeploymentSettingsError, match=re.escape(fragment)):
        CustomTrafficRouting(*routing)


def test_custom_config_needs_a_usable_name() -> None:
    routing = CustomTrafficRouting("TimeBasedCanary", 10, 5)
    with pytest.raises(DeploymentSettingsError, match="needs a name_prefix"):
        codedeploy_config(routing)
    with pytest.raises(DeploymentSettingsError, match="use a shorter name_prefix"):
        codedeploy_config(routing, name_prefix="x" * 90)
    with pytest.raises(DeploymentSettingsError, match="must be 1-100 of"):
        codedeploy_config(routing, name_prefix="CodeDeployDefault.mine")


@given(
    a=st.tuples(
        st.sampled_from(["TimeBasedCanary", "TimeBasedLinear"]),
        st.integers(1, 99),
        st.integers(1, 2880),
    ),
    b=st.tuples(
        st.sampled_from(["TimeBasedCanary", "TimeBasedLinear"]),
        st.integers(1, 99),
        st.integers(1, 2880),
    ),
)
@settings(max_examples=80, deadline=None)
def test_custom_names_are_deterministic_valid_and_distinct(
    a: tuple[Any, int, int], b: tuple[Any, int, int]
) -> None:
    config_a = codedeploy_config(CustomTrafficRouting(*a), name_prefix="orders-api-prod")
    again = codedeploy_config(CustomTrafficRouting(*a), name_prefix="orders-api-prod")
    config_b = codedeploy_config(CustomTrafficRouting(*b), name_prefix="orders-api-prod")
    assert config_a == again
    assert re.fullmatch(r"[A-Za-z0-9+=,.@_-]{1,100}", config_a.deployment_config_name)
    assert (config_a.deployment_config_name == config_b.deployment_config_name) == (a == b)
    args = config_a.deployment_config_args()
    assert args is not None
    assert_fits(codedeploy.DeploymentConfigArgs, args, codedeploy)


def test_codedeploy_group_args() -> None:
    args = codedeploy_group_args(
        CodeDeployGroupSettings(termination_wait_minutes=15),
        alarm_names=["orders-api-prod-target-5xx", "orders-api-prod-p99", "orders-api-prod-p99"],
    )
    assert args == {
        "deployment_style": {
            "deployment_option": "WITH_TRAFFIC_CONTROL",
            "deployment_type": "BLUE_GREEN",
        },
        "blue_green_deployment_config": {
            "deployment_ready_option": {"action_on_timeout": "CONTINUE_DEPLOYMENT"},
            "terminate_blue_instances_on_deployment_success": {
                "action": "TERMINATE",
                "termination_wait_time_in_minutes": 15,
            },
        },
        "auto_rollback_configuration": {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
        },
        "alarm_configuration": {
            "enabled": True,
            "alarms": ["orders-api-prod-target-5xx", "orders-api-prod-p99"],
        },
    }
    full = {
        "app_name": "orders-api-prod",
        "deployment_group_name": "orders-api-prod-bg",
        "service_role_arn": HOOK_ROLE,
        **args,
    }
    assert_fits(codedeploy.DeploymentGroupArgs, full, codedeploy)


def test_ready_wait_stops_for_manual_continue() -> None:
    args = codedeploy_group_args(CodeDeployGroupSettings(ready_wait_minutes=60), alarm_names=["a"])
    assert args["blue_green_deployment_config"]["deployment_ready_option"] == {
        "action_on_timeout": "STOP_DEPLOYMENT",
        "wait_time_in_minutes": 60,
    }


def test_codedeploy_group_limits() -> None:
    with pytest.raises(DeploymentSettingsError, match=r"termination_wait_minutes: 2881"):
        CodeDeployGroupSettings(termination_wait_minutes=2881)
    with pytest.raises(DeploymentSettingsError, match="at least one alarm"):
        codedeploy_group_args(CodeDeployGroupSettings(), alarm_names=[])
    with pytest.raises(DeploymentSettingsError, match=r"11 alarms; .* at most 10"):
        codedeploy_group_args(CodeDeployGroupSettings(), alarm_names=[f"a{i}" for i in range(11)])


# ---- ECS native ----------------------------------------------------------------------


def test_blue_green() -> None:
    config = ecs_deployment_configuration(EcsDeploymentSettings(bake_time_minutes=10))
    assert config == {"strategy": "BLUE_GREEN", "bake_time_in_minutes": "10"}
    assert_fits(ecs.ServiceDeploymentConfigurationArgs, config, ecs)


def test_canary() -> None:
    settings_ = EcsDeploymentSettings(
        strategy="CANARY", canary_percent=10, canary_bake_time_minutes=15
    )
    config = ecs_deployment_configuration(settings_)
    assert config == {
        "strategy": "CANARY",
        "bake_time_in_minutes": "5",
        "canary_configuration": {"canary_percent": 10.0, "canary_bake_time_in_minutes": "15"},
    }
    assert settings_.shifts_gradually
    assert_fits(ecs.ServiceDeploymentConfigurationArgs, config, ecs)


def test_linear_with_hooks() -> None:
    hooks = ecs_lifecycle_hooks(
        role_arn=HOOK_ROLE,
        smoke_test_function_arn=SMOKE,
        admission_function_arn=ADMIT,
        smoke_test_details={"paths": ["/health/ready", "/orders/1"], "timeout_seconds": 5},
    )
    config = ecs_deployment_configuration(
        EcsDeploymentSettings(
            strategy="LINEAR", linear_step_percent=25.0, linear_step_bake_time_minutes=2
        ),
        lifecycle_hooks=hooks,
    )
    assert config["linear_configuration"] == {
        "step_percent": 25.0,
        "step_bake_time_in_minutes": "2",
    }
    assert config["lifecycle_hooks"] == [
        {"hook_target_arn": ADMIT, "role_arn": HOOK_ROLE, "lifecycle_stages": ["PRE_SCALE_UP"]},
        {
            "hook_target_arn": SMOKE,
            "role_arn": HOOK_ROLE,
            "lifecycle_stages": ["POST_TEST_TRAFFIC_SHIFT"],
            "hook_details": '{"paths": ["/health/ready", "/orders/1"], "timeout_seconds": 5}',
        },
    ]
    assert json.loads(config["lifecycle_hooks"][1]["hook_details"])["timeout_seconds"] == 5
    assert_fits(ecs.ServiceDeploymentConfigurationArgs, config, ecs)


def test_smoke_hook_alone() -> None:
    hooks = ecs_lifecycle_hooks(role_arn=HOOK_ROLE, smoke_test_function_arn=SMOKE)
    assert [h["lifecycle_stages"] for h in hooks] == [["POST_TEST_TRAFFIC_SHIFT"]]
    with pytest.raises(DeploymentSettingsError, match="smoke_test_function_arn: 'smoke'"):
        ecs_lifecycle_hooks(role_arn=HOOK_ROLE, smoke_test_function_arn="smoke")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"strategy": "ROLLING"}, "deployment.strategy: 'ROLLING' is not BLUE_GREEN"),
        ({"bake_time_minutes": 1441}, "deployment.bake_time_minutes: 1441 must be 0..1440"),
        ({"strategy": "CANARY", "canary_bake_time_minutes": 5}, "canary_percent: None"),
        (
            {"strategy": "CANARY", "canary_percent": 0.05, "canary_bake_time_minutes": 5},
            "canary_percent: 0.05 must be 0.1..100.0 in steps of 0.1",
        ),
        (
            {"strategy": "CANARY", "canary_percent": 10.15, "canary_bake_time_minutes": 5},
            "canary_percent: 10.15 must be",
        ),
        (
            {"strategy": "LINEAR", "linear_step_percent": 2.9, "linear_step_bake_time_minutes": 1},
            "linear_step_percent: 2.9 must be 3.0..100.0",
        ),
        ({"strategy": "LINEAR", "linear_step_percent": 10.0}, "linear_step_bake_time_minutes"),
        ({"canary_percent": 10.0}, "canary_*: set only with strategy CANARY (is BLUE_GREEN)"),
        (
            {
                "strategy": "CANARY",
                "canary_percent": 10.0,
                "canary_bake_time_minutes": 5,
                "linear_step_percent": 10.0,
            },
            "linear_*: set only with strategy LINEAR (is CANARY)",
        ),
    ],
)
def test_ecs_settings_are_validated(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(DeploymentSettingsError, match=re.escape(fragment)):
        EcsDeploymentSettings(**kwargs)


@st.composite
def ecs_settings(draw: st.DrawFn) -> EcsDeploymentSettings:
    strategy = draw(st.sampled_from(["BLUE_GREEN", "CANARY", "LINEAR"]))
    bake = draw(st.integers(0, 1440))
    if strategy == "CANARY":
        return EcsDeploymentSettings(
            strategy="CANARY",
            bake_time_minutes=bake,
            canary_percent=draw(st.integers(1, 1000)) / 10,
            canary_bake_time_minutes=draw(st.integers(0, 1440)),
        )
    if strategy == "LINEAR":
        return EcsDeploymentSettings(
            strategy="LINEAR",
            bake_time_minutes=bake,
            linear_step_percent=draw(st.integers(30, 1000)) / 10,
            linear_step_bake_time_minutes=draw(st.integers(0, 1440)),
        )
    return EcsDeploymentSettings(bake_time_minutes=bake)


@given(settings_=ecs_settings())
@settings(max_examples=80, deadline=None)
def test_any_valid_ecs_settings_render_pulumi_args(settings_: EcsDeploymentSettings) -> None:
    hooks = ecs_lifecycle_hooks(role_arn=HOOK_ROLE, smoke_test_function_arn=SMOKE)
    config = ecs_deployment_configuration(settings_, lifecycle_hooks=hooks)
    assert_fits(ecs.ServiceDeploymentConfigurationArgs, config, ecs)
    assert config["strategy"] == settings_.strategy
    assert int(config["bake_time_in_minutes"]) == settings_.bake_time_minutes
    assert ("canary_configuration" in config) == (settings_.strategy == "CANARY")
    assert ("linear_configuration" in config) == (settings_.strategy == "LINEAR")
    ecs.ServiceDeploymentConfigurationArgs(**config)  # the real class accepts it


def test_service_alarms_and_advanced_configuration() -> None:
    alarms = ecs_service_alarms(["a", "b", "a"])
    assert alarms == {"alarm_names": ["a", "b"], "enable": True, "rollback": True}
    assert_fits(ecs.ServiceAlarmsArgs, alarms, ecs)
    with pytest.raises(DeploymentSettingsError, match="at least one alarm"):
        ecs_service_alarms([])
    advanced = ecs_load_balancer_advanced_configuration(
        alternate_target_group_arn="arn:tg-green",
        production_listener_rule_arn="arn:rule-443",
        test_listener_rule_arn="arn:rule-8443",
        role_arn="arn:role",
    )
    assert_fits(ecs.ServiceLoadBalancerAdvancedConfigurationArgs, advanced, ecs)
    assert advanced["production_listener_rule"] == "arn:rule-443"
