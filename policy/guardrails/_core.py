"""What every guardrail shares: settings with defaults, exceptions, typed prop access.

A guardrail is a ``check`` function that reads a resource's props (the SDK's read-only,
unknown-checking proxy) and yields one message per problem. :class:`GuardrailPolicy` wraps
it in a real ``ResourceValidationPolicy`` that

* only looks at the resource types it declares (``resource_types``, also used by the offline
  runner to skip policies that cannot apply),
* reads its config with the schema defaults filled in (the CLI fills them too; this keeps
  direct calls and older CLIs right),
* honours exceptions: ``{"urn": ..., "reason": ...}`` or ``{"namePattern": ..., "reason":
  ...}``; an exception without a reason is never honoured,
* lets the SDK's ``UnknownValueError`` through, so a value that is unknown during preview
  makes the policy "not applicable" for that resource instead of passing it.

Nothing here imports anything outside the standard library and ``pulumi_policy``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

EXCEPTIONS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "description": (
        "Resources this policy does not judge. Each entry names a resource by exact URN or by "
        "a glob on its name (namePattern, fnmatch syntax) and must say why."
    ),
    "items": {
        "type": "object",
        "properties": {
            "urn": {"type": "string", "minLength": 1},
            "namePattern": {"type": "string", "minLength": 1},
            "reason": {"type": "string", "minLength": 1, "pattern": "\\S"},
        },
        "required": ["reason"],
        "anyOf": [{"required": ["urn"]}, {"required": ["namePattern"]}],
        "additionalProperties": False,
    },
    "default": [],
}

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class PolicyException:
    """One honoured exception from a policy's config."""

    reason: str
    urn: str | None = None
    name_pattern: str | None = None

    def matches(self, urn: str | None, name: str | None) -> bool:
        if self.urn is not None and urn is not None and self.urn == urn:
            return True
        return (
            self.name_pattern is not None
            and name is not None
            and fnmatch.fnmatchcase(name, self.name_pattern)
        )


class Settings:
    """A policy's config (as CrossGuard hands it over) with schema defaults filled in."""

    def __init__(self, config: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> None:
        self._values: dict[str, Any] = dict(defaults)
        if config:
            self._values.update(config)
        self.exceptions: tuple[PolicyException, ...] = tuple(
            _exceptions(self._values.get("exceptions"))
        )

    def __getitem__(self, key: str) -> Any:
        return self._values.get(key)

    def strings(self, key: str) -> list[str]:
        value = self._values.get(key)
        if isinstance(value, str):
            return [value]
        if isinstance(value, Sequence):
            return [v for v in value if isinstance(v, str)]
        return []

    def exception_for(self, urn: str | None, name: str | None) -> PolicyException | None:
        for exception in self.exceptions:
            if exception.matches(urn, name):
                return exception
        return None


def _exceptions(raw: Any) -> Iterable[PolicyException]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            continue  # an exception must say why; one that does not is never honoured
        urn = entry.get("urn")
        pattern = entry.get("namePattern")
        if not isinstance(urn, str) and not isinstance(pattern, str):
            continue
        yield PolicyException(
            reason=reason.strip(),
            urn=urn if isinstance(urn, str) and urn else None,
            name_pattern=pattern if isinstance(pattern, str) and pattern else None,
        )


@dataclass(frozen=True)
class Subject:
    """The resource being judged, for messages."""

    type: str
    name: str
    urn: str

    @property
    def label(self) -> str:
        return f"{self.type} '{self.name}'"


def name_from_urn(urn: str) -> str:
    """The resource name at the end of a URN (``urn:pulumi:stack::proj::type::name``)."""
    return urn.rsplit("::", 1)[-1]


# --------------------------------------------------------------------------------------
# Typed access to proxied props. Every access goes through the SDK proxy, so an unknown
# value raises ``UnknownValueError`` exactly where the policy looks at it.
# --------------------------------------------------------------------------------------
def as_mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def as_list(value: Any) -> list[Any]:
    """A list of the elements (each read through the proxy); ``[]`` for anything else."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return []
    return [value[i] for i in range(len(value))]


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def arn_account(arn: str) -> str | None:
    """The 12-digit account of an ARN, or ``None`` when the ARN names none."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return None
    account = parts[4]
    return account if ACCOUNT_ID_RE.match(account) else None


def config_schema(properties: Mapping[str, Mapping[str, Any]]) -> PolicyConfigSchema:
    return PolicyConfigSchema(
        properties={**{k: dict(v) for k, v in properties.items()}, "exceptions": EXCEPTIONS_SCHEMA}
    )


def _defaults(properties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out = {k: v["default"] for k, v in properties.items() if "default" in v}
    out["exceptions"] = []
    return out


ResourceCheck = Callable[[Mapping[str, Any], Settings, Subject], Iterable[str]]
StackCheck = Callable[[Sequence[PolicyResource], Settings], Iterable[tuple[str, str | None]]]


class GuardrailPolicy(ResourceValidationPolicy):
    """A resource policy built from a ``check`` generator of violation messages."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        resource_types: Iterable[str],
        check: ResourceCheck,
        enforcement_level: EnforcementLevel,
        severity: Severity,
        remediation_steps: str,
        config_properties: Mapping[str, Mapping[str, Any]] | None = None,
        display_name: str | None = None,
    ) -> None:
        properties = dict(config_properties or {})
        self.resource_types: frozenset[str] = frozenset(resource_types)
        self.defaults: dict[str, Any] = _defaults(properties)
        self._check = check
        super().__init__(
            name=name,
            description=description,
            validate=self._validate,
            enforcement_level=enforcement_level,
            config_schema=config_schema(properties),
            display_name=display_name,
            severity=severity,
            tags=["delivery", "aws"],
            remediation_steps=remediation_steps,
        )

    def _validate(self, args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in self.resource_types:
            return
        settings = Settings(args.get_config(), self.defaults)
        exception = settings.exception_for(args.urn, args.name)
        if exception is not None:
            args.not_applicable(f"exception for '{args.name}': {exception.reason}")
        subject = Subject(args.resource_type, args.name, args.urn)
        # Report each message as soon as it is found: if a later value is unknown during
        # preview, what was already seen stays reported (as CrossGuard does).
        for message in self._check(args.props, settings, subject):
            report_violation(message, None)


class GuardrailStackPolicy(StackValidationPolicy):
    """A stack policy built from a ``check`` generator of ``(message, urn)`` pairs."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        check: StackCheck,
        enforcement_level: EnforcementLevel,
        severity: Severity,
        remediation_steps: str,
        config_properties: Mapping[str, Mapping[str, Any]] | None = None,
        display_name: str | None = None,
    ) -> None:
        properties = dict(config_properties or {})
        self.defaults: dict[str, Any] = _defaults(properties)
        self._check = check
        super().__init__(
            name=name,
            description=description,
            validate=self._validate,
            enforcement_level=enforcement_level,
            config_schema=config_schema(properties),
            display_name=display_name,
            severity=severity,
            tags=["delivery", "aws"],
            remediation_steps=remediation_steps,
        )

    def _validate(self, args: StackValidationArgs, report_violation: ReportViolation) -> None:
        settings = Settings(args.get_config(), self.defaults)
        for message, urn in self._check(args.resources, settings):
            if urn is not None and settings.exception_for(urn, name_from_urn(urn)) is not None:
                continue
            report_violation(message, urn)
