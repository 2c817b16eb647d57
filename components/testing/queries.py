"""Queries over a recorded stack, in the spirit of AWS CDK's ``assertions`` module.

>>> rec.count("aws:ecs/service:Service")
1
>>> rec.has_resource("aws:ecr/repository:Repository", {"imageTagMutability": "IMMUTABLE"})
>>> svc = rec.one("aws:ecs/service:Service")
>>> svc.options["ignoreChanges"]

Partial matching (:func:`matches`): a dict pattern matches a dict that has at least those
keys with matching values (recursively); a list pattern matches a list of the same length
element-wise; :class:`Match` helpers cover "absent", "any", "array containing", "JSON string
like" and arbitrary predicates.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    custom: bool
    id: str | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "custom": self.custom,
            "id": self.id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "options": self.options,
        }

    def json_input(self, key: str) -> Any:
        """An input that AWS takes as a JSON string (``containerDefinitions``, ``policy``)."""
        value = self.inputs.get(key)
        return json.loads(value) if isinstance(value, str) else value


class _Absent:
    def __repr__(self) -> str:
        return "Match.absent()"


_ABSENT = _Absent()


class Match:
    """Pattern helpers for :func:`matches`."""

    @staticmethod
    def absent() -> Any:
        return _ABSENT

    @staticmethod
    def any() -> Callable[[Any], bool]:
        return lambda value: value is not None

    @staticmethod
    def regex(pattern: str) -> Callable[[Any], bool]:
        rx = re.compile(pattern)
        return lambda value: isinstance(value, str) and bool(rx.search(value))

    @staticmethod
    def array_with(*patterns: Any) -> Callable[[Any], bool]:
        """A list that contains, for each pattern, some element matching it."""
        return lambda value: (
            isinstance(value, list) and all(any(matches(p, v) for v in value) for p in patterns)
        )

    @staticmethod
    def json_like(pattern: Any) -> Callable[[Any], bool]:
        """A JSON string whose decoded value matches ``pattern``."""

        def check(value: Any) -> bool:
            if not isinstance(value, str):
                return False
            try:
                return matches(pattern, json.loads(value))
            except json.JSONDecodeError:
                return False

        return check


def matches(pattern: Any, value: Any) -> bool:
    """Partial structural match of ``value`` against ``pattern``."""
    if callable(pattern) and not isinstance(pattern, type):
        return bool(pattern(value))
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return False
        for key, sub in pattern.items():
            if sub is _ABSENT:
                if value.get(key) is not None:
                    return False
                continue
            if key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        return (
            isinstance(value, list)
            and len(pattern) == len(value)
            and all(matches(p, v) for p, v in zip(pattern, value, strict=True))
        )
    return bool(pattern == value)


@dataclass
class Recording:
    """Everything one offline render registered."""

    project: str
    stack: str
    resources: list[RecordedResource]
    exports: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[RecordedResource]:
        return iter(self.resources)

    def find(
        self,
        type_: str | None = None,
        props: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        custom: bool | None = None,
    ) -> list[RecordedResource]:
        """Resources of ``type_`` (exact token, or a ``*`` glob) whose inputs match ``props``."""
        out = []
        type_rx = re.compile("^" + re.escape(type_).replace(r"\*", ".*") + "$") if type_ else None
        for res in self.resources:
            if type_rx and not type_rx.match(res.type):
                continue
            if name is not None and res.name != name:
                continue
            if custom is not None and res.custom != custom:
                continue
            if props is not None and not matches(props, res.inputs):
                continue
            out.append(res)
        return out

    def one(
        self, type_: str, props: Mapping[str, Any] | None = None, *, name: str | None = None
    ) -> RecordedResource:
        found = self.find(type_, props, name=name)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one {type_} matching {props or {}} (name={name}), "
                f"found {len(found)}: {[r.name for r in found]}"
            )
        return found[0]

    def count(self, type_: str, props: Mapping[str, Any] | None = None) -> int:
        return len(self.find(type_, props))

    def has_resource(self, type_: str, props: Mapping[str, Any]) -> RecordedResource:
        """Assert that some ``type_`` resource's inputs match ``props``; return it."""
        found = self.find(type_, props)
        if not found:
            candidates = self.find(type_)
            raise AssertionError(
                f"no {type_} matches {props}; {len(candidates)} of that type: "
                + "; ".join(
                    f"{r.name}: {json.dumps(r.inputs, default=str)[:300]}" for r in candidates
                )
            )
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        for res in self.resources:
            if res.urn == urn:
                return res
        raise KeyError(urn)

    def children(
        self, parent: RecordedResource | str, *, recursive: bool = False
    ) -> list[RecordedResource]:
        urn = parent if isinstance(parent, str) else parent.urn
        direct = [r for r in self.resources if r.parent == urn]
        if not recursive:
            return direct
        out = list(direct)
        for child in direct:
            out.extend(self.children(child, recursive=True))
        return out

    def counts_by_type(self) -> dict[str, int]:
        return dict(sorted(Counter(r.type for r in self.resources).items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "stack": self.stack,
            "resources": [r.to_dict() for r in self.resources],
            "exports": self.exports,
        }
