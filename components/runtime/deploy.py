#!/usr/bin/env python3
"""The deploy step: promote one image digest into one environment (DESIGN.md §4).

Same contract for both blue/green engines. Runs inside a CodeBuild action in the tooling
account; with ``--role-arn`` it first assumes the environment's deploy role (credentials are
refreshed for long waits), without it it works in the current account (single-account mode).

1. ``DescribeTaskDefinition`` of the *family name* - the latest ACTIVE revision, i.e. the shape
   Pulumi last wrote (CPU, env vars, secrets ...), with its tags.
2. :func:`swap_image` - the ``RegisterTaskDefinition`` input that differs from that revision
   only in one container's image, pinned by digest.
3. Hand it to the engine (``--engine auto`` first reads the service's
   ``deploymentController.type`` with ``DescribeServices``: ``CODE_DEPLOY`` -> codedeploy,
   ``ECS`` or absent -> ecs, ``EXTERNAL`` -> refused; the default mode is then the one that
   deploys from this step, ``create-deployment`` / ``update-service``; this is how the pipeline
   runs it, since the tooling stack cannot know an environment's engine):

   * ``--engine codedeploy --mode artifacts`` (default): write ``taskdef.json`` (image
     placeholder ``<IMAGE1_NAME>``), ``appspec.yaml`` (``<TASK_DEFINITION>`` placeholder) and
     ``imageDetail.json`` to ``--output-dir`` for a ``CodeDeployToECS`` action, which registers
     the revision itself (so this mode registers nothing).
   * ``--engine codedeploy --mode create-deployment``: register the revision, create a
     CodeDeploy deployment with an inline AppSpec and wait for it (timeout -> stop with
     rollback).
   * ``--engine ecs``: register the revision, ``UpdateService`` and wait for the ECS service
     deployment (``ListServiceDeployments`` / ``DescribeServiceDeployments``) to succeed or roll
     back (timeout -> stop with rollback).

Progress is one JSON line per poll on stdout; the last line is the result. Exit status: 0 the
deployment succeeded (or the artifacts were written), 1 it failed / rolled back / timed out or
AWS refused a call, 2 bad input (arguments, family, service or container not found).

Self-contained: stdlib + boto3 only, so it can ship as a single file. ``migrate.py`` reuses its
helpers (wait loop, image swap, sessions, AWS error text) and ships next to it.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_PLACEHOLDER = "<IMAGE1_NAME>"
"""What ``CodeDeployToECS`` replaces with ``imageDetail.json``'s ImageURI (Image1ContainerName
``IMAGE1_NAME``)."""

TASK_DEFINITION_PLACEHOLDER = "<TASK_DEFINITION>"
"""What ``CodeDeployToECS`` replaces in the AppSpec with the revision it registered."""

READ_ONLY_TASK_DEFINITION_KEYS = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)
"""Keys ``DescribeTaskDefinition`` returns that ``RegisterTaskDefinition`` does not accept
(botocore's ``TaskDefinition`` shape minus the ``RegisterTaskDefinition`` input; a test keeps
this list equal to that difference)."""

ECS_APPSPEC_HOOKS = (
    "BeforeInstall",
    "AfterInstall",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)
"""Lifecycle hooks CodeDeploy runs for an ECS deployment, in order."""

_DIGEST_REF = re.compile(
    r"^(?P<repository>[a-z0-9][a-z0-9._\-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._\-]*)*)"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z\-]*:ecs:[a-z0-9\-]+:\d{12}:task-definition/[A-Za-z0-9_\-]+:\d+$"
)
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::(?P<account>\d{12}):role/[\w+=,.@\-/]+$")

# ECS service deployment states (botocore ServiceDeploymentStatus).
ECS_SUCCEEDED = frozenset({"SUCCESSFUL"})
ECS_FAILED = frozenset({"ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED"})
ECS_STOPPABLE = frozenset({"PENDING", "IN_PROGRESS"})
# CodeDeploy deployment states (botocore DeploymentStatus).
CODEDEPLOY_SUCCEEDED = frozenset({"Succeeded"})
CODEDEPLOY_FAILED = frozenset({"Failed", "Stopped"})
CODEDEPLOY_IN_PROGRESS = frozenset({"Created", "Queued", "InProgress", "Baking", "Ready"})

#: ``deploymentController.type`` -> engine (``DescribeServices`` omits the controller for a
#: service created without one, which is ``ECS``). ``EXTERNAL`` has no engine here.
ENGINE_BY_CONTROLLER = {"CODE_DEPLOY": "codedeploy", "ECS": "ecs"}
CONTROLLER_BY_ENGINE = {engine: controller for controller, engine in ENGINE_BY_CONTROLLER.items()}
ENGINE_MODES = {"codedeploy": ("artifacts", "create-deployment"), "ecs": ("update-service",)}
DEFAULT_MODE = {"codedeploy": "artifacts", "ecs": "update-service"}
#: Under ``--engine auto`` the default mode is the one that deploys from this step.
AUTO_DEFAULT_MODE = {"codedeploy": "create-deployment", "ecs": "update-service"}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2


class DeployError(Exception):
    """The deployment failed; the message is the reason shown in the pipeline."""

    exit_code = EXIT_FAILED


class InputError(DeployError):
    """Bad arguments or an environment that does not match them (nothing was changed)."""

    exit_code = EXIT_INPUT


@dataclass(frozen=True)
class Status:
    """One observation of something being waited on."""

    state: str
    done: bool
    ok: bool = False
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class WaitTimeout(DeployError):
    """:func:`wait_for` ran out of time; ``last`` is the last observation."""

    def __init__(self, last: Status, elapsed_s: float, timeout_s: float) -> None:
        super().__init__(
            f"timed out after {elapsed_s:.0f}s (limit {timeout_s:.0f}s); last state {last.state}"
        )
        self.last = last
        self.elapsed_s = elapsed_s


# --------------------------------------------------------------------------------------------
# Pure functions
# --------------------------------------------------------------------------------------------


def parse_image_uri(image_uri: str) -> tuple[str, str]:
    """Split ``REPOSITORY@sha256:<64 hex>`` into (repository, digest); anything else is refused."""
    match = _DIGEST_REF.match(image_uri.strip()) if isinstance(image_uri, str) else None
    if not match:
        raise InputError(
            f"image-uri: {image_uri!r} is not pinned by digest; "
            "expected REPOSITORY@sha256:<64 lowercase hex> (no tag)"
        )
    return match["repository"], match["digest"]


def _container_index(task_def: Mapping[str, Any], container: str) -> int:
    containers = task_def.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise InputError(
            f"task definition {task_def.get('family', '?')!r}: containerDefinitions is empty "
            "or missing"
        )
    names = [c.get("name") if isinstance(c, Mapping) else None for c in containers]
    hits = [i for i, name in enumerate(names) if name == container]
    if len(hits) != 1:
        raise InputError(
            f"container: {container!r} not found exactly once in task definition "
            f"{task_def.get('family', '?')!r}; containers are {names}"
        )
    return hits[0]


def _register_input(
    task_def: Mapping[str, Any],
    container: str,
    image: str,
    tags: Sequence[Mapping[str, str]] | None,
) -> dict[str, Any]:
    if not isinstance(task_def, Mapping):
        raise InputError(f"task definition: expected a mapping, got {type(task_def).__name__}")
    index = _container_index(task_def, container)
    request = {
        k: copy.deepcopy(v) for k, v in task_def.items() if k not in READ_ONLY_TASK_DEFINITION_KEYS
    }
    request["containerDefinitions"][index]["image"] = image
    if tags:
        request["tags"] = [dict(t) for t in tags]
    return request


def swap_image(
    task_def: Mapping[str, Any],
    container: str,
    image_uri: str,
    *,
    tags: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """``RegisterTaskDefinition`` input from a described revision, with one image swapped.

    ``task_def`` is ``DescribeTaskDefinition``'s ``taskDefinition``; ``tags`` its ``tags``
    (``include=["TAGS"]``). The result drops the read-only keys, keeps every other key as it
    was, and sets ``containerDefinitions[<container>].image`` to the digest-pinned
    ``image_uri``. The input is not modified.
    """
    parse_image_uri(image_uri)
    return _register_input(task_def, container, image_uri, tags)


def task_definition_template(
    task_def: Mapping[str, Any],
    container: str,
    *,
    tags: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """``taskdef.json`` for ``CodeDeployToECS``: the revision with the image placeholder."""
    return _register_input(task_def, container, IMAGE_PLACEHOLDER, tags)


def container_port_of(task_def: Mapping[str, Any], container: str, port: int | None = None) -> int:
    """The container port the load balancer targets: ``port`` if mapped, else the first mapping."""
    definition = task_def["containerDefinitions"][_container_index(task_def, container)]
    mapped = [
        m["containerPort"]
        for m in definition.get("portMappings") or []
        if isinstance(m, Mapping) and isinstance(m.get("containerPort"), int)
    ]
    if not mapped:
        raise InputError(f"container {container!r} has no portMappings with a containerPort")
    if port is None:
        return int(mapped[0])
    if port not in mapped:
        raise InputError(
            f"container-port: {port} is not mapped by container {container!r}; mapped: {mapped}"
        )
    return port


def _yaml_scalar(value: str | int) -> str:
    """A YAML scalar: integers bare, strings double-quoted with everything non-ASCII escaped."""
    if isinstance(value, int):
        return str(value)
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def render_appspec(
    task_definition_arn: str,
    container_name: str,
    container_port: int,
    hooks: Mapping[str, str] | None = None,
    *,
    platform_version: str | None = None,
) -> str:
    """AppSpec (YAML) for a CodeDeploy ECS blue/green deployment.

    ``task_definition_arn`` is a task-definition ARN or :data:`TASK_DEFINITION_PLACEHOLDER`;
    ``hooks`` maps ECS lifecycle events (:data:`ECS_APPSPEC_HOOKS`) to Lambda names/ARNs and is
    rendered in lifecycle order.
    """
    if task_definition_arn != TASK_DEFINITION_PLACEHOLDER and not _TASK_DEFINITION_ARN.match(
        task_definition_arn
    ):
        raise InputError(
            f"task_definition_arn: {task_definition_arn!r} is neither a task-definition ARN "
            f"(arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>) nor "
            f"{TASK_DEFINITION_PLACEHOLDER}"
        )
    if not container_name or not isinstance(container_name, str):
        raise InputError(f"container_name: {container_name!r} must be a non-empty string")
    if (
        isinstance(container_port, bool)
        or not isinstance(container_port, int)
        or not (1 <= container_port <= 65535)
    ):
        raise InputError(f"container_port: {container_port!r} must be an integer 1-65535")
    hooks = dict(hooks or {})
    unknown = sorted(set(hooks) - set(ECS_APPSPEC_HOOKS))
    if unknown:
        raise InputError(
            f"hooks: {unknown} are not ECS lifecycle hooks; use {list(ECS_APPSPEC_HOOKS)}"
        )
    for name, target in hooks.items():
        if not isinstance(target, str) or not target.strip():
            raise InputError(f"hooks.{name}: {target!r} must name a Lambda function (name or ARN)")
    lines = [
        "version: 0.0",
        "Resources:",
        "  - TargetService:",
        "      Type: AWS::ECS::Service",
        "      Properties:",
        f"        TaskDefinition: {_yaml_scalar(task_definition_arn)}",
        "        LoadBalancerInfo:",
        f"          ContainerName: {_yaml_scalar(container_name)}",
        f"          ContainerPort: {_yaml_scalar(container_port)}",
    ]
    if platform_version:
        lines.append(f"        PlatformVersion: {_yaml_scalar(platform_version)}")
    if hooks:
        lines.append("Hooks:")
        lines.extend(
            f"  - {name}: {_yaml_scalar(hooks[name])}"
            for name in ECS_APPSPEC_HOOKS
            if name in hooks
        )
    return "\n".join(lines) + "\n"


def appspec_revision(content: str) -> dict[str, Any]:
    """CodeDeploy ``revision`` for an inline AppSpec (``AppSpecContent`` with its SHA-256)."""
    return {
        "revisionType": "AppSpecContent",
        "appSpecContent": {
            "content": content,
            "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest(),
        },
    }


def image_detail(image_uri: str) -> dict[str, str]:
    """``imageDetail.json`` as CodePipeline's ECS actions read it."""
    parse_image_uri(image_uri)
    return {"ImageURI": image_uri}


