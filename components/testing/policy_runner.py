"""Run CrossGuard policies on recorded resources, without the Pulumi CLI.

:func:`evaluate` judges a list of resources (``{"urn", "type", "name", "inputs", ...}``,
inputs with camelCase wire names, as the offline engine records them) with the policy pack
(``policy.guardrails.POLICIES`` by default) and returns the violations.

It reproduces what the CLI and the policy SDK do, so a policy behaves here exactly as in
``pulumi preview --policy-pack policy``:

* **config**: a pack config as users write it for ``--policy-pack-config`` (see
  ``policy/README.md``): ``{"all": "advisory", "<policy>": "mandatory" | {"enforcementLevel":
  ..., <policy properties>}}``. Schema defaults are filled in, ``all`` applies first, then each
  policy's own entry; the result is validated against each policy's config schema
  (:class:`PolicyConfigError` lists every problem) and handed to the policy as CrossGuard
  does (numbers as floats, ``enforcementLevel`` removed). ``disabled`` policies do not run.
* **props**: inputs are converted as the gRPC ``Struct`` converts them (integers become
  floats), engine signature objects (secrets, assets) are deserialized by the SDK, and the
  result is wrapped in the SDK's ``unknown_checking_proxy``; :data:`UNKNOWN` anywhere in
  the inputs becomes the SDK's unknown-string sentinel, so reading it raises
  ``UnknownValueError`` as during a preview.
* **outcomes**: ``report_violation`` → :class:`Violation` (a ``remediate``-level policy
  reports ``mandatory``, as the SDK does); ``UnknownValueError`` or ``args.not_applicable()``
  → :class:`NotApplicable` (neither a violation nor a crash); any other exception is a bug in
  the policy and is raised as :class:`PolicyCrash` naming the policy and resource.
* **stack policies** get every resource as a ``PolicyResource`` (props: outputs over inputs),
  with parents and ``dependsOn`` linked.

Cost: each resource's props are converted and proxied once and shared by the policies that
apply to it; policies that declare ``resource_types`` (every guardrail does) are only run on
those types; the cyclic garbage collector is paused during an evaluation (it creates no
garbage cycles, and on a large stack the collector's repeated full passes over every live
object made the run superlinear). Evaluation is linear in the number of resources.

This module depends on nothing in ``components.*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import SPECIAL_SIG_KEY, _deserialize_property
from pulumi_policy.policy import _NotApplicableError as _NotApplicable  # args.not_applicable()
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

__all__ = [
    "UNKNOWN",
    "NotApplicable",
    "PolicyConfigError",
    "PolicyCrash",
    "PolicyReport",
    "Violation",
    "evaluate",
    "evaluate_report",
    "resolve_config",
]

LEVELS: Final = ("advisory", "mandatory", "remediate", "disabled")
STACK_TYPE: Final = "pulumi:pulumi:Stack"


class _Unknown:
    """The type of :data:`UNKNOWN`."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""A value that is not known yet (a preview unknown). Put it anywhere in ``inputs``."""


@dataclass(frozen=True)
class Violation:
    """One reported violation."""

    policy: str
    enforcement_level: str
    urn: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "enforcementLevel": self.enforcement_level,
            "urn": self.urn,
            "message": self.message,
        }


@dataclass(frozen=True)
class NotApplicable:
    """A policy that could not judge a resource (unknown value, exception in config, ...)."""

    policy: str
    urn: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "urn": self.urn, "reason": self.reason}


@dataclass(frozen=True)
class PolicyReport:
    """Everything one evaluation found."""

    violations: tuple[Violation, ...]
    not_applicable: tuple[NotApplicable, ...]

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.enforcement_level == "mandatory")

    def to_dict(self) -> dict[str, Any]:
        return {
            "violations": [v.to_dict() for v in self.violations],
            "notApplicable": [n.to_dict() for n in self.not_applicable],
        }


