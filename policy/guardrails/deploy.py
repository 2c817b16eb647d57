"""Deployments roll back on their own.

* ``codedeploy-ecs-auto-rollback``: an ECS deployment group rolls back on failure and on
  alarm, with alarm monitoring on and at least one alarm.
* ``ecs-blue-green-rollback-alarms``: an ECS service on the native engine (controller ``ECS``)
  with a ``BLUE_GREEN`` / ``CANARY`` / ``LINEAR`` strategy has alarms with rollback on.
* ``codedeploy-service-has-deployment-group`` (stack): every ECS service with the
  ``CODE_DEPLOY`` controller is the target of a deployment group, or nothing can deploy it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, Severity
from pulumi_policy.proxy import UnknownValueError

from ._core import (
    GuardrailPolicy,
    GuardrailStackPolicy,
    Settings,
    Subject,
    as_list,
    as_mapping,
    as_str,
    is_true,
)

DEPLOYMENT_GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
ECS_SERVICE = "aws:ecs/service:Service"
ROLLBACK_EVENTS = ("DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM")
BLUE_GREEN_STRATEGIES = frozenset({"BLUE_GREEN", "CANARY", "LINEAR"})


def _ecs_service_target(props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    raw = props.get("ecsService")
    target = as_mapping(raw)
    if target is None:
        items = as_list(raw)
        target = as_mapping(items[0]) if items else None
    return target


def check_codedeploy(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    if _ecs_service_target(props) is None:
        return  # an EC2/on-premises or Lambda deployment group
    rollback = as_mapping(props.get("autoRollbackConfiguration"))
    if rollback is None or not is_true(rollback.get("enabled")):
        yield (
            f"{subject.label}: automatic rollback is off. Fix: set autoRollbackConfiguration = "
            "{enabled: true, events: ['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']}."
        )
    else:
        events = {e.upper() for e in as_list(rollback.get("events")) if isinstance(e, str)}
        missing = [e for e in ROLLBACK_EVENTS if e not in events]
        if missing:
            yield (
                f"{subject.label}: autoRollbackConfiguration does not roll back on "
                f"{', '.join(missing)}. Fix: set events to "
                "['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']."
            )
    alarms_config = as_mapping(props.get("alarmConfiguration"))
    alarms = (
        [a for a in as_list(alarms_config.get("alarms")) if isinstance(a, str) and a]
        if alarms_config
        else []
    )
    minimum = int(settings["minimumAlarms"] or 1)
    if alarms_config is None or not is_true(alarms_config.get("enabled")):
        yield (
            f"{subject.label}: alarm monitoring is off, so a bad release is not stopped. Fix: set "
            "alarmConfiguration = {enabled: true, alarms: [<5xx alarm>, <latency alarm>]}."
        )
    elif len(alarms) < minimum:
        yield (
            f"{subject.label}: alarmConfiguration lists {len(alarms)} alarm(s); at least "
            f"{minimum} required. Fix: add the service's 5xx and latency alarms."
        )


CODEDEPLOY_ECS_AUTO_ROLLBACK = GuardrailPolicy(
    name="codedeploy-ecs-auto-rollback",
    display_name="CodeDeploy ECS deployments roll back on failure and alarm",
    description=(
        "CodeDeploy ECS deployment groups roll back automatically on deployment failure and on "
        "alarm, with alarm monitoring enabled and at least one alarm."
    ),
    resource_types=(DEPLOYMENT_GROUP,),
    check=check_codedeploy,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=(
        "autoRollbackConfiguration {enabled: true, events: [DEPLOYMENT_FAILURE, "
        "DEPLOYMENT_STOP_ON_ALARM]} and alarmConfiguration {enabled: true, alarms: [...]}."
    ),
    config_properties={
        "minimumAlarms": {
            "type": "integer",
            "minimum": 1,
            "description": "How many alarms a deployment group must watch.",
            "default": 1,
        }
    },
)


def _controller(props: Mapping[str, Any]) -> str:
    controller = as_mapping(props.get("deploymentController"))
    kind = as_str(controller.get("type")) if controller else None
    return (kind or "ECS").upper()


def _alarm_rollback_problem(props: Mapping[str, Any]) -> str | None:
    alarms = as_mapping(props.get("alarms"))
    if alarms is None:
        return "has no deployment alarms"
    names = [n for n in as_list(alarms.get("alarmNames")) if isinstance(n, str) and n]
    if not is_true(alarms.get("enable")):
        return "has deployment alarms switched off (alarms.enable is not true)"
    if not is_true(alarms.get("rollback")):
        return "does not roll back on alarm (alarms.rollback is not true)"
    if not names:
        return "lists no alarm names in alarms.alarmNames"
    return None


def check_ecs_service(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    if _controller(props) != "ECS":
        return  # CODE_DEPLOY / EXTERNAL: the deployer owns rollback
    configuration = as_mapping(props.get("deploymentConfiguration"))
    raw = as_str(configuration.get("strategy")) if configuration else None
    strategy = (raw or "ROLLING").upper()
    fix = (
        "Fix: set alarms = {alarmNames: [<5xx alarm>, <latency alarm>], enable: true, "
        "rollback: true}."
    )
    if strategy in BLUE_GREEN_STRATEGIES:
        problem = _alarm_rollback_problem(props)
        if problem:
            yield f"{subject.label}: {strategy} deployment {problem}. {fix}"
        return
    if settings["requireBlueGreen"]:
        yield (
            f"{subject.label}: deploys with the {strategy} strategy. Fix: use the native "
            "blue/green engine: deploymentConfiguration.strategy = 'BLUE_GREEN' with bake time, "
            "alarms with rollback and a test listener rule."
        )
        return
    if settings["rollingRequiresRollback"]:
        breaker = as_mapping(props.get("deploymentCircuitBreaker"))
        breaker_rolls_back = (
            breaker is not None
            and is_true(breaker.get("enable"))
            and is_true(breaker.get("rollback"))
        )
        if not breaker_rolls_back and _alarm_rollback_problem(props) is not None:
            yield (
                f"{subject.label}: rolling deployment with neither a circuit breaker nor alarms "
                "that roll back. Fix: set deploymentCircuitBreaker = {enable: true, rollback: "
                "true} and/or alarms with rollback."
            )


ECS_BLUE_GREEN_ROLLBACK_ALARMS = GuardrailPolicy(
    name="ecs-blue-green-rollback-alarms",
    display_name="Native ECS blue/green deployments roll back on alarm",
    description=(
        "ECS services on the native deployment engine with a BLUE_GREEN, CANARY or LINEAR "
        "strategy watch alarms and roll back when one fires."
    ),
    resource_types=(ECS_SERVICE,),
    check=check_ecs_service,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps="alarms {alarmNames: [...], enable: true, rollback: true}.",
    config_properties={
        "requireBlueGreen": {
            "type": "boolean",
            "description": "Also refuse ECS-controller services that deploy with ROLLING.",
            "default": False,
        },
        "rollingRequiresRollback": {
            "type": "boolean",
            "description": (
                "Require ROLLING services to roll back (circuit breaker or alarms with rollback)."
            ),
            "default": False,
        },
    },
)


# --------------------------------------------------------------------------------------
# Stack policy: every CODE_DEPLOY service has a deployment group.
# --------------------------------------------------------------------------------------
def _short_name(value: str) -> str:
    """``arn:aws:ecs:…:cluster/name`` or ``…:service/cluster/name`` → ``name``."""
    return value.rsplit("/", 1)[-1].rsplit(":", 1)[-1] if value.startswith("arn:") else value


def _service_key(resource: PolicyResource) -> tuple[str, str]:
    props = resource.props
    name = as_str(props.get("name")) or resource.name
    cluster = as_str(props.get("cluster")) or "default"
    return _short_name(cluster), _short_name(name)


def check_services_have_groups(
    resources: Sequence[PolicyResource], settings: Settings
) -> Iterator[tuple[str, str | None]]:
    """One pass over the stack: index deployment-group targets, then look services up."""
    targets: set[tuple[str, str]] = set()
    services: list[tuple[PolicyResource, tuple[str, str]]] = []
    unknown: UnknownValueError | None = None
    for resource in resources:
        try:
            if resource.resource_type == DEPLOYMENT_GROUP:
                target = _ecs_service_target(resource.props)
                if target is not None:
                    cluster = as_str(target.get("clusterName")) or ""
                    service = as_str(target.get("serviceName")) or ""
                    targets.add((_short_name(cluster), _short_name(service)))
            elif resource.resource_type == ECS_SERVICE and _controller(resource.props) == (
                "CODE_DEPLOY"
            ):
                services.append((resource, _service_key(resource)))
        except UnknownValueError as exc:  # judge what is known, then report the unknown
            unknown = exc
    for resource, (cluster, name) in services:
        if (cluster, name) in targets:
            continue
        if unknown is not None:
            continue  # an unknown deployment group might target it: cannot judge yet
        yield (
            f"{ECS_SERVICE} '{resource.name}' (service '{name}' in cluster '{cluster}') uses the "
            "CODE_DEPLOY deployment controller but no CodeDeploy deployment group targets it, so "
            "no release can reach it. Fix: create an aws.codedeploy.DeploymentGroup with "
            f"ecsService = {{clusterName: '{cluster}', serviceName: '{name}'}} (or use the ECS "
            "controller).",
            resource.urn,
        )
    if unknown is not None:
        raise unknown


CODEDEPLOY_SERVICE_HAS_DEPLOYMENT_GROUP = GuardrailStackPolicy(
    name="codedeploy-service-has-deployment-group",
    display_name="CODE_DEPLOY services have a deployment group",
    description=(
        "Every ECS service with the CODE_DEPLOY deployment controller is targeted by a "
        "CodeDeploy deployment group in the same stack."
    ),
    check=check_services_have_groups,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=(
        "Create a CodeDeploy deployment group whose ecsService names the service and cluster."
    ),
)
