"""Runtime hygiene: ``ecs-task-non-root-read-only`` (advisory) and ``log-group-retention``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import GuardrailPolicy, Settings, Subject
from .images import TASK_DEFINITION, container_definitions

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_ROOT_USERS = frozenset({"root", "0"})


def runs_as_root(user: str) -> bool:
    """``root``, ``0``, ``root:group`` and ``0:gid`` all run as uid 0."""
    return user.strip().split(":", 1)[0].strip().lower() in _ROOT_USERS


def check_non_root(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    containers = container_definitions(props)
    if isinstance(containers, str):
        return  # reported by ecs-image-digest-pinned
    for container in containers:
        cname = container.get("name", "?")
        user = container.get("user")
        if isinstance(user, (int, float)) and not isinstance(user, bool):
            user = str(int(user))
        if isinstance(user, str) and user.strip():
            if runs_as_root(user):
                yield (
                    f"{subject.label}: container '{cname}' runs as root (user '{user}'). Fix: "
                    "set 'user' to the image's non-root uid (e.g. '1654' = $APP_UID in .NET "
                    "chiseled images)."
                )
        elif settings["requireExplicitUser"]:
            yield (
                f"{subject.label}: container '{cname}' sets no user, so it runs as the image's "
                "default user (root unless the image says otherwise). Fix: set 'user' to a "
                "non-root uid such as '1654'."
            )
        if (
            settings["requireReadOnlyRootFilesystem"]
            and container.get("readonlyRootFilesystem") is not True
        ):
            yield (
                f"{subject.label}: container '{cname}' has a writable root filesystem. Fix: set "
                "readonlyRootFilesystem = true and mount a volume at the paths the app writes "
                "(e.g. /tmp)."
            )


ECS_TASK_NON_ROOT_READ_ONLY = GuardrailPolicy(
    name="ecs-task-non-root-read-only",
    display_name="Containers run as non-root with a read-only root filesystem",
    description=(
        "ECS containers run as a non-root user with a read-only root filesystem, so a "
        "compromised process can neither act as root nor change the image."
    ),
    resource_types=(TASK_DEFINITION,),
    check=check_non_root,
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    remediation_steps="Set 'user' to a non-root uid and readonlyRootFilesystem = true.",
    config_properties={
        "requireExplicitUser": {
            "type": "boolean",
            "description": "Flag containers that set no user (the image decides).",
            "default": True,
        },
        "requireReadOnlyRootFilesystem": {"type": "boolean", "default": True},
    },
)


def _days(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_retention(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    raw = props.get("retentionInDays")
    minimum = float(settings["minimumDays"] or 1)
    maximum = settings["maximumDays"]
    fix = "Fix: set retentionInDays to a value AWS accepts (e.g. 30, 90, 365)" + (
        f" of at least {_days(minimum)} days." if minimum > 1 else "."
    )
    if raw is None or isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw == 0:
        yield f"{subject.label}: retentionInDays is not set, so logs are kept forever. {fix}"
        return
    if raw < minimum:
        yield f"{subject.label}: retentionInDays is {_days(raw)}, below {_days(minimum)}. {fix}"
    elif isinstance(maximum, (int, float)) and raw > maximum:
        yield (
            f"{subject.label}: retentionInDays is {_days(raw)}, above the maximum of "
            f"{_days(maximum)}. Fix: lower it."
        )


LOG_GROUP_RETENTION = GuardrailPolicy(
    name="log-group-retention",
    display_name="Log groups expire their logs",
    description=(
        "CloudWatch log groups set retentionInDays, so logs neither grow (and bill) forever "
        "nor outlive the organisation's retention rules."
    ),
    resource_types=(LOG_GROUP,),
    check=check_retention,
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    remediation_steps="Set retentionInDays (e.g. 30 for dev, 365 for prod).",
    config_properties={
        "minimumDays": {
            "type": "integer",
            "minimum": 1,
            "description": "Shortest retention accepted.",
            "default": 1,
        },
        "maximumDays": {
            "type": "integer",
            "minimum": 1,
            "description": "Longest retention accepted (unset: no maximum).",
        },
    },
)
