"""Image references: ``ecs-image-digest-pinned`` and ``no-latest-image-tag``.

An image reference is ``[registry[:port]/]path[:tag][@digest]``. The tag lives in the last
path component only, so ``registry:5000/app`` has no tag, and ``app:1.2@sha256:…`` has
both. A reference with neither a tag nor a digest means ``latest`` to every container
runtime, so it counts as ``latest``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import GuardrailPolicy, Settings, Subject, as_list, as_mapping, as_str

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
DOCKER_BUILD_IMAGE = "docker-build:index:Image"
DOCKER_BUILD_INDEX = "docker-build:index:Index"
DOCKER_IMAGE = "docker:index/image:Image"
ECR_REPOSITORY = "aws:ecr/repository:Repository"

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$")

# SemVer 2.0.0 (semver.org's expression) with an optional leading "v": the release tags a
# mutability exclusion filter must never make mutable.
DEFAULT_RELEASE_TAG_PATTERN = (
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

# Completions tried after a filter's literal prefix to find a release tag that starts with
# it: one for every place a prefix can stop inside a SemVer version (inside or after each
# number, after '-', '.', '+', inside an identifier) plus a leading 'v'.
_COMPLETIONS = (
    "",
    "0",
    "a",
    ".0",
    "0.0",
    ".0.0",
    "0.0.0",
    "1.0.0",
    "-a",
    ".0-a",
    "0.0-a",
    ".0.0-a",
)


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference."""

    raw: str
    name: str
    tag: str | None
    digest: str | None


def parse_image_ref(ref: str) -> ImageRef:
    """Split ``ref`` into name, tag and digest (a registry port is not a tag)."""
    text = ref.strip()
    name, at, digest = text.partition("@")
    slash = name.rfind("/")
    last = name[slash + 1 :]
    colon = last.rfind(":")
    tag: str | None = None
    if colon != -1:
        tag = last[colon + 1 :]
        name = name[: slash + 1 + colon]
    return ImageRef(raw=text, name=name, tag=tag, digest=digest if at else None)


def pinning_problem(ref: str) -> str | None:
    """Why ``ref`` is not ``name[:tag]@sha256:<64 lowercase hex>``, or ``None`` if it is."""
    if any(ch.isspace() for ch in ref):
        return f"image {ref!r} contains whitespace; a pinned reference is exactly name[:tag]@digest"
    image = parse_image_ref(ref)
    if not image.name or not _NAME_RE.match(image.name):
        return f"image '{ref}' has no valid repository name"
    if image.digest is None:
        return f"image '{ref}' is not pinned by digest"
    if not image.digest.startswith("sha256:"):
        return f"image '{ref}' uses digest '{image.digest}'; only sha256 digests are accepted"
    if not DIGEST_RE.match(image.digest):
        return (
            f"image '{ref}' has malformed digest '{image.digest}' "
            "(a sha256 digest is exactly 64 lowercase hex characters)"
        )
    if image.tag is not None and image.tag == "":
        return f"image '{ref}' has an empty tag before the digest"
    return None


def latest_problem(ref: str, forbidden: frozenset[str]) -> str | None:
    """Why ``ref`` names (or implies) a forbidden tag such as ``latest``, else ``None``."""
    image = parse_image_ref(ref)
    if image.tag is None and image.digest is None:
        return f"image '{ref}' has neither a tag nor a digest, which means 'latest'"
    if image.tag is not None and image.tag.lower() in forbidden:
        extra = " even though it also carries a digest" if image.digest else ""
        return f"image '{ref}' uses the tag '{image.tag}'{extra}"
    return None


@functools.lru_cache(maxsize=4096)
def _parse_container_definitions(text: str) -> tuple[Mapping[str, Any], ...] | str:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return f"containerDefinitions is not valid JSON ({exc})"
    if not isinstance(doc, list):
        return "containerDefinitions must be a JSON array of container definitions"
    return tuple(c for c in doc if isinstance(c, dict))