def wait_for(
    poll: Callable[[], Status],
    *,
    timeout_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[Status, float], None] | None = None,
) -> Status:
    """Poll until ``poll()`` reports ``done``; raise :class:`WaitTimeout` after ``timeout_s``.

    The last poll happens at the deadline (sleeps are cut to the remaining time), so a
    deployment that finishes just in time is not reported as timed out.
    """
    if timeout_s <= 0 or interval_s <= 0:
        raise ValueError(f"timeout_s ({timeout_s}) and interval_s ({interval_s}) must be > 0")
    start = clock()
    while True:
        status = poll()
        elapsed = clock() - start
        if on_poll is not None:
            on_poll(status, elapsed)
        if status.done:
            return status
        remaining = timeout_s - elapsed
        if remaining <= 0:
            raise WaitTimeout(status, elapsed, timeout_s)
        sleep(min(interval_s, remaining))


def ecs_deployment_status(deployment: Mapping[str, Any]) -> Status:
    """Classify one ``DescribeServiceDeployments`` entry."""
    state = deployment.get("status")
    if not isinstance(state, str) or not state:
        raise DeployError(
            f"DescribeServiceDeployments returned a deployment without a status: {deployment!r}"
        )
    target = deployment.get("targetServiceRevision") or {}
    breaker = deployment.get("deploymentCircuitBreaker") or {}
    alarms = deployment.get("alarms") or {}
    rollback = deployment.get("rollback") or {}
    detail: dict[str, Any] = {
        "lifecycleStage": deployment.get("lifecycleStage"),
        "running": target.get("runningTaskCount"),
        "pending": target.get("pendingTaskCount"),
        "requested": target.get("requestedTaskCount"),
    }
    if breaker.get("status"):
        detail["circuitBreaker"] = breaker.get("status")
        detail["failedTasks"] = breaker.get("failureCount")
    if alarms.get("triggeredAlarmNames"):
        detail["triggeredAlarms"] = list(alarms["triggeredAlarmNames"])
    detail = {k: v for k, v in detail.items() if v is not None}
    if state in ECS_SUCCEEDED:
        return Status(state, done=True, ok=True, detail=detail)
    if state in ECS_FAILED:
        parts = [f"service deployment ended {state}"]
        if deployment.get("statusReason"):
            parts.append(str(deployment["statusReason"]))
        if rollback.get("reason"):
            parts.append(f"rollback: {rollback['reason']}")
        if alarms.get("triggeredAlarmNames"):
            parts.append(f"alarms in ALARM: {', '.join(alarms['triggeredAlarmNames'])}")
        if breaker.get("status") == "TRIGGERED":
            parts.append(
                f"circuit breaker triggered after {breaker.get('failureCount')} failed tasks"
            )
        return Status(state, done=True, ok=False, reason="; ".join(parts), detail=detail)
    # PENDING, IN_PROGRESS, ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, STOP_REQUESTED (and any
    # state AWS adds later): keep watching until a terminal state or the timeout.
    return Status(state, done=False, detail=detail)


