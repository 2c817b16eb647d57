"""Corpus tests: ``ecs-image-digest-pinned`` and ``no-latest-image-tag``."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.testing.policy_runner import UNKNOWN, Violation, evaluate, evaluate_report
from policy.guardrails.images import (
    DEFAULT_RELEASE_TAG_PATTERN,
    filter_covers_release_tags,
    latest_problem,
    parse_image_ref,
    pinning_problem,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
REPO = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/orders-api"
PINNED = f"{REPO}@{DIGEST}"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
LAMBDA = "aws:lambda/function:Function"


def resource(kind: str, inputs: dict[str, Any], name: str = "subject") -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:dev::dotnet-delivery::{kind}::{name}",
        "type": kind,
        "name": name,
        "inputs": inputs,
    }


def task(*images: str, **extra: Any) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return resource(
        TASK, {"family": "orders", "containerDefinitions": json.dumps(containers), **extra}
    )


def found(resources: list[dict[str, Any]], policy: str, **kw: Any) -> list[Violation]:
    return [v for v in evaluate(resources, **kw) if v.policy == policy]


# --------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "name", "tag", "digest"),
    [
        ("nginx", "nginx", None, None),
        ("nginx:1.25", "nginx", "1.25", None),
        ("registry:5000/app", "registry:5000/app", None, None),
        ("registry:5000/app:2.0", "registry:5000/app", "2.0", None),
        ("localhost:5000/team/app@" + DIGEST, "localhost:5000/team/app", None, DIGEST),
        (f"{REPO}:1.0.0@{DIGEST}", REPO, "1.0.0", DIGEST),
        (" app:1 ", "app", "1", None),
    ],
)
def test_parse_image_ref_splits_registry_port_tag_and_digest(
    ref: str, name: str, tag: str | None, digest: str | None
) -> None:
    parsed = parse_image_ref(ref)
    assert (parsed.name, parsed.tag, parsed.digest) == (name, tag, digest)


_component = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(
    host=st.one_of(st.none(), st.from_regex(r"[a-z]{1,6}\.[a-z]{2,3}", fullmatch=True)),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.lists(_component, min_size=1, max_size=3),
    tag=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True)),
    digest=st.one_of(st.none(), st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)),
)
def test_parse_image_ref_round_trips(
    host: str | None, port: int | None, path: list[str], tag: str | None, digest: str | None
) -> None:
    name = "/".join(path)
    if host:
        name = f"{host}{':' + str(port) if port else ''}/{name}"
    ref = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    parsed = parse_image_ref(ref)
    assert (parsed.name, parsed.tag, parsed.digest) == (name, tag, digest)
    assert (pinning_problem(ref) is None) == (digest is not None)


# --------------------------------------------------------------------------------------
# ecs-image-digest-pinned
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "image",
    [
        PINNED,
        f"{REPO}:1.8.0-build.247-git.a1b2c3d4e5f6@{DIGEST}",
        f"registry.example.com:5000/app@{DIGEST}",
        f"public.ecr.aws/docker/library/nginx:1.27@{DIGEST}",
    ],
)
def test_pinned_images_pass(image: str) -> None:
    assert found([task(image)], "ecs-image-digest-pinned") == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{REPO}:1.8.0", "is not pinned by digest"),
        ("registry.example.com:5000/app", "is not pinned by digest"),
        (f"{REPO}@sha256:" + "a" * 63, "malformed digest"),
        (f"{REPO}@sha256:" + "A" * 64, "malformed digest"),
        (f"{REPO}@sha256:" + "a" * 65, "malformed digest"),
        (f"{REPO}@sha512:" + "a" * 128, "only sha256 digests"),
        (f"@{DIGEST}", "no valid repository name"),
        # Whitespace: ECS would not pull these as written (the admission hook refuses them too).
        (f"{REPO}\n@{DIGEST}", "contains whitespace"),
        (f" {REPO}@{DIGEST}", "contains whitespace"),
        (f"{REPO}@{DIGEST}\n", "contains whitespace"),
    ],
)
def test_unpinned_or_malformed_images_fail(image: str, expected: str) -> None:
    violations = found([task(PINNED, image)], "ecs-image-digest-pinned")
    assert len(violations) == 1
    v = violations[0]
    assert v.enforcement_level == "mandatory"
    assert expected in v.message
    assert "container 'c1'" in v.message and "'subject'" in v.message
    assert "Fix:" in v.message
    assert (
        v.urn == "urn:pulumi:dev::dotnet-delivery::aws:ecs/taskDefinition:TaskDefinition::subject"
    )


def test_container_without_image_and_broken_json_are_reported() -> None:
    no_image = resource(TASK, {"containerDefinitions": json.dumps([{"name": "x"}])})
    broken = resource(TASK, {"containerDefinitions": "[{not json"}, name="broken")
    messages = [v.message for v in found([no_image, broken], "ecs-image-digest-pinned")]
    assert any("container 'x' has no image" in m for m in messages)
    assert any("'broken'" in m and "not valid JSON" in m for m in messages)


def test_lambda_image_functions_must_be_pinned_and_zip_functions_are_ignored() -> None:
    good = resource(LAMBDA, {"packageType": "Image", "imageUri": PINNED}, "good")
    bad = resource(LAMBDA, {"packageType": "Image", "imageUri": f"{REPO}:1.0.0"}, "bad")
    zipped = resource(LAMBDA, {"packageType": "Zip", "handler": "index.handler"}, "zip")
    violations = found([good, bad, zipped], "ecs-image-digest-pinned")
    assert [v.urn.rsplit("::", 1)[-1] for v in violations if v.urn] == ["bad"]
    assert "imageUri image" in violations[0].message


def test_unknown_container_definitions_are_not_applicable_then_enforced_once_known() -> None:
    preview = evaluate_report([resource(TASK, {"containerDefinitions": UNKNOWN})])
    assert [v for v in preview.violations if v.policy == "ecs-image-digest-pinned"] == []
    reasons = [n for n in preview.not_applicable if n.policy == "ecs-image-digest-pinned"]
    assert reasons and "containerDefinitions" in reasons[0].reason
    assert found([task(f"{REPO}:1.0")], "ecs-image-digest-pinned")


def test_unknown_lambda_image_uri_is_not_applicable() -> None:
    report = evaluate_report([resource(LAMBDA, {"packageType": "Image", "imageUri": UNKNOWN})])
    assert not [v for v in report.violations if v.policy == "ecs-image-digest-pinned"]
    assert any(n.policy == "ecs-image-digest-pinned" for n in report.not_applicable)


# --------------------------------------------------------------------------------------
# no-latest-image-tag
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "bad"),
    [
        ("nginx", True),
        ("nginx:latest", True),
        (f"nginx:latest@{DIGEST}", True),
        ("registry:5000/app", True),
        ("registry:5000/app:latest", True),
        ("app:LATEST", True),
        ("registry:5000/app:1.0.0", False),
        (f"app@{DIGEST}", False),
        ("app:latest-build", False),
        ("app:1.8.0-build.247-git.a1b2c3d4e5f6", False),
    ],
)
def test_latest_detection(ref: str, bad: bool) -> None:
    assert (latest_problem(ref, frozenset({"latest"})) is not None) is bad


def test_task_definition_with_latest_even_with_digest_fails() -> None:
    violations = found([task(f"{REPO}:latest@{DIGEST}")], "no-latest-image-tag")
    assert len(violations) == 1
    assert "even though it also carries a digest" in violations[0].message


def test_docker_build_image_tags_and_index_tag() -> None:
    image = resource(
        "docker-build:index:Image",
        {"tags": [f"{REPO}:1.0.0-build.1-git.abcdef123456", f"{REPO}:latest"], "push": True},
        "image",
    )
    index = resource("docker-build:index:Index", {"tag": REPO, "sources": [PINNED]}, "index")
    good_index = resource("docker-build:index:Index", {"tag": f"{REPO}:1.0.0"}, "good-index")
    violations = found([image, index, good_index], "no-latest-image-tag")
    assert {v.urn.rsplit("::", 1)[-1] for v in violations if v.urn} == {"image", "index"}
    by_name = {v.urn.rsplit("::", 1)[-1]: v.message for v in violations if v.urn}
    assert "uses the tag 'latest'" in by_name["image"]
    assert "neither a tag nor a digest" in by_name["index"]


def test_forbidden_tags_are_configurable() -> None:
    image = resource("docker-build:index:Image", {"tags": [f"{REPO}:stable"]})
    assert found([image], "no-latest-image-tag") == []
    config = {"no-latest-image-tag": {"forbiddenTags": ["latest", "stable"]}}
    assert found([image], "no-latest-image-tag", config=config)


ECR = "aws:ecr/repository:Repository"


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ({}, "not set (AWS default MUTABLE)"),
        ({"imageTagMutability": "MUTABLE"}, "imageTagMutability is MUTABLE"),
        (
            {
                "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filter": "1.*", "filterType": "WILDCARD"}],
            },
            "MUTABLE_WITH_EXCLUSION",
        ),
        (
            {
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filter": "*", "filterType": "WILDCARD"}],
            },
            "exclusion filter '*'",
        ),
        (
            {
                "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [
                    {"filter": "cache-*", "filterType": "WILDCARD"},
                    {"filter": "1.8.*", "filterType": "WILDCARD"},
                ],
            },
            "exclusion filter '1.8.*'",
        ),
    ],
)
def test_mutable_ecr_repositories_fail(inputs: dict[str, Any], fragment: str) -> None:
    violations = found([resource(ECR, inputs)], "no-latest-image-tag")
    assert len(violations) == 1
    assert fragment in violations[0].message


@pytest.mark.parametrize(
    "inputs",
    [
        {"imageTagMutability": "IMMUTABLE"},
        {
            "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [
                {"filter": "latest", "filterType": "WILDCARD"},
                {"filter": "cache-*", "filterType": "WILDCARD"},
                {"filter": "dev-*-arm64", "filterType": "WILDCARD"},
            ],
        },
        {
            "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [{"filter": "*", "filterType": "WILDCARD"}],
        },
    ],
)
def test_immutable_ecr_repositories_pass(inputs: dict[str, Any]) -> None:
    assert found([resource(ECR, inputs)], "no-latest-image-tag") == []


@pytest.mark.parametrize(
    ("tag_filter", "covers"),
    [
        ("*", True),
        ("1.*", True),
        ("1", False),
        ("1.8.0", True),
        ("v*", True),
        ("*-cache", True),
        ("1.8.0-*", True),
        ("1.8.0-build.*", True),
        ("01*", False),
        ("latest", False),
        ("dev-*", False),
        ("cache*", False),
        ("sha-*", False),
        ("pr-*-*", False),
    ],
)
def test_exclusion_filter_coverage(tag_filter: str, covers: bool) -> None:
    release = re.compile(DEFAULT_RELEASE_TAG_PATTERN)
    example = filter_covers_release_tags(tag_filter, release)
    assert (example is not None) is covers
    if example is not None:
        assert release.fullmatch(example)


def test_release_tag_pattern_is_configurable_and_validated() -> None:
    repo = resource(
        ECR,
        {
            "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": [{"filter": "rel-*", "filterType": "WILDCARD"}],
        },
    )
    assert found([repo], "no-latest-image-tag") == []
    config = {"no-latest-image-tag": {"releaseTagPattern": r"rel-\d+"}}
    assert found([repo], "no-latest-image-tag", config=config)
    with pytest.raises(ValueError, match=r"releaseTagPattern.*not a regular expression"):
        evaluate([repo], config={"no-latest-image-tag": {"releaseTagPattern": "("}})
