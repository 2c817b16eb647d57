"""Digest admission hook Lambda for ECS native blue/green (self-contained: stdlib + boto3 only).

Wired as the service's ``PRE_SCALE_UP`` lifecycle hook (the green revision has not started;
blue serves all production traffic, there is no test traffic). It refuses a deployment whose
task definition runs any container image that is not pinned by digest, so a tag that was
moved (or a hand-made ``UpdateService`` with ``:latest``) never gets to start a task.

Event and answer (the same contract :mod:`components.runtime.smoke_hook` documents): ECS sends
``{"executionId", "lifecycleStage", "resourceArn", "executionDetails": {"serviceArn",
"targetServiceRevisionArn", "testTrafficWeights", "productionTrafficWeights"}, "hookDetails"?}``
and expects the function to *return* ``{"hookStatus": "SUCCEEDED" | "FAILED" |
"IN_PROGRESS"}``; ``FAILED``, a missing/invalid ``hookStatus`` or a function error rolls the
deployment back.
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/lambda-lifecycle-hooks.html
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-lifecycle-hooks.html

The check:

1. ``ecs:DescribeServiceRevisions`` on ``executionDetails.targetServiceRevisionArn`` gives the
   green revision's ``taskDefinition`` ARN;
2. ``ecs:DescribeTaskDefinition`` on that ARN gives the container definitions;
3. every container's ``image`` must be ``name[:tag]@sha256:<64 lowercase hex>``
   (:func:`is_digest_pinned`; a registry host's ``:port`` is not a tag) - the rule of the
   policy pack's ``ecs-image-digest-pinned``. The revision's ``containerImages[].imageDigest``
   is deliberately *not* used: ECS resolves a tag to a digest there too (software version
   consistency), which would make a tag-only image look pinned.
4. Optional ``ALLOWED_REGISTRIES`` (comma-separated registry hosts or repository prefixes,
   e.g. ``123456789012.dkr.ecr.eu-west-1.amazonaws.com,public.ecr.aws/aws-observability``):
   when set, an image whose repository is not one of them or below one of them is refused too.

Fail closed: any error (a bad event, a failed or empty describe, a bad ``ALLOWED_REGISTRIES``,
anything unexpected) answers ``FAILED`` and is logged; an unpinned image never gets through
because of an error. Stage handling follows the smoke hook: at any stage other than
``PRE_SCALE_UP`` the hook answers ``FAILED`` and logs that it is mis-wired, except a traffic
shift ECS re-invokes during a rollback (target revision at weight 0 while another revision
carries traffic), which answers ``SUCCEEDED``: the hook never blocks a rollback.

Logs: one JSON line per event on stdout: ``admission.decision`` (stage, revision, task
definition, hook status) and one ``admission.refused`` per offending container naming the
container, its image and why.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ADMISSION_STAGE = "PRE_SCALE_UP"
ALLOWED_REGISTRIES_ENV = "ALLOWED_REGISTRIES"

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]*")
# A registry host or repository prefix: no wildcards, whitespace, tag or digest.
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?::\d{1,5})?(?:/[a-z0-9][a-z0-9._/-]*)?")
# Stages ECS re-invokes during a rollback, and the weight map that shows it (as smoke_hook).
_ROLLBACK_WEIGHTS = {
    "TEST_TRAFFIC_SHIFT": "testTrafficWeights",
    "PRODUCTION_TRAFFIC_SHIFT": "productionTrafficWeights",
}

Log = Callable[[dict[str, Any]], None]


def emit(record: Mapping[str, Any]) -> None:
    """Write one JSON log line to stdout (CloudWatch Logs keeps one line per record)."""
    sys.stdout.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def _short(text: object, limit: int = 300) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 3] + "..."


# --------------------------------------------------------------------------- image references


@dataclass(frozen=True)
class ImageRef:
    """``[registry[:port]/]path[:tag][@digest]`` split into its parts."""

    name: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Split an image reference; the tag lives in the last path component only, so the
    ``:5000`` of ``registry:5000/app`` is a port, not a tag."""
    name, at, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag: str | None = None
    if colon > slash:
        tag = name[colon + 1 :]
        name = name[:colon]
    return ImageRef(name=name, tag=tag, digest=digest if at else None)


