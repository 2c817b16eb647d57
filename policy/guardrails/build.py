"""Build and pipeline: ``codebuild-privileged-only-for-image-builds`` and
``codepipeline-artifacts-kms``.

Privileged mode (a Docker daemon with root on the build host) is justified only for a project
that builds container images. The signal, in order:

1. the project's inline buildspec (``source.buildspec`` holding YAML, not a file name) runs an
   image build: ``docker build``, ``docker buildx …``, ``docker image build``, ``docker
   compose build``, ``buildah bud|build``, ``podman build`` or ``nerdctl build`` on a line that
   is not a comment;
2. otherwise (a buildspec file in the source repository, which the pack cannot read) the
   project declares it with a tag ``builds-images = "true"`` (tag keys configurable).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._buildspec import is_inline_buildspec
from ._core import GuardrailPolicy, Settings, Subject, as_list, as_mapping, as_str, is_true
from .secrets import CODEBUILD_PROJECT

PIPELINE = "aws:codepipeline/pipeline:Pipeline"
DEFAULT_IMAGE_BUILD_TAG_KEYS = ["builds-images", "dotnet-delivery:builds-images"]

_IMAGE_BUILD_RE = re.compile(
    r"\b(?:docker\s+(?:buildx\b|build\b|image\s+build\b|compose\s+build\b)"
    r"|buildah\s+(?:bud|build)\b|podman\s+build\b|nerdctl\s+build\b)"
)


def builds_images(buildspec: str) -> bool:
    """True when a (non-comment) line of the buildspec runs a container image build."""
    for line in buildspec.splitlines():
        text = line.strip().lstrip("-").strip()
        if text.startswith("#"):
            continue
        if _IMAGE_BUILD_RE.search(text):
            return True
    return False


def check_privileged(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    environment = as_mapping(props.get("environment"))
    if environment is None or not is_true(environment.get("privilegedMode")):
        return
    tags = as_mapping(props.get("tags"))
    if tags is not None:
        for key in settings.strings("imageBuildTagKeys"):
            if key in tags and is_true(tags[key]):
                return
    source = as_mapping(props.get("source"))
    buildspec = as_str(source.get("buildspec")) if source else None
    fix = (
        "Fix: set environment.privilegedMode = false; if this project does build images, run "
        "the build from an inline buildspec or tag the project builds-images = 'true'."
    )
    if buildspec and is_inline_buildspec(buildspec):
        if builds_images(buildspec):
            return
        yield (
            f"{subject.label}: privileged mode is on but its buildspec builds no container "
            f"image (no docker build/buildx, buildah, podman or nerdctl build). {fix}"
        )
        return
    shown = f"the file '{buildspec}'" if buildspec else "the source's buildspec.yml"
    yield (
        f"{subject.label}: privileged mode is on and its buildspec is {shown}, which the policy "
        f"cannot inspect, and the project is not tagged as building images. {fix}"
    )


CODEBUILD_PRIVILEGED_ONLY_FOR_IMAGE_BUILDS = GuardrailPolicy(
    name="codebuild-privileged-only-for-image-builds",
    display_name="CodeBuild privileged mode only for image builds",
    description=(
        "CodeBuild projects run privileged (Docker daemon, root on the build host) only when "
        "they build container images."
    ),
    resource_types=(CODEBUILD_PROJECT,),
    check=check_privileged,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps="Turn privilegedMode off for projects that do not build images.",
    config_properties={
        "imageBuildTagKeys": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": (
                "Tag keys that, set to 'true', declare that a project with a buildspec file "
                "builds images."
            ),
            "default": DEFAULT_IMAGE_BUILD_TAG_KEYS,
        }
    },
)


def _aws_managed(key_id: str) -> bool:
    return "alias/aws/" in key_id


def check_pipeline_kms(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    stores = [s for s in (as_mapping(x) for x in as_list(props.get("artifactStores"))) if s]
    fix = (
        "Fix: set artifactStores[].encryptionKey = {type: 'KMS', id: <customer managed key "
        "ARN>} and let the pipeline, build and deploy roles use that key."
    )
    if not stores:
        yield f"{subject.label}: has no artifact store. {fix}"
        return
    for store in stores:
        where = f"artifact store '{as_str(store.get('location')) or '?'}'"
        region = as_str(store.get("region"))
        if region:
            where += f" ({region})"
        key = as_mapping(store.get("encryptionKey"))
        if key is None:
            yield (
                f"{subject.label}: {where} has no encryptionKey, so artifacts use the AWS "
                f"managed aws/s3 key, which other accounts cannot use. {fix}"
            )
            continue
        kind = (as_str(key.get("type")) or "").upper()
        key_id = as_str(key.get("id")) or ""
        if kind != "KMS" or not key_id:
            yield f"{subject.label}: {where} encryptionKey is not a KMS key with an id. {fix}"
        elif _aws_managed(key_id):
            yield f"{subject.label}: {where} uses the AWS managed key '{key_id}'. {fix}"


CODEPIPELINE_ARTIFACTS_KMS = GuardrailPolicy(
    name="codepipeline-artifacts-kms",
    display_name="Pipeline artifacts use a customer managed KMS key",
    description=(
        "Every CodePipeline artifact store is encrypted with a customer managed KMS key (needed "
        "for cross-account deploys and for key-policy control of who reads artifacts)."
    ),
    resource_types=(PIPELINE,),
    check=check_pipeline_kms,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps="artifactStores[].encryptionKey {type: KMS, id: <customer managed key>}.",
)
