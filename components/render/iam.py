"""Primitives for IAM policy documents (pure; every area's documents are built from these).

Documents are plain ``dict`` values ready for ``json.dumps``. :func:`policy_document` refuses
a ``*`` action (or a service-wide ``svc:*``) outright, and a ``*`` resource unless the
statement is marked ``star_resource_reason`` (the place AWS offers no resource-level
permission), so least privilege is enforced where documents are made, not only in review.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VERSION = "2012-10-17"


class PolicyError(ValueError):
    """An IAM statement that breaks the project's least-privilege rules."""


@dataclass(frozen=True)
class Statement:
    """One ``Allow`` (or ``Deny``) statement.

    ``star_resource_reason`` must say why ``Resource: "*"`` is needed (the AWS action has no
    resource-level permission); without it a ``*`` resource is refused.
    """

    sid: str
    actions: Sequence[str]
    resources: Sequence[str]
    effect: str = "Allow"
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    star_resource_reason: str = ""

    def render(self) -> dict[str, Any]:
        if not self.actions:
            raise PolicyError(f"statement {self.sid}: no actions")
        for action in self.actions:
            if action == "*" or action.endswith(":*") or ":" not in action:
                raise PolicyError(
                    f"statement {self.sid}: action {action!r} is not allowed; "
                    "name each action (service:Action)"
                )
        if not self.resources:
            raise PolicyError(f"statement {self.sid}: no resources")
        if "*" in self.resources and not self.star_resource_reason:
            raise PolicyError(
                f"statement {self.sid}: Resource '*' needs star_resource_reason "
                "(only where AWS offers no resource-level permission)"
            )
        rendered: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": self.effect,
            "Action": sorted(set(self.actions)),
            "Resource": _one_or_list(self.resources),
        }
        if self.conditions:
            rendered["Condition"] = {k: dict(v) for k, v in self.conditions.items()}
        return rendered


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    unique = list(dict.fromkeys(values))
    return unique[0] if len(unique) == 1 else unique


def policy_document(statements: Iterable[Statement]) -> dict[str, Any]:
    """A policy document from statements; Sids must be unique."""
    rendered = [s.render() for s in statements]
    sids = [s["Sid"] for s in rendered]
    if len(sids) != len(set(sids)):
        raise PolicyError(f"duplicate statement ids: {sids}")
    return {"Version": VERSION, "Statement": rendered}


def assume_role_policy(
    *,
    services: Sequence[str] = (),
    aws_principals: Sequence[str] = (),
    conditions: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A trust policy for AWS service principals and/or exact AWS principal ARNs."""
    principal: dict[str, Any] = {}
    if services:
        principal["Service"] = _one_or_list(sorted(services))
    if aws_principals:
        principal["AWS"] = _one_or_list(sorted(aws_principals))
    if not principal:
        raise PolicyError("a trust policy needs at least one principal")
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if conditions:
        statement["Condition"] = {k: dict(v) for k, v in conditions.items()}
    return {"Version": VERSION, "Statement": [statement]}


def to_json(document: Mapping[str, Any]) -> str:
    """Stable JSON text for a document (sorted keys) so re-renders never show a diff."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def actions_of(document: Mapping[str, Any]) -> list[str]:
    """Every action named in a document (for tests and policies)."""
    out: list[str] = []
    for statement in document.get("Statement", []):
        action = statement.get("Action", [])
        out.extend([action] if isinstance(action, str) else list(action))
    return out
