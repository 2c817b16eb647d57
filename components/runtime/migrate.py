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

Self-contained (stdlib + boto3): the wait loop and the image swap mirror ``deploy.wait_for`` /
``deploy.swap_image`` so each script ships as a single file (tests keep the copies in step).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUCCESS_STOP_CODE = "EssentialContainerExited"
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/[\w+=,.@\-/]+$")
_FAMILY = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
# Copies of deploy.py's (one-file scripts; tests/test_runtime_migrate.py keeps them equal).
_DIGEST_REF = re.compile(
    r"^(?P<repository>[a-z0-9][a-z0-9._\-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._\-]*)*)"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z\-]*:ecs:[a-z0-9\-]+:\d{12}:task-definition/[A-Za-z0-9_\-]+:\d+$"
)
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
"""Keys ``DescribeTaskDefinition`` returns that ``RegisterTaskDefinition`` does not accept."""

#: Tag on the migration task definition carrying its timeout (set by the environment stack).
TIMEOUT_TAG = "MigrationTimeoutSeconds"
DEFAULT_TIMEOUT_S = 1800.0

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INPUT = 2


class MigrationError(Exception):
    """The migration failed; the message is the reason shown in the pipeline."""

    exit_code = EXIT_FAILED


class MigrationInputError(MigrationError):
    """Bad arguments (nothing was started)."""

    exit_code = EXIT_INPUT


@dataclass(frozen=True)
class Status:
    """One observation of the task being waited on."""

    state: str
    done: bool
    ok: bool = False
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


class WaitTimeout(MigrationError):
    def __init__(self, last: Status, elapsed_s: float, timeout_s: float) -> None:
        super().__init__(
            f"timed out after {elapsed_s:.0f}s (limit {timeout_s:.0f}s); last state {last.state}"
        )
        self.last = last


def wait_for(
    poll: Callable[[], Status],
    *,
    timeout_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_poll: Callable[[Status, float], None] | None = None,
) -> Status:
    """Poll until done; :class:`WaitTimeout` after ``timeout_s`` (last poll at the deadline)."""
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


# --------------------------------------------------------------------------------------------
# The promoted image into the latest migration revision (pure; mirrors deploy.py)
# --------------------------------------------------------------------------------------------


def parse_image_uri(image_uri: str) -> tuple[str, str]:
    """Split ``REPOSITORY@sha256:<64 hex>`` into (repository, digest); anything else is refused."""
    match = _DIGEST_REF.match(image_uri.strip()) if isinstance(image_uri, str) else None
    if not match:
        raise MigrationInputError(
            f"image-uri: {image_uri!r} is not pinned by digest; "
            "expected REPOSITORY@sha256:<64 lowercase hex> (no tag)"
        )
    return match["repository"], match["digest"]


def _container_index(task_def: Mapping[str, Any], container: str) -> int:
    containers = task_def.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise MigrationInputError(
            f"task definition {task_def.get('family', '?')!r}: containerDefinitions is empty "
            "or missing"
        )
    names = [c.get("name") if isinstance(c, Mapping) else None for c in containers]
    hits = [i for i, name in enumerate(names) if name == container]
    if len(hits) != 1:
        raise MigrationInputError(
            f"container: {container!r} not found exactly once in task definition "
            f"{task_def.get('family', '?')!r}; containers are {names}"
        )
    return hits[0]