def codedeploy_status(info: Mapping[str, Any]) -> Status:
    """Classify ``GetDeployment``'s ``deploymentInfo``."""
    state = info.get("status")
    if not isinstance(state, str) or not state:
        raise DeployError(f"GetDeployment returned no status: {info!r}")
    detail: dict[str, Any] = {}
    overview = info.get("deploymentOverview") or {}
    if overview:
        detail["overview"] = {k: v for k, v in overview.items() if v}
    if info.get("deploymentStatusMessages"):
        detail["messages"] = list(info["deploymentStatusMessages"])
    if state in CODEDEPLOY_SUCCEEDED:
        return Status(state, done=True, ok=True, detail=detail)
    if state in CODEDEPLOY_FAILED:
        error = info.get("errorInformation") or {}
        rollback = info.get("rollbackInfo") or {}
        parts = [f"CodeDeploy deployment {info.get('deploymentId', '?')} ended {state}"]
        if error.get("code") or error.get("message"):
            parts.append(f"{error.get('code', 'ERROR')}: {error.get('message', '')}".strip())
        if rollback.get("rollbackMessage") or rollback.get("rollbackDeploymentId"):
            parts.append(
                f"rollback {rollback.get('rollbackDeploymentId', '')}: "
                f"{rollback.get('rollbackMessage', '')}".strip()
            )
        return Status(state, done=True, ok=False, reason="; ".join(parts), detail=detail)
    if state not in CODEDEPLOY_IN_PROGRESS:
        detail["note"] = "unrecognised state; still waiting"
    return Status(state, done=False, detail=detail)