class PolicyConfigError(ValueError):
    """A pack config the CLI would refuse; ``problems`` lists every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid policy pack config:\n  " + "\n  ".join(self.problems))


class PolicyCrash(RuntimeError):
    """A policy raised something other than the SDK's unknown / not-applicable signals."""


# --------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResolvedPolicyConfig:
    level: EnforcementLevel
    properties: dict[str, Any] | None


def _level(value: Any, where: str, problems: list[str]) -> EnforcementLevel | None:
    if isinstance(value, str) and value in LEVELS:
        return EnforcementLevel(value)
    problems.append(f"{where}: {value!r} is not an enforcement level; use one of {list(LEVELS)}")
    return None


def resolve_config(
    policies: Sequence[Any],
    config: Mapping[str, Any] | None,
    *,
    default_level: EnforcementLevel = EnforcementLevel.ADVISORY,
) -> dict[str, ResolvedPolicyConfig]:
    """Each policy's enforcement level and config properties, as the CLI reconciles them."""
    names = [p.name for p in policies]
    problems: list[str] = []
    levels: dict[str, EnforcementLevel] = {}
    properties: dict[str, dict[str, Any]] = {}
    for policy in policies:
        levels[policy.name] = policy.enforcement_level or default_level
        schema = policy.config_schema.properties if policy.config_schema else {}
        properties[policy.name] = {k: v["default"] for k, v in schema.items() if "default" in v}
    if config is not None and not isinstance(config, Mapping):
        raise PolicyConfigError([f"the config must be a JSON object, not {type(config).__name__}"])
    given = dict(config or {})
    if "all" in given:
        entry = given.pop("all")
        raw = entry.get("enforcementLevel") if isinstance(entry, Mapping) else entry
        level = _level(raw, "all", problems)
        if level is not None:
            levels = dict.fromkeys(levels, level)
    for name, entry in given.items():
        if name not in levels:
            problems.append(f"{name}: no such policy in the pack; policies are {names}")
            continue
        if isinstance(entry, str):
            level = _level(entry, name, problems)
            if level is not None:
                levels[name] = level
        elif isinstance(entry, Mapping):
            for key, value in entry.items():
                if key == "enforcementLevel":
                    level = _level(value, f"{name}.enforcementLevel", problems)
                    if level is not None:
                        levels[name] = level
                else:
                    properties[name][key] = value
        else:
            problems.append(
                f"{name}: {entry!r} is not valid; use an enforcement level or an object"
            )
    for policy in policies:
        if policy.config_schema is None:
            continue
        schema = {
            "type": "object",
            "properties": policy.config_schema.properties,
            "required": policy.config_schema.required or [],
            "additionalProperties": False,
        }
        problems.extend(_schema_problems(schema, properties[policy.name], policy.name))
    if problems:
        raise PolicyConfigError(problems)
    return {
        name: ResolvedPolicyConfig(levels[name], _struct(properties[name]) or None)
        for name in names
    }


_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "boolean": (bool,),
    "object": (Mapping,),
    "array": (list, tuple),
    "number": (int, float),
    "integer": (int, float),
}


def _schema_problems(schema: Mapping[str, Any], value: Any, path: str) -> list[str]:
    """The JSON-schema keywords policy configs use: enough to refuse what the CLI refuses."""
    out: list[str] = []
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[kind]) and not (
            kind in ("number", "integer") and isinstance(value, bool)
        )
        if ok and kind == "integer":
            ok = float(value).is_integer()
        if not ok:
            return [f"{path}: {value!r} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: must not be empty")
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value):
            out.append(f"{path}: {value!r} does not match {pattern!r}")
        if schema.get("format") == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                out.append(f"{path}: {value!r} is not a regular expression ({exc})")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value!r} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value!r} is above the maximum {schema['maximum']}")
    if isinstance(value, (list, tuple)) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            out.extend(_schema_problems(schema["items"], item, f"{path}[{i}]"))
    if isinstance(value, Mapping):
        props = schema.get("properties") or {}
        for key in schema.get("required") or []:
            if key not in value:
                out.append(f"{path}: '{key}' is required")
        for key, item in value.items():
            if key in props:
                out.extend(_schema_problems(props[key], item, f"{path}.{key}"))
            elif schema.get("additionalProperties") is False:
                allowed = sorted(props)
                out.append(f"{path}: unknown key '{key}'; allowed keys are {allowed}")
        alternatives = schema.get("anyOf")
        if alternatives and not any(not _schema_problems(a, value, path) for a in alternatives):
            needed = [k for a in alternatives for k in a.get("required", [])]
            out.append(f"{path}: needs one of {needed}")
    return out


