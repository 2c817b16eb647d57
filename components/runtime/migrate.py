#!/usr/bin/env python3
"""Run an EF Core migration bundle as a one-off ECS task and fail the pipeline if it fails.

The environment stack owns the migration task definition family (``EfMigrationTask``: its own
task and execution roles, log group ``/ecs/<env>/<service>-migrate``). The bundle ships inside
the release image, so the migration of a release must run *that release's* image, before its
deploy (expand-and-contract). Like ``deploy.py``, this step takes the latest ACTIVE revision of
the migration family, swaps the promoted digest (``--image-uri`` or ``--image-detail-file``)
into the ``migrate`` container, registers that as a new revision (nothing else changes) and
runs THAT revision: one Fargate task in the environment's private subnets (no public IP). It
waits for the task to stop and checks the outcome:

* success  - ``stopCode`` is ``EssentialContainerExited`` and the migration container exited 0;
* failure  - any other exit code or stop code (image pull failure, task failed to start, ...),
  reported with the container's exit code and reason, the task's stop reason and where its
  logs are;
* timeout  - the task is stopped (``StopTask``) and the step fails.

CLI like ``deploy.py``; with ``--role-arn`` it assumes the environment's deploy role first.
The timeout is ``--timeout-seconds``, else the revision's ``MigrationTimeoutSeconds`` tag (set
by the environment stack from ``migration.timeoutMinutes``), else 1800 s.
Progress: one JSON line per poll on stdout. Exit status 0 ok, 1 migration failed, 2 bad input.

Ships next to ``deploy.py`` (stdlib + boto3 + ``deploy.py``): the wait loop, the image swap,
the imageDetail.json reader, the deploy-role session and the AWS error text are deploy.py's.
The migrate buildspec copies both scripts into one directory; run as a script, this file loads
the ``deploy.py`` beside it (by path, so ``python3 -I migrate.py`` works too).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar


def _load_sibling_deploy() -> ModuleType:
    """``deploy.py`` from this file's directory (how the migrate buildspec ships the two)."""
    import importlib.util

    path = Path(__file__).resolve().with_name("deploy.py")
    spec = importlib.util.spec_from_file_location("deploy", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise ImportError(f"migrate.py needs deploy.py beside it: {path} not found")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while deploy.py loads
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING or __package__:  # imported as components.runtime.migrate (tests, mypy)
    from . import deploy as _deploy
else:  # run as a script (the CodeBuild migrate step)
    _deploy = _load_sibling_deploy()

SUCCESS_STOP_CODE = "EssentialContainerExited"
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_FAMILY = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
READ_ONLY_TASK_DEFINITION_KEYS = _deploy.READ_ONLY_TASK_DEFINITION_KEYS
"""Keys ``DescribeTaskDefinition`` returns that ``RegisterTaskDefinition`` does not accept."""

#: Tag on the migration task definition carrying its timeout (set by the environment stack).
TIMEOUT_TAG = "MigrationTimeoutSeconds"
DEFAULT_TIMEOUT_S = 1800.0

EXIT_OK = _deploy.EXIT_OK
EXIT_FAILED = _deploy.EXIT_FAILED
EXIT_INPUT = _deploy.EXIT_INPUT

Status = _deploy.Status
WaitTimeout = _deploy.WaitTimeout
wait_for = _deploy.wait_for
Emit = _deploy.Emit
_emit_stdout = _deploy.emit_stdout


class MigrationError(_deploy.DeployError):
    """The migration failed; the message is the reason shown in the pipeline."""

    exit_code = EXIT_FAILED


class MigrationInputError(MigrationError, _deploy.InputError):
    """Bad arguments (nothing was started)."""

    exit_code = EXIT_INPUT


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _migration_errors(helper: Callable[_P, _R]) -> Callable[_P, _R]:
    """``helper`` (one of deploy.py's) raising this module's errors, with the same message:
    ``InputError`` -> :class:`MigrationInputError`, other ``DeployError`` ->
    :class:`MigrationError`."""

    @functools.wraps(helper)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return helper(*args, **kwargs)
        except MigrationError:
            raise
        except _deploy.InputError as exc:
            raise MigrationInputError(str(exc)) from None
        except _deploy.DeployError as exc:
            raise MigrationError(str(exc)) from None

    wrapper.__module__ = __name__
    return wrapper


# --------------------------------------------------------------------------------------------
# The promoted image into the latest migration revision (deploy.py's helpers)
# --------------------------------------------------------------------------------------------

#: Split ``REPOSITORY@sha256:<64 hex>`` into (repository, digest); anything else is refused.
parse_image_uri = _migration_errors(_deploy.parse_image_uri)
#: ``RegisterTaskDefinition`` input from a described revision, with one image swapped.
swap_image = _migration_errors(_deploy.swap_image)
#: ``ImageURI`` of an ``imageDetail.json`` (the build's promoted digest).
image_uri_from_detail = _migration_errors(_deploy.image_uri_from_detail)
#: Register a request; return the new revision's ARN after checking the image stuck.
register_revision = _migration_errors(_deploy.register_task_definition)
#: A boto3 session in the environment account (the deploy role's, refreshed) or current.
session_for = _migration_errors(_deploy.session_for)
_latest_task_definition = _migration_errors(_deploy.latest_task_definition)


def timeout_from_tags(tags: Sequence[Mapping[str, str]]) -> float | None:
    """The :data:`TIMEOUT_TAG` value in seconds (``None`` if absent or not a positive number)."""
    for tag in tags:
        if tag.get("key") == TIMEOUT_TAG:
            try:
                value = float(tag.get("value", ""))
            except ValueError:
                return None
            return value if value > 0 else None
    return None


def latest_revision(ecs: Any, family: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The latest ACTIVE revision of the migration ``family`` and its tags."""
    if not _FAMILY.match(family or ""):
        raise MigrationInputError(
            f"family: {family!r} is not a task definition family (1-255 letters, digits, "
            "'-' or '_'; no revision or ARN: the latest revision is taken)"
        )
    return _latest_task_definition(
        ecs,
        family,
        where="",
        what="migration task definition family",
        hint="; is migration.enabled set in this environment's stack?",
    )


# --------------------------------------------------------------------------------------------
# Running the task
# --------------------------------------------------------------------------------------------


def task_outcome(task: Mapping[str, Any], container: str) -> Status:
    """Classify one ``DescribeTasks`` task (pure)."""
    last = task.get("lastStatus")
    if not isinstance(last, str) or not last:
        raise MigrationError(f"DescribeTasks returned a task without lastStatus: {task!r}")
    containers = [c for c in task.get("containers") or [] if isinstance(c, Mapping)]
    mine = [c for c in containers if c.get("name") == container]
    detail: dict[str, Any] = {"lastStatus": last, "desiredStatus": task.get("desiredStatus")}
    if mine:
        detail["container"] = mine[0].get("lastStatus")
    if last != "STOPPED":
        return Status(last, done=False, detail={k: v for k, v in detail.items() if v is not None})
    if not mine:
        names = [c.get("name") for c in containers]
        return Status(
            last,
            done=True,
            reason=f"container {container!r} is not in the task (containers: {names})",
        )
    stop_code = task.get("stopCode")
    exit_code = mine[0].get("exitCode")
    detail.update(stopCode=stop_code, exitCode=exit_code)
    if stop_code == SUCCESS_STOP_CODE and exit_code == 0:
        return Status(last, done=True, ok=True, detail=detail)
    parts = []
    if exit_code is None:
        parts.append(f"container {container!r} did not run to completion (no exit code)")
    else:
        parts.append(f"container {container!r} exited with code {exit_code}")
    if mine[0].get("reason"):
        parts.append(f"container reason: {mine[0]['reason']}")
    parts.append(f"stopCode {stop_code}: {task.get('stoppedReason', 'no reason given')}")
    return Status(last, done=True, reason="; ".join(parts), detail=detail)


def _log_location(ecs: Any, task_definition: str, container: str, task_id: str) -> str:
    """Where the container's awslogs went (best effort; '' if unknown)."""
    try:
        definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
        for item in definition.get("containerDefinitions", []):
            if item.get("name") == container:
                log = item.get("logConfiguration") or {}
                options = log.get("options") or {}
                if log.get("logDriver") == "awslogs" and options.get("awslogs-group"):
                    prefix = options.get("awslogs-stream-prefix")
                    stream = (
                        f"{prefix}/{container}/{task_id}"
                        if prefix
                        else f"(stream for task {task_id})"
                    )
                    return f"logs: {options['awslogs-group']} {stream}"
    except Exception:
        return ""
    return ""


def _check_run_inputs(
    *,
    cluster: str,
    task_definition: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    container: str,
    timeout_s: float,
    interval_s: float,
) -> None:
    bad_subnets = [s for s in subnets if not _SUBNET.match(s)]
    bad_groups = [g for g in security_groups if not _SECURITY_GROUP.match(g)]
    if not subnets or bad_subnets:
        raise MigrationInputError(
            f"subnets: {list(subnets)!r}; expected one or more subnet-<hex> ids"
        )
    if not security_groups or bad_groups:
        raise MigrationInputError(
            f"security-groups: {list(security_groups)!r}; expected one or more sg-<hex> ids"
        )
    if not container or not task_definition or not cluster:
        raise MigrationInputError("cluster, task-definition and container must be non-empty")
    if timeout_s <= 0 or interval_s <= 0:
        raise MigrationInputError("timeout and poll interval must be > 0")


def run_migration(
    ecs: Any,
    *,
    cluster: str,
    task_definition: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    container: str,
    timeout_s: float,
    interval_s: float = 10.0,
    command: Sequence[str] | None = None,
    started_by: str = "dotnet-delivery-migrate",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    emit: Emit = _emit_stdout,
) -> dict[str, Any]:
    """Start the migration task, wait for it and return the outcome; raise on failure."""
    _check_run_inputs(
        cluster=cluster,
        task_definition=task_definition,
        subnets=subnets,
        security_groups=security_groups,
        container=container,
        timeout_s=timeout_s,
        interval_s=interval_s,
    )

    request: dict[str, Any] = {
        "cluster": cluster,
        "taskDefinition": task_definition,
        "count": 1,
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(subnets),
                "securityGroups": list(security_groups),
                "assignPublicIp": "DISABLED",
            }
        },
        "startedBy": started_by[:128],
        "propagateTags": "TASK_DEFINITION",
    }
    if command:
        request["overrides"] = {
            "containerOverrides": [{"name": container, "command": list(command)}]
        }
    response = ecs.run_task(**request)
    failures = response.get("failures") or []
    tasks = response.get("tasks") or []
    if failures or len(tasks) != 1 or not isinstance(tasks[0].get("taskArn"), str):
        reasons = "; ".join(
            f"{f.get('arn', '?')}: {f.get('reason', '?')}"
            + (f" ({f['detail']})" if f.get("detail") else "")
            for f in failures
        )
        raise MigrationError(
            f"RunTask {task_definition} in cluster {cluster!r} started {len(tasks)} tasks"
            + (f"; failures: {reasons}" if reasons else "")
        )
    task_arn: str = tasks[0]["taskArn"]
    task_definition_arn = str(tasks[0].get("taskDefinitionArn") or task_definition)
    task_id = task_arn.rsplit("/", 1)[-1]
    emit({"event": "run-task", "task": task_arn, "taskDefinition": task_definition_arn})

    def poll() -> Status:
        described = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
        found = described.get("tasks") or []
        if len(found) != 1:
            raise MigrationError(
                f"DescribeTasks {task_arn} returned {len(found)} tasks "
                f"(failures: {described.get('failures') or []})"
            )
        return task_outcome(found[0], container)

    def on_poll(status: Status, elapsed: float) -> None:
        emit(
            {
                "event": "progress",
                "task": task_arn,
                "state": status.state,
                "elapsed_s": round(elapsed, 1),
                **dict(status.detail),
            }
        )

    try:
        status = wait_for(
            poll,
            timeout_s=timeout_s,
            interval_s=interval_s,
            clock=clock,
            sleep=sleep,
            on_poll=on_poll,
        )
    except WaitTimeout as timeout:
        message = f"migration task {task_id} {timeout}"
        try:
            ecs.stop_task(
                cluster=cluster,
                task=task_arn,
                reason=f"migration timed out after {timeout_s:.0f}s (dotnet-delivery)",
            )
            message += "; task stopped"
        except Exception as exc:
            message += f"; StopTask failed: {_deploy.client_error(exc)[0]}"
        raise MigrationError(message) from None
    if not status.ok:
        where = _log_location(ecs, task_definition_arn, container, task_id)
        raise MigrationError(
            f"migration task {task_id} failed: {status.reason}" + (f"; {where}" if where else "")
        )
    return {
        "task": task_arn,
        "exitCode": status.detail.get("exitCode"),
        "stopCode": status.detail.get("stopCode"),
    }