def container_definitions(props: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | str:
    """The task definition's containers (parsed once per distinct JSON text), or an error.

    The returned mappings are shared between policies: read them, never change them.
    """
    raw = props.get("containerDefinitions")
    if raw is None:
        return ()
    if isinstance(raw, str):
        return _parse_container_definitions(raw)
    items = as_list(raw)
    return tuple(c for c in (as_mapping(i) for i in items) if c is not None)


def lambda_image(props: Mapping[str, Any]) -> str | None:
    """The image URI of a Lambda function packaged as an image, else ``None``."""
    if as_str(props.get("packageType")) != "Image":
        return None
    return as_str(props.get("imageUri")) or ""


# --------------------------------------------------------------------------------------
# ecs-image-digest-pinned
# --------------------------------------------------------------------------------------
_PIN_FIX = (
    "Fix: deploy the digest the build pushed, as '<repository>@sha256:<64 hex>' "
    "(for example from imageDetail.json or the docker-build Image's 'ref' output)."
)


def check_digest_pinned(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    if subject.type == TASK_DEFINITION:
        containers = container_definitions(props)
        if isinstance(containers, str):
            yield f"{subject.label}: {containers}. Fix: render it with json.dumps."
            return
        for container in containers:
            cname = container.get("name", "?")
            image = container.get("image")
            if not isinstance(image, str) or not image.strip():
                yield (
                    f"{subject.label}: container '{cname}' has no image. "
                    f"Fix: set 'image' to a digest-pinned reference. {_PIN_FIX}"
                )
                continue
            problem = pinning_problem(image)
            if problem:
                yield f"{subject.label}: container '{cname}' {problem}. {_PIN_FIX}"
    elif subject.type == LAMBDA_FUNCTION:
        image = lambda_image(props)
        if image is None:
            return
        if not image:
            yield f"{subject.label}: packageType is Image but imageUri is empty. {_PIN_FIX}"
            return
        problem = pinning_problem(image)
        if problem:
            yield f"{subject.label}: imageUri {problem}. {_PIN_FIX}"


ECS_IMAGE_DIGEST_PINNED = GuardrailPolicy(
    name="ecs-image-digest-pinned",
    display_name="Container images are pinned by digest",
    description=(
        "Every ECS container image and Lambda container image is pinned by digest "
        "(name[:tag]@sha256:<64 lowercase hex>), so what runs is exactly what was built, "
        "scanned and promoted."
    ),
    resource_types=(TASK_DEFINITION, LAMBDA_FUNCTION),
    check=check_digest_pinned,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation_steps=_PIN_FIX,
)


# --------------------------------------------------------------------------------------
# no-latest-image-tag
# --------------------------------------------------------------------------------------
_LATEST_FIX = (
    "Fix: tag images with the release tag (SemVer-build-git, e.g. "
    "1.8.0-build.247-git.a1b2c3d4e5f6) and deploy by digest; never 'latest'."
)


@functools.lru_cache(maxsize=256)
def _release_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def filter_covers_release_tags(tag_filter: str, release: re.Pattern[str]) -> str | None:
    """A release tag the ECR wildcard ``tag_filter`` matches, or ``None``.

    A filter without ``*`` matches only itself. A filter with ``*`` is treated as covering
    release tags when a release tag starts with its text before the first ``*``
    (conservative: ``*-cache`` covers ``1.0.0-cache``, ``dev-*`` covers nothing).
    """
    if "*" not in tag_filter:
        return tag_filter if release.fullmatch(tag_filter) else None
    prefix = tag_filter.split("*", 1)[0]
    for completion in _COMPLETIONS:
        candidate = prefix + completion
        if release.fullmatch(candidate):
            return candidate
    return None


def _check_repository(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    raw = props.get("imageTagMutability")
    mutability = raw.upper() if isinstance(raw, str) and raw else "MUTABLE"
    fix = (
        "Fix: set imageTagMutability to IMMUTABLE (or IMMUTABLE_WITH_EXCLUSION with filters "
        "that only match scratch tags such as 'cache-*')."
    )
    if mutability == "IMMUTABLE":
        return
    filters = [
        f
        for f in (
            as_str(m.get("filter"))
            for m in (
                as_mapping(x) for x in as_list(props.get("imageTagMutabilityExclusionFilters"))
            )
            if m is not None
        )
        if f
    ]
    if mutability == "IMMUTABLE_WITH_EXCLUSION":
        pattern = str(settings["releaseTagPattern"] or DEFAULT_RELEASE_TAG_PATTERN)
        try:
            release = _release_re(pattern)
        except re.error as exc:
            yield (
                f"{subject.label}: cannot judge exclusion filters: the policy config "
                f"releaseTagPattern {pattern!r} is not a regular expression ({exc}). "
                "Fix: correct releaseTagPattern in the policy pack config."
            )
            return
        for tag_filter in filters:
            example = filter_covers_release_tags(tag_filter, release)
            if example is not None:
                yield (
                    f"{subject.label}: exclusion filter '{tag_filter}' makes release tags "
                    f"mutable (it matches '{example}'). Fix: narrow it to a prefix no release "
                    "tag starts with, e.g. 'cache-*' or 'dev-*'."
                )
        return
    if mutability == "MUTABLE_WITH_EXCLUSION" and any(set(f) == {"*"} for f in filters):
        return  # every tag is excluded from mutability: effectively immutable
    shown = "not set (AWS default MUTABLE)" if not isinstance(raw, str) or not raw else raw
    yield f"{subject.label}: imageTagMutability is {shown}, so a tag can be moved. {fix}"


def check_no_latest(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    forbidden = frozenset(t.lower() for t in settings.strings("forbiddenTags")) or frozenset(
        {"latest"}
    )
    if subject.type == ECR_REPOSITORY:
        yield from _check_repository(props, settings, subject)
        return
    refs: list[tuple[str, str]] = []  # (where, reference)
    if subject.type == TASK_DEFINITION:
        containers = container_definitions(props)
        if isinstance(containers, str):
            return  # reported by ecs-image-digest-pinned
        for container in containers:
            image = container.get("image")
            if isinstance(image, str) and image.strip():
                refs.append((f"container '{container.get('name', '?')}'", image))
    elif subject.type == LAMBDA_FUNCTION:
        image = lambda_image(props)
        if image:
            refs.append(("imageUri", image))
    elif subject.type == DOCKER_BUILD_IMAGE:
        for tag in as_list(props.get("tags")):
            if isinstance(tag, str) and tag.strip():
                refs.append(("tags", tag))
    elif subject.type == DOCKER_BUILD_INDEX:
        tag = as_str(props.get("tag"))
        if tag:
            refs.append(("tag", tag))
    elif subject.type == DOCKER_IMAGE:
        name = as_str(props.get("imageName"))
        if name:
            refs.append(("imageName", name))
    for where, ref in refs:
        problem = latest_problem(ref, forbidden)
        if problem:
            yield f"{subject.label}: {where} {problem}. {_LATEST_FIX}"


NO_LATEST_IMAGE_TAG = GuardrailPolicy(
    name="no-latest-image-tag",
    display_name="No 'latest' image tags; release tags are immutable",
    description=(
        "No image reference (ECS task definitions, Lambda images, docker-build Image tags and "
        "Index tag) names the tag 'latest' (an untagged, undigested reference is 'latest'), and "
        "ECR repositories keep release tags immutable."
    ),
    resource_types=(
        TASK_DEFINITION,
        LAMBDA_FUNCTION,
        DOCKER_BUILD_IMAGE,
        DOCKER_BUILD_INDEX,
        DOCKER_IMAGE,
        ECR_REPOSITORY,
    ),
    check=check_no_latest,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=_LATEST_FIX,
    config_properties={
        "forbiddenTags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "Tags never allowed (compared case-insensitively).",
            "default": ["latest"],
        },
        "releaseTagPattern": {
            "type": "string",
            "minLength": 1,
            "format": "regex",
            "description": (
                "Regular expression for release tags; an ECR exclusion filter must not match "
                "any of them. Default: SemVer 2.0 with an optional leading 'v'."
            ),
            "default": DEFAULT_RELEASE_TAG_PATTERN,
        },
    },
)