def _struct(value: Any) -> Any:
    """A value as the policy SDK sees it after gRPC: every number a float (protobuf ``Struct``),
    :data:`UNKNOWN` as the unknown sentinel, and secrets, assets and archives (the engine's
    signature objects) deserialized by the SDK's own ``_deserialize_property``."""
    if value is UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        converted = {str(k): _struct(v) for k, v in value.items()}
        return _deserialize_property(converted) if SPECIAL_SIG_KEY in converted else converted
    if isinstance(value, (list, tuple)):
        return [_struct(v) for v in value]
    return value  # assets and archives already as objects pass through


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
def _props(raw: Any) -> Mapping[str, Any]:
    """Props exactly as CrossGuard hands them over: the SDK's unknown-checking proxy."""
    return unknown_checking_proxy(_struct(raw) if isinstance(raw, Mapping) else {})


class _LazyProps(Mapping[str, Any]):
    """A stack resource's props, proxied on first use (a stack policy reads few resources)."""

    __slots__ = ("_built", "_raw")

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._built: Mapping[str, Any] | None = None

    def _target(self) -> Mapping[str, Any]:
        if self._built is None:
            self._built = _props(self._raw)
        return self._built

    def __getitem__(self, key: str) -> Any:
        return self._target()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())


def _option(options: Mapping[str, Any], camel: str, snake: str, default: Any) -> Any:
    if camel in options:
        return options[camel]
    return options.get(snake, default)


def _options(resource: Mapping[str, Any]) -> PolicyResourceOptions:
    options = resource.get("options") or {}
    timeouts = _option(options, "customTimeouts", "custom_timeouts", None) or {}
    return PolicyResourceOptions(
        bool(options.get("protect", False)),
        list(_option(options, "ignoreChanges", "ignore_changes", []) or []),
        _option(options, "deleteBeforeReplace", "delete_before_replace", None),
        list(options.get("aliases") or []),
        PolicyCustomTimeouts(
            float(timeouts.get("create", 0) or 0),
            float(timeouts.get("update", 0) or 0),
            float(timeouts.get("delete", 0) or 0),
        ),
        list(_option(options, "additionalSecretOutputs", "additional_secret_outputs", []) or []),
        resource.get("parent"),
    )


def _run(result: Any) -> None:
    if isawaitable(result):
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(result)
        finally:
            loop.close()


def _level_name(level: EnforcementLevel) -> str:
    # The SDK reports violations of a remediate-level policy as mandatory.
    return "mandatory" if level == EnforcementLevel.REMEDIATE else level.value


class _Collector:
    """The ``report_violation`` callback: collects :class:`Violation` objects."""

    def __init__(self, sink: list[Violation], policy: str, level: str, urn: str | None) -> None:
        self._sink = sink
        self._policy = policy
        self._level = level
        self._urn = urn

    def __call__(self, message: str, urn: str | None = None) -> None:
        # Resource policies always report on the resource judged (the SDK ignores ``urn``);
        # stack policies name the resource themselves, or none for the whole stack.
        target = self._urn if self._urn is not None else (urn or None)
        self._sink.append(Violation(self._policy, self._level, target, message))