# --------------------------------------------------------------------------------------------
# AWS steps (each validates what the API returned)
# --------------------------------------------------------------------------------------------


def client_error(exc: Exception) -> tuple[str, str]:
    """(error code, message) of a botocore ``ClientError`` (the exception's type/text else)."""
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, Mapping) else {}
    return str(error.get("Code", type(exc).__name__)), str(error.get("Message", exc))


def is_client_error(exc: Exception) -> bool:
    """Whether ``exc`` is AWS refusing a call (a botocore ``ClientError`` or alike)."""
    return type(exc).__name__ == "ClientError" or hasattr(exc, "response")


def latest_task_definition(
    ecs: Any, family: str, *, where: str, what: str = "task definition family", hint: str = ""
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The latest ACTIVE revision of ``family`` and its tags.

    Errors name ``what`` (``family``'s kind), ``where`` (account/region; ``""`` leaves it out)
    and, for a family that is not found, end with ``hint``."""
    in_where = f" in {where}" if where else ""
    try:
        response = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    except Exception as exc:
        if not is_client_error(exc):
            raise
        code, message = client_error(exc)
        if code in ("ClientException", "InvalidParameterException"):
            raise InputError(
                f"{what} {family!r} not found{in_where} "
                f"(DescribeTaskDefinition: {code}: {message}){hint}"
            ) from None
        raise DeployError(
            f"DescribeTaskDefinition {family!r} failed{in_where}: {code}: {message}"
        ) from None
    task_def = response.get("taskDefinition") if isinstance(response, Mapping) else None
    if not isinstance(task_def, dict):
        raise DeployError(f"DescribeTaskDefinition {family!r} returned no taskDefinition")
    if task_def.get("family") != family:
        raise DeployError(
            f"DescribeTaskDefinition {family!r} returned family {task_def.get('family')!r}"
        )
    if task_def.get("status", "ACTIVE") != "ACTIVE":
        raise InputError(
            f"{what} {family!r}: latest revision is {task_def.get('status')}, not ACTIVE"
        )
    tags = response.get("tags") or []
    if not isinstance(tags, list):
        raise DeployError(f"DescribeTaskDefinition {family!r} returned tags {tags!r}")
    return task_def, tags


def register_task_definition(
    ecs: Any, request: Mapping[str, Any], container: str, image: str
) -> str:
    """Register ``request``; return the new revision's ARN after checking the image stuck."""
    response = ecs.register_task_definition(**request)
    task_def = response.get("taskDefinition") if isinstance(response, Mapping) else None
    if not isinstance(task_def, Mapping):
        raise DeployError("RegisterTaskDefinition returned no taskDefinition")
    arn = task_def.get("taskDefinitionArn")
    if not isinstance(arn, str) or not _TASK_DEFINITION_ARN.match(arn):
        raise DeployError(f"RegisterTaskDefinition returned no task-definition ARN: {arn!r}")
    if task_def.get("family") != request["family"]:
        raise DeployError(
            f"RegisterTaskDefinition registered family {task_def.get('family')!r}, "
            f"not {request['family']!r}"
        )
    registered = task_def["containerDefinitions"][_container_index(task_def, container)].get(
        "image"
    )
    if registered != image:
        raise DeployError(
            f"RegisterTaskDefinition stored image {registered!r} for {container!r}, not {image!r}"
        )
    return arn


def controller_of(svc: Mapping[str, Any]) -> str:
    """The service's ``deploymentController.type`` (``ECS`` when DescribeServices omits it)."""
    controller = (svc.get("deploymentController") or {}).get("type") or "ECS"
    return str(controller)


def engine_for_controller(controller: str, *, service: str, cluster: str) -> str:
    """``codedeploy`` for ``CODE_DEPLOY``, ``ecs`` for ``ECS``; anything else is refused."""
    engine = ENGINE_BY_CONTROLLER.get(controller)
    if engine is None:
        raise InputError(
            f"service {service!r} in cluster {cluster!r} uses the {controller} deployment "
            f"controller; deploy.py deploys only services on {sorted(ENGINE_BY_CONTROLLER)} "
            "(--engine codedeploy / ecs / auto); an EXTERNAL service is deployed by whatever "
            "owns its task sets"
        )
    return engine


def describe_service(
    ecs: Any, *, cluster: str, service: str, family: str, controller: str | None, where: str
) -> dict[str, Any]:
    """The service, checked to be ACTIVE, on ``controller`` (any supported controller when
    ``None``, i.e. ``--engine auto``) and running ``family``."""
    try:
        response = ecs.describe_services(cluster=cluster, services=[service])
    except Exception as exc:
        if not is_client_error(exc):
            raise
        code, message = client_error(exc)
        if code == "ClusterNotFoundException":
            raise InputError(f"cluster {cluster!r} not found in {where}") from None
        raise DeployError(f"DescribeServices {service!r} failed: {code}: {message}") from None
    services = response.get("services") or []
    failures = response.get("failures") or []
    if len(services) != 1 or failures:
        reasons = (
            ", ".join(f"{f.get('arn', '?')}: {f.get('reason', '?')}" for f in failures)
            or "none returned"
        )
        raise InputError(
            f"service {service!r} not found in cluster {cluster!r} in {where} ({reasons})"
        )
    svc = services[0]
    if svc.get("status") != "ACTIVE":
        raise InputError(
            f"service {service!r} in cluster {cluster!r} is {svc.get('status')}, not ACTIVE"
        )
    actual = controller_of(svc)
    engine = engine_for_controller(actual, service=service, cluster=cluster)
    if controller is not None and actual != controller:
        raise InputError(
            f"service {service!r} uses the {actual} deployment controller, not {controller}; "
            f"deploy it with --engine {engine}"
        )
    current = str(svc.get("taskDefinition", ""))
    current_family = current.rsplit("/", 1)[-1].rsplit(":", 1)[0]
    if current and current_family != family:
        raise InputError(
            f"family: service {service!r} runs task definition family "
            f"{current_family!r}, not {family!r}"
        )
    return svc


@dataclass
class _EcsWatch:
    """Locates the service deployment for one revision, then reports its state."""

    ecs: Any
    cluster: str
    service: str
    task_definition_arn: str
    created_after: dt.datetime
    deployment_arn: str | None = None

    def _locate(self) -> str | None:
        briefs: list[Mapping[str, Any]] = []
        request: dict[str, Any] = {
            "cluster": self.cluster,
            "service": self.service,
            "createdAt": {"after": self.created_after},
        }
        for _ in range(5):  # a few pages of deployments created in the last minutes
            response = self.ecs.list_service_deployments(**request)
            briefs += [
                b for b in response.get("serviceDeployments") or [] if isinstance(b, Mapping)
            ]
            if not response.get("nextToken"):
                break
            request["nextToken"] = response["nextToken"]
        by_revision: dict[str, str] = {}
        for brief in briefs:
            revision = brief.get("targetServiceRevisionArn")
            arn = brief.get("serviceDeploymentArn")
            if isinstance(revision, str) and isinstance(arn, str):
                by_revision[revision] = arn
        if not by_revision:
            return None
        revisions = self.ecs.describe_service_revisions(serviceRevisionArns=list(by_revision)[:20])
        for revision in revisions.get("serviceRevisions") or []:
            if revision.get("taskDefinition") == self.task_definition_arn:
                return by_revision.get(str(revision.get("serviceRevisionArn")))
        return None

    def poll(self) -> Status:
        if self.deployment_arn is None:
            self.deployment_arn = self._locate()
            if self.deployment_arn is None:
                return Status("LOCATING", done=False)
        response = self.ecs.describe_service_deployments(
            serviceDeploymentArns=[self.deployment_arn]
        )
        deployments = response.get("serviceDeployments") or []
        if len(deployments) != 1:
            failures = response.get("failures") or []
            raise DeployError(
                f"DescribeServiceDeployments {self.deployment_arn} returned "
                f"{len(deployments)} deployments (failures: {failures})"
            )
        return ecs_deployment_status(deployments[0])


Emit = Callable[[dict[str, Any]], None]


def emit_stdout(event: Mapping[str, Any]) -> None:
    """One JSON line on stdout (the default progress/result sink)."""
    print(json.dumps(event, default=str, sort_keys=True), flush=True)


def _progress(
    emit: Emit, engine: str, ident: Callable[[], str | None]
) -> Callable[[Status, float], None]:
    def on_poll(status: Status, elapsed: float) -> None:
        emit(
            {
                "event": "progress",
                "engine": engine,
                "deployment": ident(),
                "state": status.state,
                "elapsed_s": round(elapsed, 1),
                **dict(status.detail),
            }
        )

    return on_poll


def deploy_ecs(
    ecs: Any,
    *,
    cluster: str,
    service: str,
    task_definition_arn: str,
    timeout_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    emit: Emit = emit_stdout,
) -> Status:
    """``UpdateService`` to the new revision and wait for its service deployment."""
    created_after = now() - dt.timedelta(minutes=15)  # tolerate clock skew; matched by revision
    response = ecs.update_service(
        cluster=cluster, service=service, taskDefinition=task_definition_arn
    )
    updated = response.get("service") if isinstance(response, Mapping) else None
    if not isinstance(updated, Mapping) or updated.get("taskDefinition") != task_definition_arn:
        got = updated.get("taskDefinition") if isinstance(updated, Mapping) else None
        raise DeployError(
            f"UpdateService {service!r} did not take {task_definition_arn} (service has {got!r})"
        )
    emit({"event": "update-service", "service": service, "taskDefinition": task_definition_arn})
    watch = _EcsWatch(ecs, cluster, service, task_definition_arn, created_after)
    try:
        status = wait_for(
            watch.poll,
            timeout_s=timeout_s,
            interval_s=interval_s,
            clock=clock,
            sleep=sleep,
            on_poll=_progress(emit, "ecs", lambda: watch.deployment_arn),
        )
    except WaitTimeout as timeout:
        message = f"ECS service deployment for {task_definition_arn} {timeout}"
        if watch.deployment_arn and timeout.last.state in ECS_STOPPABLE:
            try:
                ecs.stop_service_deployment(
                    serviceDeploymentArn=watch.deployment_arn, stopType="ROLLBACK"
                )
                message += f"; stopped {watch.deployment_arn} with rollback"
            except Exception as exc:
                code, text = client_error(exc)
                message += f"; StopServiceDeployment failed: {code}: {text}"
        raise DeployError(message) from None
    if not status.ok:
        raise DeployError(status.reason)
    return status


def deploy_codedeploy(
    codedeploy: Any,
    *,
    application: str,
    deployment_group: str,
    appspec: str,
    description: str,
    timeout_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    emit: Emit = emit_stdout,
) -> tuple[str, Status]:
    """``CreateDeployment`` with an inline AppSpec and wait; timeout -> stop with rollback."""
    response = codedeploy.create_deployment(
        applicationName=application,
        deploymentGroupName=deployment_group,
        revision=appspec_revision(appspec),
        description=description[:100],
    )
    deployment_id = response.get("deploymentId") if isinstance(response, Mapping) else None
    if not isinstance(deployment_id, str) or not deployment_id:
        raise DeployError(f"CreateDeployment returned no deploymentId: {response!r}")
    emit({"event": "create-deployment", "deployment": deployment_id, "application": application})

    def poll() -> Status:
        info = codedeploy.get_deployment(deploymentId=deployment_id).get("deploymentInfo")
        if not isinstance(info, Mapping):
            raise DeployError(f"GetDeployment {deployment_id} returned no deploymentInfo")
        return codedeploy_status(info)

    try:
        status = wait_for(
            poll,
            timeout_s=timeout_s,
            interval_s=interval_s,
            clock=clock,
            sleep=sleep,
            on_poll=_progress(emit, "codedeploy", lambda: deployment_id),
        )
    except WaitTimeout as timeout:
        message = f"CodeDeploy deployment {deployment_id} {timeout}"
        try:
            stopped = codedeploy.stop_deployment(
                deploymentId=deployment_id, autoRollbackEnabled=True
            )
            message += (
                f"; stop requested with rollback ({stopped.get('status')}: "
                f"{stopped.get('statusMessage', '')})"
            )
        except Exception as exc:
            code, text = client_error(exc)
            message += f"; StopDeployment failed: {code}: {text}"
        raise DeployError(message) from None
    if not status.ok:
        raise DeployError(status.reason)
    return deployment_id, status


def write_codedeploy_artifacts(
    output_dir: Path, *, taskdef: Mapping[str, Any], appspec: str, image_uri: str
) -> list[Path]:
    """``taskdef.json``, ``appspec.yaml`` and ``imageDetail.json`` for ``CodeDeployToECS``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "taskdef.json": json.dumps(taskdef, indent=2) + "\n",
        "appspec.yaml": appspec,
        "imageDetail.json": json.dumps(image_detail(image_uri)) + "\n",
    }
    written = []
    for name, text in files.items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------------
# Sessions and CLI
# --------------------------------------------------------------------------------------------


def session_for(role_arn: str | None, *, region: str | None, session_name: str) -> Any:
    """A boto3 session in the environment account: the deploy role's (refreshed) or the current."""
    import boto3
    from botocore.credentials import CredentialProvider, RefreshableCredentials
    from botocore.session import Session as BotocoreSession

    if not role_arn:
        return boto3.Session(region_name=region)
    if not _ROLE_ARN.match(role_arn):
        raise InputError(
            f"role-arn: {role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
        )
    sts = boto3.Session(region_name=region).client("sts")
    name = re.sub(r"[^\w+=,.@\-]", "-", session_name)[:64]

    def fetch() -> dict[str, str]:
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
        expiry = creds["Expiration"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": expiry.isoformat() if hasattr(expiry, "isoformat") else str(expiry),
        }

    class _AssumeDeployRole(CredentialProvider):
        METHOD = "assume-deploy-role"
        CANONICAL_NAME = "custom-assume-deploy-role"

        def load(self) -> Any:
            return RefreshableCredentials.create_from_metadata(
                metadata=fetch(), refresh_using=fetch, method=self.METHOD
            )

    botocore_session = BotocoreSession()
    botocore_session.get_component("credential_provider").insert_before("env", _AssumeDeployRole())
    return boto3.Session(botocore_session=botocore_session, region_name=region)


def _where(session: Any, role_arn: str | None) -> str:
    match = _ROLE_ARN.match(role_arn or "")
    account = match["account"] if match else None
    if account is None:
        try:
            account = session.client("sts").get_caller_identity()["Account"]
        except Exception:
            account = "<current account>"
    return f"account {account} / region {session.region_name}"


def _parse_hooks(values: Sequence[str]) -> dict[str, str]:
    hooks: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise InputError(f"hook: {value!r} must be LifecycleEvent=LambdaNameOrArn")
        hooks[name] = target
    return hooks


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--engine",
        required=True,
        choices=["auto", "codedeploy", "ecs"],
        help="auto: follow the service's deploymentController (CODE_DEPLOY/ECS)",
    )
    parser.add_argument("--mode", choices=["artifacts", "create-deployment", "update-service"])
    parser.add_argument(
        "--family", required=True, help="task-definition family (latest ACTIVE revision)"
    )
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--service", required=True)
    image = parser.add_mutually_exclusive_group(required=True)
    image.add_argument("--image-uri", help="REPOSITORY@sha256:... (the promoted digest)")
    image.add_argument("--image-detail-file", type=Path, help="imageDetail.json with ImageURI")
    parser.add_argument("--container", required=True, help="container whose image is replaced")
    parser.add_argument(
        "--container-port", type=int, help="LB container port (default: first mapping)"
    )
    parser.add_argument("--codedeploy-app")
    parser.add_argument("--codedeploy-group")
    parser.add_argument(
        "--hook", action="append", default=[], help="AppSpec hook Event=Lambda (repeatable)"
    )
    parser.add_argument("--platform-version")
    parser.add_argument(
        "--role-arn", help="environment deploy role to assume (omit in single-account mode)"
    )
    parser.add_argument("--region")
    parser.add_argument("--timeout-seconds", type=float, default=3600.0)
    parser.add_argument("--poll-seconds", type=float, default=15.0)
    parser.add_argument("--output-dir", type=Path)
    return parser.parse_args(argv)


def image_uri_from_detail(path: Path) -> str:
    """``ImageURI`` of an ``imageDetail.json`` (the build's promoted digest), stripped."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"image-detail-file: cannot read {path}: {exc}") from None
    uri = data.get("ImageURI") if isinstance(data, Mapping) else None
    if not isinstance(uri, str):
        raise InputError(f"image-detail-file: {path} has no string ImageURI")
    return uri.strip()


def _image_uri(args: argparse.Namespace) -> str:
    if args.image_uri:
        return str(args.image_uri).strip()
    return image_uri_from_detail(args.image_detail_file)


def resolve_mode(args: argparse.Namespace, engine: str, *, detected_from: str = "") -> str:
    """The mode for ``engine`` (``--mode`` or the default), checked against the other arguments.

    ``detected_from`` is the service's controller when ``--engine auto`` chose ``engine``; it
    picks the auto defaults and is named in errors.
    """
    defaults = AUTO_DEFAULT_MODE if detected_from else DEFAULT_MODE
    mode = str(args.mode or defaults[engine])
    how = (
        f"--engine auto (service {args.service!r} uses the {detected_from} deployment "
        f"controller, so the engine is {engine})"
        if detected_from
        else f"--engine {engine}"
    )
    allowed = ENGINE_MODES[engine]
    if mode not in allowed:
        raise InputError(f"mode: {mode!r} is not valid with {how}; use one of {list(allowed)}")
    if mode == "create-deployment" and not (args.codedeploy_app and args.codedeploy_group):
        raise InputError(
            "codedeploy-app and codedeploy-group are required with --mode create-deployment "
            f"(with {how})"
        )
    if mode == "artifacts" and args.output_dir is None:
        raise InputError(f"output-dir is required with --mode artifacts (with {how})")
    return mode


def run(
    args: argparse.Namespace,
    *,
    session: Any = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    emit: Emit = emit_stdout,
) -> dict[str, Any]:
    """Do the deploy described by ``args``; return the result event (raises on failure)."""
    image_uri = _image_uri(args)
    parse_image_uri(image_uri)
    auto = args.engine == "auto"
    if not auto:
        mode = resolve_mode(args, args.engine)
    if args.timeout_seconds <= 0 or args.poll_seconds <= 0:
        raise InputError("timeout-seconds and poll-seconds must be > 0")
    hooks = _parse_hooks(args.hook)

    if session is None:
        session = session_for(
            args.role_arn, region=args.region, session_name=f"deploy-{args.family}"
        )
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 10})
    ecs = session.client("ecs", config=config)
    where = _where(session, args.role_arn)

    svc = describe_service(
        ecs,
        cluster=args.cluster,
        service=args.service,
        family=args.family,
        controller=None if auto else CONTROLLER_BY_ENGINE[args.engine],
        where=where,
    )
    engine = args.engine
    if auto:
        controller = controller_of(svc)
        engine = engine_for_controller(controller, service=args.service, cluster=args.cluster)
        mode = resolve_mode(args, engine, detected_from=controller)
        emit({"event": "engine", "controller": controller, "engine": engine, "mode": mode})
    task_def, tags = latest_task_definition(ecs, args.family, where=where)
    base = {"engine": engine, "mode": mode, "family": args.family, "image": image_uri}
    emit({"event": "latest-revision", **base, "taskDefinition": task_def.get("taskDefinitionArn")})

    if mode == "artifacts":
        port = container_port_of(task_def, args.container, args.container_port)
        appspec = render_appspec(
            TASK_DEFINITION_PLACEHOLDER,
            args.container,
            port,
            hooks,
            platform_version=args.platform_version,
        )
        template = task_definition_template(task_def, args.container, tags=tags)
        files = write_codedeploy_artifacts(
            args.output_dir, taskdef=template, appspec=appspec, image_uri=image_uri
        )
        return {"event": "result", "ok": True, **base, "files": [str(p) for p in files]}

    request = swap_image(task_def, args.container, image_uri, tags=tags)
    new_arn = register_task_definition(ecs, request, args.container, image_uri)
    emit({"event": "registered", **base, "taskDefinition": new_arn})

    if engine == "ecs":
        status = deploy_ecs(
            ecs,
            cluster=args.cluster,
            service=args.service,
            task_definition_arn=new_arn,
            timeout_s=args.timeout_seconds,
            interval_s=args.poll_seconds,
            clock=clock,
            sleep=sleep,
            emit=emit,
        )
        return {
            "event": "result",
            "ok": True,
            **base,
            "taskDefinition": new_arn,
            "state": status.state,
        }

    port = container_port_of(task_def, args.container, args.container_port)
    appspec = render_appspec(
        new_arn, args.container, port, hooks, platform_version=args.platform_version
    )
    codedeploy = session.client("codedeploy", config=config)
    deployment_id, status = deploy_codedeploy(
        codedeploy,
        application=args.codedeploy_app,
        deployment_group=args.codedeploy_group,
        appspec=appspec,
        description=f"{args.family} -> {image_uri.rsplit('@', 1)[1]}",
        timeout_s=args.timeout_seconds,
        interval_s=args.poll_seconds,
        clock=clock,
        sleep=sleep,
        emit=emit,
    )
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "appspec.yaml").write_text(appspec, encoding="utf-8")
    return {
        "event": "result",
        "ok": True,
        **base,
        "taskDefinition": new_arn,
        "deployment": deployment_id,
        "state": status.state,
    }


def main(argv: Sequence[str] | None = None, *, emit: Emit = emit_stdout) -> int:
    """CLI entry point; returns the exit status."""
    args = parse_args(argv)
    failure = {"event": "result", "ok": False, "engine": args.engine, "family": args.family}
    try:
        result = run(args, emit=emit)
        code = EXIT_OK
    except DeployError as exc:
        result, code = {**failure, "error": str(exc)}, exc.exit_code
        print(f"deploy failed: {exc}", file=sys.stderr)
    except Exception as exc:
        if not is_client_error(exc) and type(exc).__module__.split(".")[0] != "botocore":
            raise
        error_code, message = client_error(exc)
        result, code = {**failure, "error": f"{error_code}: {message}"}, EXIT_FAILED
        print(f"deploy failed: AWS refused a call: {error_code}: {message}", file=sys.stderr)
    emit(result)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(result, default=str, indent=2) + "\n"
        (args.output_dir / "deploy-result.json").write_text(text, encoding="utf-8")
    return code


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("AWS_RETRY_MODE", "standard")
    sys.exit(main())
