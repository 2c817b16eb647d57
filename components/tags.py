"""The single source of resource tags.

Every taggable resource carries the four cost-governance tags ``Application``,
``Environment``, ``Owner`` and ``CostCenter`` (AWS Budgets filter on them; see the budget in
the environment stacks). Components receive the mapping from :func:`standard_tags` and pass
it to every child that takes ``tags``; :func:`with_name` adds a ``Name`` for the console.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REQUIRED_TAG_KEYS: tuple[str, ...] = ("Application", "Environment", "Owner", "CostCenter")
#: AWS tag limits: keys ≤ 128, values ≤ 256, these characters (plus Unicode letters).
_TAG_VALUE_RE = re.compile(r"^[\w\s+=.:/@-]{0,256}$")
_TAG_KEY_RE = re.compile(r"^(?!aws:)[\w\s+=.:/@-]{1,128}$")


def standard_tags(
    *,
    application: str,
    environment: str,
    owner: str,
    cost_center: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The four required tags (+ validated extras). Extras never override the four."""
    tags = dict(extra or {})
    for key, value in tags.items():
        if not _TAG_KEY_RE.match(key):
            raise ValueError(f"tag key {key!r} is not a valid AWS tag key")
        if not _TAG_VALUE_RE.match(value):
            raise ValueError(f"tag {key}={value!r} is not a valid AWS tag value")
    required = {
        "Application": application,
        "Environment": environment,
        "Owner": owner,
        "CostCenter": cost_center,
    }
    for key, value in required.items():
        if not value or not _TAG_VALUE_RE.match(value):
            raise ValueError(f"tag {key}={value!r} is not a valid AWS tag value")
    tags.update(required)
    return dict(sorted(tags.items()))


def with_name(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """``tags`` plus a ``Name`` tag (shown in the EC2/VPC consoles)."""
    return {**tags, "Name": name}


def missing_required(tags: Mapping[str, str] | None) -> list[str]:
    """The required keys absent from ``tags`` (used by the tag-coverage test)."""
    present = tags or {}
    return [key for key in REQUIRED_TAG_KEYS if not present.get(key)]