def _declared_types(policy: Any) -> frozenset[str] | None:
    types = getattr(policy, "resource_types", None)
    return frozenset(types) if types is not None else None


def _default_pack() -> tuple[Sequence[Any], EnforcementLevel]:
    module = importlib.import_module("policy.guardrails")
    return module.POLICIES, module.PACK_ENFORCEMENT_LEVEL


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def evaluate_report(
    resources: Sequence[Mapping[str, Any]],
    *,
    policies: Sequence[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    stack_name: str = "dev",
    project: str = "dotnet-delivery",
) -> PolicyReport:
    """Violations and not-applicable verdicts of ``policies`` on ``resources``."""
    with _gc_paused():
        return _evaluate(
            resources, policies=policies, config=config, stack_name=stack_name, project=project
        )


def _evaluate(
    resources: Sequence[Mapping[str, Any]],
    *,
    policies: Sequence[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    stack_name: str = "dev",
    project: str = "dotnet-delivery",
) -> PolicyReport:
    default_level = EnforcementLevel.ADVISORY
    if policies is None:
        policies, default_level = _default_pack()
    resolved = resolve_config(policies, config, default_level=default_level)
    stack_tags = {"pulumi:project": project}
    resource_policies = [
        (p, resolved[p.name])
        for p in policies
        if isinstance(p, ResourceValidationPolicy)
        and resolved[p.name].level != EnforcementLevel.DISABLED
    ]
    stack_policies = [
        (p, resolved[p.name])
        for p in policies
        if isinstance(p, StackValidationPolicy)
        and resolved[p.name].level != EnforcementLevel.DISABLED
    ]
    declared = {p.name: _declared_types(p) for p, _ in resource_policies}
    by_type: dict[str, list[tuple[Any, ResolvedPolicyConfig]]] = {}
    violations: list[Violation] = []
    skipped: list[NotApplicable] = []
    providers: dict[str, PolicyProviderResource | None] = {}
    by_urn = {str(r.get("urn")): r for r in resources if r.get("urn")}
    prepared: dict[int, tuple[Mapping[str, Any], PolicyResourceOptions]] = {}

    def urn_of(resource: Mapping[str, Any]) -> str:
        urn = resource.get("urn")
        if urn:
            return str(urn)
        return f"urn:pulumi:{stack_name}::{project}::{resource.get('type')}::{resource.get('name')}"

    def provider_of(resource: Mapping[str, Any]) -> PolicyProviderResource | None:
        ref = resource.get("provider")
        if isinstance(ref, Mapping):
            return PolicyProviderResource(
                str(ref.get("type", "")),
                _props(ref.get("inputs") or ref.get("props") or {}),
                str(ref.get("urn", "")),
                str(ref.get("name", "")),
            )
        if not isinstance(ref, str) or not ref:
            return None
        if ref not in providers:
            urn = ref.rsplit("::", 1)[0] if ref.count("::") > 3 else ref
            target = by_urn.get(urn)
            providers[ref] = (
                PolicyProviderResource(
                    str(target.get("type")),
                    _props(target.get("inputs")),
                    urn,
                    str(target.get("name")),
                )
                if target is not None
                else None
            )
        return providers[ref]

    def applicable(kind: str) -> list[tuple[Any, ResolvedPolicyConfig]]:
        found = by_type.get(kind)
        if found is None:
            found = [
                (p, c)
                for p, c in resource_policies
                if (types := declared[p.name]) is None or kind in types
            ]
            by_type[kind] = found
        return found

    for resource in resources:
        kind = str(resource.get("type", ""))
        if (
            kind == STACK_TYPE
            or kind.startswith("pulumi:providers:")
            or resource.get("custom") is False
        ):
            continue
        chosen = applicable(kind)
        if not chosen:
            continue
        urn = urn_of(resource)
        name = str(resource.get("name", ""))
        props = _props(resource.get("inputs"))
        opts = _options(resource)
        prepared[id(resource)] = (props, opts)
        provider = provider_of(resource)
        for policy, settings in chosen:
            level = _level_name(settings.level)

            report = _Collector(violations, policy.name, level, urn)
            args = ResourceValidationArgs(
                kind,
                props,
                urn,
                name,
                opts,
                provider,
                dict(settings.properties) if settings.properties else None,
                stack_tags,
            )
            try:
                _run(policy.validate(args, report))
            except UnknownValueError as exc:
                skipped.append(
                    NotApplicable(policy.name, urn, f"unknown during preview: {exc.message}")
                )
            except _NotApplicable as exc:
                skipped.append(NotApplicable(policy.name, urn, getattr(exc, "reason", None) or ""))
            except Exception as exc:
                raise PolicyCrash(f"policy '{policy.name}' crashed on {urn}: {exc!r}") from exc

    if stack_policies:
        stack_resources = _stack_resources(resources, prepared, urn_of, provider_of)
        for policy, settings in stack_policies:
            level = _level_name(settings.level)

            report_stack = _Collector(violations, policy.name, level, None)
            args_stack = StackValidationArgs(
                stack_resources,
                dict(settings.properties) if settings.properties else None,
                stack_tags,
            )
            try:
                _run(policy.validate(args_stack, report_stack))
            except UnknownValueError as exc:
                skipped.append(
                    NotApplicable(policy.name, None, f"unknown during preview: {exc.message}")
                )
            except _NotApplicable as exc:
                skipped.append(NotApplicable(policy.name, None, getattr(exc, "reason", None) or ""))
            except Exception as exc:
                raise PolicyCrash(f"stack policy '{policy.name}' crashed: {exc!r}") from exc

    return PolicyReport(tuple(violations), tuple(skipped))


def _stack_resources(
    resources: Sequence[Mapping[str, Any]],
    prepared: Mapping[int, tuple[Mapping[str, Any], PolicyResourceOptions]],
    urn_of: Any,
    provider_of: Any,
) -> list[PolicyResource]:
    """Every resource as CrossGuard hands it to a stack policy, parents and deps linked.

    Props are the outputs over the inputs (the engine hands stack policies the resources'
    state), reusing the resource pass's proxy when there are no outputs.
    """
    built: list[tuple[PolicyResource, Mapping[str, Any]]] = []
    by_urn: dict[str, PolicyResource] = {}
    for resource in resources:
        outputs = resource.get("outputs")
        known = prepared.get(id(resource))
        props: Mapping[str, Any]
        if isinstance(outputs, Mapping) and outputs:
            inputs = resource.get("inputs")
            props = _LazyProps({**(inputs if isinstance(inputs, Mapping) else {}), **outputs})
        elif known is not None:
            props = known[0]
        else:
            props = _LazyProps(resource.get("inputs"))
        item = PolicyResource(
            str(resource.get("type", "")),
            props,
            urn_of(resource),
            str(resource.get("name", "")),
            known[1] if known is not None else _options(resource),
            provider_of(resource),
            None,
            [],
            {},
        )
        built.append((item, resource))
        by_urn[item.urn] = item
    for item, resource in built:
        parent = resource.get("parent")
        if parent and parent in by_urn:
            item.parent = by_urn[parent]
        options = resource.get("options") or {}
        for dep in _option(options, "dependsOn", "depends_on", []) or []:
            if dep in by_urn:
                item.dependencies.append(by_urn[dep])
    return [item for item, _ in built]


def evaluate(
    resources: Sequence[Mapping[str, Any]],
    *,
    policies: Sequence[Any] | None = None,
    config: Mapping[str, Any] | None = None,
    stack_name: str = "dev",
    project: str = "dotnet-delivery",
) -> list[Violation]:
    """The violations of ``policies`` (default: the pack's ``POLICIES``) on ``resources``."""
    return list(
        evaluate_report(
            resources, policies=policies, config=config, stack_name=stack_name, project=project
        ).violations
    )
