"""Whole-program checks over the four example stacks: cost tags everywhere, clean workflows."""

from __future__ import annotations

import functools
import importlib
import inspect
import keyword
import subprocess
from pathlib import Path

import pytest

from components import tags
from components.testing import Recording, cached_render
from components.testing.engine import PROJECT_ROOT
from components.testing.mocks import split_type

STACKS = ("tooling", "dev", "stage", "prod")


@functools.cache
def rendered(stack: str) -> Recording:
    return cached_render(stack)  # shared with other modules


@functools.cache
def takes_tags(token: str) -> bool:
    """The provider's own knowledge: does this resource type's constructor take ``tags``?"""
    package, module, typ = split_type(token)
    if package != "aws":
        return False
    # Python keywords get a trailing underscore in the SDK (``lambda`` → ``lambda_``).
    python_module = f"{module}_" if keyword.iskeyword(module) else module
    cls = getattr(importlib.import_module(f"pulumi_aws.{python_module}"), typ)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_takes_tags_reads_the_provider() -> None:
    assert takes_tags("aws:ecs/service:Service")
    assert not takes_tags("aws:iam/rolePolicy:RolePolicy")
    assert takes_tags("aws:ecr/repository:Repository")


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_four_tags(stack: str) -> None:
    rec = rendered(stack)
    checked = 0
    for res in rec:
        if not res.custom or not takes_tags(res.type):
            continue
        checked += 1
        missing = tags.missing_required(res.inputs.get("tags"))
        assert not missing, f"{res.type} {res.name} lacks {missing}"
        expected_env = "tooling" if stack == "tooling" else stack
        assert res.inputs["tags"]["Environment"] == expected_env
        assert res.inputs["tags"]["Application"] == "orders-api"
    assert checked >= 1


def test_workflows_pass_actionlint() -> None:
    workflows = sorted((PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
    assert {p.name for p in workflows} >= {"pull-request.yml", "pulumi-preview.yml"}
    actionlint = Path(PROJECT_ROOT / ".venv" / "bin" / "actionlint")
    result = subprocess.run(
        [
            str(actionlint),
            "-shellcheck",
            str(PROJECT_ROOT / ".venv/bin/shellcheck"),
            *map(str, workflows),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pull_request_workflow_runs_offline_previews_and_posts_markdown() -> None:
    text = (PROJECT_ROOT / ".github/workflows/pull-request.yml").read_text()
    assert "bash .ci/run" in text
    for stack in STACKS:
        assert stack in text
    assert "--markdown" in text and "gh pr comment" in text
    assert "aws-actions" not in text  # no cloud credentials in PRs


def test_real_preview_workflow_uses_oidc_and_the_policy_pack() -> None:
    text = (PROJECT_ROOT / ".github/workflows/pulumi-preview.yml").read_text()
    assert "id-token: write" in text
    assert "role-to-assume: ${{ vars[matrix.role] }}" in text
    assert "policyPacks: policy" in text
    assert "pulumi/actions@" in text