def migrate_release(
    ecs: Any,
    *,
    cluster: str,
    family: str,
    image_uri: str,
    subnets: Sequence[str],
    security_groups: Sequence[str],
    container: str,
    timeout_s: float | None = None,
    interval_s: float = 10.0,
    command: Sequence[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    emit: Emit = _emit_stdout,
) -> dict[str, Any]:
    """Register the latest ``family`` revision with ``image_uri`` in ``container`` and run it.

    ``timeout_s`` ``None``: the revision's :data:`TIMEOUT_TAG`, else :data:`DEFAULT_TIMEOUT_S`.
    """
    parse_image_uri(image_uri)
    _check_run_inputs(  # before anything is registered
        cluster=cluster,
        task_definition=family,
        subnets=subnets,
        security_groups=security_groups,
        container=container,
        timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        interval_s=interval_s,
    )
    task_def, tags = latest_revision(ecs, family)
    request = swap_image(task_def, container, image_uri, tags=tags)
    emit(
        {
            "event": "latest-revision",
            "family": family,
            "taskDefinition": task_def.get("taskDefinitionArn"),
            "image": image_uri,
        }
    )
    new_arn = register_revision(ecs, request, container, image_uri)
    emit({"event": "registered", "family": family, "taskDefinition": new_arn, "image": image_uri})
    timeout = timeout_s if timeout_s is not None else timeout_from_tags(tags) or DEFAULT_TIMEOUT_S
    result = run_migration(
        ecs,
        cluster=cluster,
        task_definition=new_arn,
        subnets=subnets,
        security_groups=security_groups,
        container=container,
        timeout_s=timeout,
        interval_s=interval_s,
        command=command,
        clock=clock,
        sleep=sleep,
        emit=emit,
    )
    return {"taskDefinition": new_arn, "image": image_uri, **result}


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run an EF Core migration bundle as an ECS task.")
    parser.add_argument("--cluster", required=True)
    parser.add_argument(
        "--family",
        "--task-definition",
        dest="family",
        required=True,
        help="migration task-definition family (its latest ACTIVE revision is the template)",
    )
    image = parser.add_mutually_exclusive_group(required=True)
    image.add_argument("--image-uri", help="REPOSITORY@sha256:... (the promoted digest)")
    image.add_argument("--image-detail-file", type=Path, help="imageDetail.json with ImageURI")
    parser.add_argument("--subnets", required=True, type=_csv, help="comma-separated subnet ids")
    parser.add_argument(
        "--security-groups", required=True, type=_csv, help="comma-separated security group ids"
    )
    parser.add_argument("--container", required=True, help="the migration bundle container")
    parser.add_argument("--command", nargs="+", help="override the container command")
    parser.add_argument("--role-arn", help="environment deploy role (omit in single-account mode)")
    parser.add_argument("--region")
    parser.add_argument(
        "--timeout-seconds",
        type=float,
        help=f"default: the revision's {TIMEOUT_TAG} tag, else {DEFAULT_TIMEOUT_S:.0f}",
    )
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None, *, session: Any = None, emit: Emit = _emit_stdout
) -> int:
    """CLI entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        image_uri = (
            str(args.image_uri).strip()
            if args.image_uri
            else image_uri_from_detail(args.image_detail_file)
        )
        parse_image_uri(image_uri)
        if session is None:
            session = session_for(
                args.role_arn, region=args.region, session_name=f"migrate-{args.cluster}"
            )
        from botocore.config import Config

        ecs = session.client("ecs", config=Config(retries={"mode": "standard", "max_attempts": 10}))
        result = migrate_release(
            ecs,
            cluster=args.cluster,
            family=args.family,
            image_uri=image_uri,
            subnets=args.subnets,
            security_groups=args.security_groups,
            container=args.container,
            command=args.command,
            timeout_s=args.timeout_seconds,
            interval_s=args.poll_seconds,
            emit=emit,
        )
    except MigrationError as exc:
        emit({"event": "result", "ok": False, "error": str(exc)})
        print(f"migration failed: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if not _deploy.is_client_error(exc) and type(exc).__module__.split(".")[0] != "botocore":
            raise
        text = "{}: {}".format(*_deploy.client_error(exc))
        emit({"event": "result", "ok": False, "error": text})
        print(f"migration failed: AWS refused a call: {text}", file=sys.stderr)
        return EXIT_FAILED
    emit({"event": "result", "ok": True, **result})
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