def pinning_problem(image: object) -> str | None:
    """Why ``image`` is not ``name[:tag]@sha256:<64 lowercase hex>``, or ``None`` if it is."""
    if not isinstance(image, str) or not image:
        return f"image {image!r} is empty or not a string"
    ref = parse_image(image)
    if not _NAME_RE.fullmatch(ref.name):
        return f"image {image!r} has no valid repository name"
    if ref.digest is None:
        return f"image {image!r} is not pinned by digest"
    if not _DIGEST_RE.fullmatch(ref.digest):
        return (
            f"image {image!r} has digest {ref.digest!r}; only sha256 digests of exactly 64 "
            "lowercase hex characters are accepted"
        )
    if ref.tag == "":
        return f"image {image!r} has an empty tag before the digest"
    return None


def is_digest_pinned(image: object) -> bool:
    """True when ``image`` is ``name[:tag]@sha256:<64 lowercase hex>`` (a tag may accompany
    the digest; a registry port is not a tag)."""
    return pinning_problem(image) is None


def parse_allowed_registries(raw: str | None) -> tuple[str, ...]:
    """``ALLOWED_REGISTRIES`` as a tuple of prefixes; empty when unset (no restriction).
    Raises ``ValueError`` naming the variable, the value and the rule."""
    if raw is None or not raw.strip():
        return ()
    entries = tuple(e.strip().rstrip("/") for e in raw.split(",") if e.strip())
    for entry in entries:
        if not _PREFIX_RE.fullmatch(entry):
            raise ValueError(
                f"{ALLOWED_REGISTRIES_ENV}: {entry!r} is not a registry host or repository "
                "prefix; use e.g. '123456789012.dkr.ecr.eu-west-1.amazonaws.com' or "
                "'public.ecr.aws/aws-observability' (no wildcards, tags or digests)"
            )
    if not entries:
        raise ValueError(f"{ALLOWED_REGISTRIES_ENV}: {raw!r} names no registry")
    return entries


def registry_allowed(image: str, allowed: Sequence[str]) -> bool:
    """True when ``allowed`` is empty or the image's repository is one of them or below one."""
    if not allowed:
        return True
    name = parse_image(image).name
    return any(name == prefix or name.startswith(prefix + "/") for prefix in allowed)


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Refusal:
    container: str
    image: str
    reason: str


def check_containers(
    containers: Sequence[Mapping[str, Any]], allowed: Sequence[str] = ()
) -> list[Refusal]:
    """Every container whose image is not digest-pinned (or outside ``allowed``)."""
    refusals: list[Refusal] = []
    for container in containers:
        name = str(container.get("name", "?"))
        image = container.get("image")
        problem = pinning_problem(image)
        if problem is None and not registry_allowed(str(image), allowed):
            problem = f"image {image!r} is outside {ALLOWED_REGISTRIES_ENV} ({', '.join(allowed)})"
        if problem is not None:
            refusals.append(Refusal(container=name, image=str(image), reason=problem))
    return refusals


class AdmissionError(RuntimeError):
    """The revision or task definition could not be read as expected."""


def target_revision_arn(event: Mapping[str, Any]) -> str:
    details = event.get("executionDetails")
    arn = details.get("targetServiceRevisionArn") if isinstance(details, Mapping) else None
    if not isinstance(arn, str) or ":service-revision/" not in arn:
        raise AdmissionError(
            f"executionDetails.targetServiceRevisionArn: {arn!r} is not a service revision ARN"
        )
    return arn


def task_definition_of(client: Any, revision_arn: str) -> str:
    """The ``taskDefinition`` ARN of one service revision (``ecs:DescribeServiceRevisions``)."""
    response = client.describe_service_revisions(serviceRevisionArns=[revision_arn])
    failures = response.get("failures") or []
    if failures:
        raise AdmissionError(f"DescribeServiceRevisions failures: {_short(failures)}")
    revisions = [
        r
        for r in response.get("serviceRevisions") or []
        if r.get("serviceRevisionArn") == revision_arn
    ]
    if len(revisions) != 1 or not isinstance(revisions[0].get("taskDefinition"), str):
        raise AdmissionError(
            f"DescribeServiceRevisions returned no task definition for {revision_arn}"
        )
    return str(revisions[0]["taskDefinition"])