def swap_image(
    task_def: Mapping[str, Any],
    container: str,
    image_uri: str,
    *,
    tags: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """``RegisterTaskDefinition`` input from a described revision, with one image swapped
    (read-only keys dropped, everything else kept; the input is not modified)."""
    parse_image_uri(image_uri)
    if not isinstance(task_def, Mapping):
        raise MigrationInputError(
            f"task definition: expected a mapping, got {type(task_def).__name__}"
        )
    index = _container_index(task_def, container)
    request = {
        k: copy.deepcopy(v) for k, v in task_def.items() if k not in READ_ONLY_TASK_DEFINITION_KEYS
    }
    request["containerDefinitions"][index]["image"] = image_uri
    if tags:
        request["tags"] = [dict(t) for t in tags]
    return request


def image_uri_from_detail(path: Path) -> str:
    """``ImageURI`` of an ``imageDetail.json`` (the build's promoted digest)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MigrationInputError(f"image-detail-file: cannot read {path}: {exc}") from None
    uri = data.get("ImageURI") if isinstance(data, Mapping) else None
    if not isinstance(uri, str):
        raise MigrationInputError(f"image-detail-file: {path} has no string ImageURI")
    return uri.strip()


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


def _aws_error(exc: Exception) -> tuple[str, str]:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, Mapping) else {}
    return str(error.get("Code", type(exc).__name__)), str(error.get("Message", exc))


def latest_revision(ecs: Any, family: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The latest ACTIVE revision of the migration ``family`` and its tags."""
    if not _FAMILY.match(family or ""):
        raise MigrationInputError(
            f"family: {family!r} is not a task definition family (1-255 letters, digits, "
            "'-' or '_'; no revision or ARN: the latest revision is taken)"
        )
    try:
        response = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    except Exception as exc:
        if not hasattr(exc, "response"):
            raise
        code, message = _aws_error(exc)
        if code in ("ClientException", "InvalidParameterException"):
            raise MigrationInputError(
                f"migration task definition family {family!r} not found "
                f"(DescribeTaskDefinition: {code}: {message}); is migration.enabled set in "
                "this environment's stack?"
            ) from None
        raise MigrationError(
            f"DescribeTaskDefinition {family!r} failed: {code}: {message}"
        ) from None
    task_def = response.get("taskDefinition") if isinstance(response, Mapping) else None
    if not isinstance(task_def, dict) or task_def.get("family") != family:
        raise MigrationError(
            f"DescribeTaskDefinition {family!r} returned "
            f"{task_def.get('family') if isinstance(task_def, dict) else task_def!r}"
        )
    if task_def.get("status", "ACTIVE") != "ACTIVE":
        raise MigrationInputError(
            f"migration task definition family {family!r}: latest revision is "
            f"{task_def.get('status')}, not ACTIVE"
        )
    tags = response.get("tags") or []
    if not isinstance(tags, list):
        raise MigrationError(f"DescribeTaskDefinition {family!r} returned tags {tags!r}")
    return task_def, tags


def register_revision(ecs: Any, request: Mapping[str, Any], container: str, image: str) -> str:
    """Register ``request``; return the new revision's ARN after checking the image stuck."""
    response = ecs.register_task_definition(**request)
    task_def = response.get("taskDefinition") if isinstance(response, Mapping) else None
    if not isinstance(task_def, Mapping):
        raise MigrationError("RegisterTaskDefinition returned no taskDefinition")
    arn = task_def.get("taskDefinitionArn")
    if not isinstance(arn, str) or not _TASK_DEFINITION_ARN.match(arn):
        raise MigrationError(f"RegisterTaskDefinition returned no task-definition ARN: {arn!r}")
    if task_def.get("family") != request["family"]:
        raise MigrationError(
            f"RegisterTaskDefinition registered family {task_def.get('family')!r}, "
            f"not {request['family']!r}"
        )
    registered = task_def["containerDefinitions"][_container_index(task_def, container)].get(
        "image"
    )
    if registered != image:
        raise MigrationError(
            f"RegisterTaskDefinition stored image {registered!r} for {container!r}, not {image!r}"
        )
    return arn


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


Emit = Callable[[dict[str, Any]], None]


def _emit_stdout(event: Mapping[str, Any]) -> None:
    print(json.dumps(event, default=str, sort_keys=True), flush=True)


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
            error = (
                getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
            )
            message += f"; StopTask failed: {error.get('Code', type(exc).__name__)}"
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


def session_for(role_arn: str | None, *, region: str | None, session_name: str) -> Any:
    """A boto3 session in the environment account (the deploy role's, refreshed) or current."""
    import boto3
    from botocore.credentials import CredentialProvider, RefreshableCredentials
    from botocore.session import Session as BotocoreSession

    if not role_arn:
        return boto3.Session(region_name=region)
    if not _ROLE_ARN.match(role_arn):
        raise MigrationInputError(
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
        if not hasattr(exc, "response") and type(exc).__module__.split(".")[0] != "botocore":
            raise
        error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
        text = f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}"
        emit({"event": "result", "ok": False, "error": text})
        print(f"migration failed: AWS refused a call: {text}", file=sys.stderr)
        return EXIT_FAILED
    emit({"event": "result", "ok": True, **result})
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