def containers_of(client: Any, task_definition_arn: str) -> list[Mapping[str, Any]]:
    """The container definitions of a task definition (``ecs:DescribeTaskDefinition``)."""
    response = client.describe_task_definition(taskDefinition=task_definition_arn)
    containers = (response.get("taskDefinition") or {}).get("containerDefinitions") or []
    if not containers:
        raise AdmissionError(f"task definition {task_definition_arn} has no containers")
    return list(containers)


def is_rollback(event: Mapping[str, Any]) -> bool:
    """ECS re-invokes traffic-shift hooks on rollback; the weights then show the target
    revision at 0 while another revision carries the traffic (as in smoke_hook)."""
    key = _ROLLBACK_WEIGHTS.get(str(event.get("lifecycleStage")))
    details = event.get("executionDetails")
    if key is None or not isinstance(details, Mapping):
        return False
    weights = details.get(key)
    target = details.get("targetServiceRevisionArn")
    if not isinstance(weights, Mapping) or target not in weights:
        return False
    try:
        others = [float(v) for k, v in weights.items() if k != target]
        return float(weights[target]) == 0 and any(w > 0 for w in others)
    except (TypeError, ValueError):
        return False


def _ecs_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecs",
        config=Config(
            connect_timeout=5, read_timeout=10, retries={"max_attempts": 5, "mode": "standard"}
        ),
    )


def handle(
    event: Any,
    *,
    env: Mapping[str, str],
    ecs_client: Callable[[], Any] | None = None,
    log: Log = emit,
) -> dict[str, Any]:
    """:func:`handler` with its collaborators injectable; never raises."""
    base: dict[str, Any] = {"event": "admission.decision"}
    try:
        if not isinstance(event, Mapping) or not isinstance(event.get("lifecycleStage"), str):
            keys = sorted(str(k) for k in event) if isinstance(event, Mapping) else []
            raise AdmissionError(
                f"event: keys {keys or type(event).__name__} are not an ECS lifecycle hook "
                "event (executionId, lifecycleStage, executionDetails)"
            )
        stage = str(event["lifecycleStage"])
        base.update(stage=stage, execution_id=event.get("executionId"))
        if is_rollback(event):
            log({**base, "hook_status": "SUCCEEDED", "reason": "rollback: never blocked"})
            return {"hookStatus": "SUCCEEDED"}
        if stage != ADMISSION_STAGE:
            log(
                {
                    **base,
                    "hook_status": "FAILED",
                    "reason": f"mis-wired: the admission check belongs before the new "
                    f"revision starts; attach this hook to {ADMISSION_STAGE}, not {stage}",
                }
            )
            return {"hookStatus": "FAILED"}
        allowed = parse_allowed_registries(env.get(ALLOWED_REGISTRIES_ENV))
        revision = target_revision_arn(event)
        base["service_revision"] = revision
        client = (ecs_client or _ecs_client)()
        task_definition = task_definition_of(client, revision)
        base["task_definition"] = task_definition
        refusals = check_containers(containers_of(client, task_definition), allowed)
        for refusal in refusals:
            log(
                {
                    "event": "admission.refused",
                    "container": refusal.container,
                    "image": refusal.image,
                    "reason": refusal.reason,
                    "task_definition": task_definition,
                }
            )
        if refusals:
            log(
                {
                    **base,
                    "hook_status": "FAILED",
                    "refused_containers": [r.container for r in refusals],
                }
            )
            return {"hookStatus": "FAILED"}
        log({**base, "hook_status": "SUCCEEDED"})
        return {"hookStatus": "SUCCEEDED"}
    except Exception as exc:
        log({**base, "hook_status": "FAILED", "error": f"{type(exc).__name__}: {_short(exc)}"})
        return {"hookStatus": "FAILED"}


def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (ECS native blue/green, ``PRE_SCALE_UP``)."""
    return handle(event, env=os.environ)
