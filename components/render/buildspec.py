"""The DevSecOps buildspec (CodeBuild, version 0.2), rendered from typed settings.

:func:`render_buildspec` turns a frozen :class:`BuildSpecSettings` into a plain ``dict``;
:func:`buildspec_yaml` dumps it (multi-line commands as YAML block scalars). The CodeBuild
component only builds settings and passes the YAML on; nothing here imports Pulumi.

What one build does (role ``single``), phase by phase::

    install    pinned gitleaks + Trivy: download, ``sha256sum -c``, unpack (never ``curl | sh``)
    pre_build  release tag (versioning.shell_function), ECR login, Trivy branch policy,
               gitleaks, ``dotnet restore`` (NuGet cache), vulnerable-package gate
    build      [sonar begin] build, tests (trx + cobertura), [sonar end], image per platform
               (``docker buildx build --load``), Trivy gate + CycloneDX SBOM per platform
    post_build only when CODEBUILD_BUILD_SUCCEEDING=1: push, digest, then the artifacts
               imageDetail.json / imagedefinitions.json / release.json + SBOM

Gates cannot be undone by a later phase. CodeBuild runs ``post_build`` after a failed
``build`` unless told otherwise, and always attempts UPLOAD_ARTIFACTS; so (1) every phase
has ``on-failure: ABORT``, (2) each ``post_build`` command re-checks
``CODEBUILD_BUILD_SUCCEEDING`` before it pushes or writes, (3) the artifact directory is
emptied in ``install`` and only written after the push returned a digest, and (4) the SBOM
is staged in the work directory and copied into the artifacts only after the push. After
any gate failure nothing is pushed and no artifact names an image; the runner tests in
``tests/test_build_runner.py`` show it. ``IMAGE_TAG``/``IMAGE_URI``/``IMAGE_DIGEST``
(exported variables) are empty until the push succeeded.

Roles (:class:`BuildRole`)
--------------------------
``single``               one native platform, pushes ``<repo>:<tag>`` and writes the artifacts.
``build-one-platform``   one platform of a batch: every gate, then pushes the **staging** tag
                         ``<repo>:staging-<build>-<sha12>-<arch>`` (:func:`staging_tag`); writes
                         its SBOM, nothing that names an image.
``join-manifest``        resolves the staging tags of its batch to digests and runs
                         ``docker buildx imagetools create --tag <repo>:<tag> <repo>@<digest>…``:
                         the release tag exists only on the manifest list, pushed once, here;
                         reports its digest; writes the artifacts (and ``platform-<arch>.json``).
``single-with-qemu``     the opt-in fallback: one build registers QEMU (binfmt image pinned by
                         digest), builds and gates every platform, pushes them under staging
                         tags, joins them.
``batch``                the project buildspec of a batch: a ``batch: build-graph:`` with one
                         ``build-one-platform`` task per platform (native x86 and ARM images)
                         and a ``join-manifest`` task depending on all of them.

Why staging tags: the platform builds of a batch run in parallel and each one only knows its
own gates. If the arm64 build fails a gate after the amd64 build pushed, a release-looking
``<tag>-amd64`` would sit in the registry (and in an artifact). A staging tag starts with
``staging-`` (release tags start with a digit), so no release rule, deploy or person takes it
for a release; the repository keeps ``staging-*`` mutable (re-runs of a batch overwrite it)
and no lifecycle rule expires ``staging-*`` images: they are the platform images every
release's manifest list references (whether ECR's lifecycle spares such images is not
documented), and a failed batch's leftover is small. The join only runs when
every platform build succeeded (``depend-on``), and refuses anyway when a staging tag of its
batch is missing.

Every role runs the same commands; the role only sets plain environment variables
(:func:`role_variables`), which the batch graph sets per task. In a batch every build
computes the same tag: the build number is the batch's ``buildBatchNumber`` (read with
``codebuild:BatchGetBuilds`` / ``BatchGetBuildBatches``), not the per-build number.
The pipeline takes its output artifact from the join task (its identifier,
:data:`JOIN_IDENTIFIER`, names the CodePipeline output artifact when artifacts are not
combined).

Trivy policy per branch (:class:`BranchPolicy`, first matching shell pattern wins): by
default feature/dev branches report only, ``main`` fails on CRITICAL, ``release/*`` fails
on HIGH and CRITICAL unless the exceptions file names the CVE with a reason. An empty
branch name gets the strictest configured policy without exceptions (fail closed).

Exceptions file (default ``.trivy-exceptions.json``, JSON because the build image has no
YAML parser guaranteed, Python's ``json`` always)::

    {"exceptions": [
      {"id": "CVE-2024-12345",
       "reason": "System.Foo is not reachable from the service; fix ships in 8.0.9 (SEC-42)",
       "expires": "2026-03-31"}
    ]}

``id`` is a CVE or GHSA id, ``reason`` is required and non-blank, ``expires`` is a date
(YYYY-MM-DD) after which the entry no longer applies. Unknown keys, a missing reason or a
malformed date fail the build. The file is read only where the branch policy allows
exceptions.

Multi-arch: native fan-out or QEMU (text for the README)
--------------------------------------------------------
See :data:`MULTIARCH_NOTES`.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from components.render import versioning
from components.render.ecr import STAGING_TAG_PREFIX

MULTIARCH_NOTES = """\
### Multi-arch images: native fan-out by default, QEMU only as a fallback

The service ships one manifest list (`linux/amd64` + `linux/arm64`) so every environment
can choose x86 or Graviton Fargate tasks with the same digest. There are two ways to build
the arm64 half in CodeBuild:

* **Native fan-out (default).** One CodeBuild *batch*: a build on the x86 image
  `aws/codebuild/amazonlinux-x86_64-standard:5.0` and one on the ARM image
  `aws/codebuild/amazonlinux-aarch64-standard:3.0` (both Amazon Linux 2023, listed in
  "EC2 compute images", https://docs.aws.amazon.com/codebuild/latest/userguide/ec2-compute-images.html)
  run in parallel. Each one runs every gate (tests run on both architectures), builds its
  own platform, scans it with Trivy and only then pushes it under a *staging* tag,
  `staging-<build>-<sha12>-amd64` / `-arm64`, never a release tag: the other platform may
  still fail a gate. A third, small build depends on both (it runs only when both
  succeeded) and runs `docker buildx imagetools create` to publish `<tag>` as a manifest
  list of the two staging digests, then writes imageDetail.json with the manifest-list
  digest. The release tag is pushed once, by the join. `staging-*` tags are mutable (the
  repository's exclusion filters, so a re-run can overwrite them) and are never expired by
  the lifecycle policy: they are the platform images every release's manifest list
  references, and whether ECR's lifecycle spares an image a live manifest list references
  is not documented.
  Wall-clock time is about the slower of the two builds plus a minute for the join; the
  bill is the sum of the build minutes of all three builds.
* **QEMU emulation (opt-in, `single-with-qemu`).** One x86 build registers QEMU with a
  pinned `tonistiigi/binfmt` image and builds both platforms. It needs no batch and no ARM
  environment, but every `RUN` step of the arm64 stage is emulated:
  * Docker's documentation warns that emulation "can be much slower than native builds,
    especially for compute-heavy tasks like compilation and compression or decompression"
    (https://docs.docker.com/build/building/multi-platform/).
  * For .NET it is worse than slow: Microsoft's .NET container guidance shows `dotnet restore`
    hanging under emulation (https://devblogs.microsoft.com/dotnet/improving-multiplatform-container-support/,
    R. Lander, 2023, updated 2024) and the dotnet-docker maintainers state that running .NET
    through QEMU "is not supported for any current version of .NET"
    (https://github.com/dotnet/dotnet-docker/issues/5355).
  * Reported figures: a build whose native images took under 10 minutes took about 3 hours
    once the arm64 half was emulated (https://blog.bernot.io/p/when-quick-emulation-is-slow);
    a CI case study measured emulated arm64 steps at 10-30x native time
    (link-foundation/sandbox, docs/case-studies/issue-7).
  * If emulation is unavoidable, the Dockerfile should cross-compile instead of emulating
    the SDK: `FROM --platform=$BUILDPLATFORM mcr.microsoft.com/dotnet/sdk` and
    `dotnet publish -a $TARGETARCH` (the pattern in the Microsoft post above), so only the
    final, `RUN`-free runtime stage is assembled for the foreign platform.

Trade-off in one line: fan-out costs a second build environment and a join step, and buys
native speed, tests on both architectures and a supported .NET toolchain; QEMU costs
nothing to set up and is the slow, unsupported-for-.NET fallback.
"""

# ---------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------

BUILDSPEC_VERSION = 0.2
X86_STANDARD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
ARM_STANDARD_IMAGE = "aws/codebuild/amazonlinux-aarch64-standard:3.0"
SUPPORTED_PLATFORMS = ("linux/amd64", "linux/arm64")
JOIN_IDENTIFIER = "publish"
OUTPUT_DIR = ".delivery-out"
WORK_DIR = f"{OUTPUT_DIR}/work"
REPORTS_DIR = f"{WORK_DIR}/reports"
TEST_RESULTS_DIR = f"{REPORTS_DIR}/tests"
RELEASE_DIR = f"{OUTPUT_DIR}/release"
EXPORTED_VARIABLES = ("IMAGE_TAG", "IMAGE_URI", "IMAGE_DIGEST")
TRIVY_SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
NUGET_SEVERITIES = ("Low", "Moderate", "High", "Critical")
GITLEAKS_URL = (
    "https://github.com/gitleaks/gitleaks/releases/download/v{version}/"
    "gitleaks_{version}_linux_{arch}.tar.gz"
)
TRIVY_URL = (
    "https://github.com/aquasecurity/trivy/releases/download/v{version}/"
    "trivy_{version}_Linux-{arch}.tar.gz"
)
ECR_REPOSITORY_RE = re.compile(
    r"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9]+([._/-][a-z0-9]+)*$"
)
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+){1,3}([.-][0-9A-Za-z.-]+)?$")
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PATH_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_./-]*$")
_ABS_PATH_RE = re.compile(r"^/[A-Za-z0-9_./-]+$")
_GLOB_RE = re.compile(r"^[A-Za-z0-9_.*?/-]+$")
_BRANCH_PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*/-]+$")
_ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_REPORT_GROUP_RE = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9_-]{1,127}|arn:aws[a-z-]*:codebuild:[a-z0-9-]+:[0-9]{12}:"
    r"report-group/[A-Za-z0-9][A-Za-z0-9_-]{1,127})$"
)
_COMPUTE_RE = re.compile(r"^BUILD_GENERAL1_(SMALL|MEDIUM|LARGE|XLARGE|2XLARGE)$")
_DIGEST_IMAGE_RE = re.compile(r"^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$")
_HTTPS_URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$")


class BuildSpecError(ValueError):
    """Settings that cannot make a safe buildspec; the message names field, value, allowed."""


def _fail(field_name: str, value: object, allowed: str) -> BuildSpecError:
    return BuildSpecError(f"{field_name}: {value!r} is not allowed; {allowed}")


def _check_trivy_severities(field_name: str, values: Sequence[str]) -> None:
    for value in values:
        if value not in TRIVY_SEVERITIES:
            raise _fail(field_name, value, f"use some of {TRIVY_SEVERITIES}")


class BuildRole(StrEnum):
    """What one build does; see the module docstring."""

    SINGLE = "single"
    BUILD_ONE_PLATFORM = "build-one-platform"
    JOIN_MANIFEST = "join-manifest"
    SINGLE_WITH_QEMU = "single-with-qemu"
    BATCH = "batch"


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolDownload:
    """One release archive of a tool for one architecture, pinned by its SHA-256."""

    url: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.url.startswith("https://") or any(c in self.url for c in " '\"$`\\"):
            raise _fail("url", self.url, "use an https:// URL without quotes or spaces")
        if not _SHA256_RE.match(self.sha256):
            raise _fail("sha256", self.sha256, "use 64 lowercase hex characters")


@dataclass(frozen=True)
class PinnedTool:
    """A tool installed from a pinned release archive (``binary`` is its member name)."""

    name: str
    version: str
    amd64: ToolDownload
    arm64: ToolDownload

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise _fail("tool.name", self.name, "use a lowercase tool name")
        if not _VERSION_RE.match(self.version):
            raise _fail(f"{self.name}.version", self.version, "use a release version (8.21.2)")

    @classmethod
    def gitleaks(cls, version: str, *, sha256_amd64: str, sha256_arm64: str) -> PinnedTool:
        """gitleaks from its GitHub release (>= 8.19 for the ``dir`` command)."""
        return cls(
            "gitleaks",
            version,
            ToolDownload(GITLEAKS_URL.format(version=version, arch="x64"), sha256_amd64),
            ToolDownload(GITLEAKS_URL.format(version=version, arch="arm64"), sha256_arm64),
        )

    @classmethod
    def trivy(cls, version: str, *, sha256_amd64: str, sha256_arm64: str) -> PinnedTool:
        """Trivy from its GitHub release."""
        return cls(
            "trivy",
            version,
            ToolDownload(TRIVY_URL.format(version=version, arch="64bit"), sha256_amd64),
            ToolDownload(TRIVY_URL.format(version=version, arch="ARM64"), sha256_arm64),
        )


@dataclass(frozen=True)
class BranchPolicy:
    """Trivy gate for branches matching ``pattern`` (a shell ``case`` pattern).

    ``fail_on`` empty means report only; ``allow_exceptions`` lets the exceptions file
    waive named CVEs.
    """

    pattern: str
    fail_on: tuple[str, ...] = ()
    allow_exceptions: bool = False

    def __post_init__(self) -> None:
        if not _BRANCH_PATTERN_RE.match(self.pattern):
            raise _fail("branch_policies.pattern", self.pattern, "use letters, digits, ./_-*")
        _check_trivy_severities("branch_policies.fail_on", self.fail_on)


DEFAULT_BRANCH_POLICIES: tuple[BranchPolicy, ...] = (
    BranchPolicy("main", ("CRITICAL",)),
    BranchPolicy("release/*", ("HIGH", "CRITICAL"), allow_exceptions=True),
    BranchPolicy("dev", ()),
    BranchPolicy("develop", ()),
    BranchPolicy("feature/*", ()),
)


@dataclass(frozen=True)
class SonarSettings:
    """SonarQube/SonarCloud analysis; the token only ever comes from Secrets Manager."""

    host_url: str
    project_key: str
    token_secret_id: str
    scanner_version: str
    token_json_key: str | None = None
    organization: str | None = None
    wait_for_quality_gate: bool = True

    def __post_init__(self) -> None:
        if not _HTTPS_URL_RE.match(self.host_url):
            raise _fail("sonar.host_url", self.host_url, "use an https:// URL")
        if not re.match(r"^[A-Za-z0-9_.:-]+$", self.project_key):
            raise _fail("sonar.project_key", self.project_key, "use letters, digits, _.:-")
        if not re.match(r"^[A-Za-z0-9/_+=.@:-]+$", self.token_secret_id):
            raise _fail("sonar.token_secret_id", self.token_secret_id, "a secret name or ARN")
        if self.token_json_key is not None and not re.match(
            r"^[A-Za-z0-9_.-]+$", self.token_json_key
        ):
            raise _fail("sonar.token_json_key", self.token_json_key, "use letters, digits, _.-")
        if self.organization is not None and not re.match(r"^[A-Za-z0-9_.-]+$", self.organization):
            raise _fail("sonar.organization", self.organization, "use letters, digits, _.-")
        if not _VERSION_RE.match(self.scanner_version):
            raise _fail("sonar.scanner_version", self.scanner_version, "pin a version (9.0.2)")

    @property
    def secrets_manager_reference(self) -> str:
        """The ``env.secrets-manager`` reference: ``secret-id[:json-key]``."""
        if self.token_json_key:
            return f"{self.token_secret_id}:{self.token_json_key}"
        return self.token_secret_id


@dataclass(frozen=True)
class BuildEnvironment:
    """The CodeBuild environment of one batch task."""

    image: str
    compute_type: str
    environment_type: str

    def __post_init__(self) -> None:
        if not _COMPUTE_RE.match(self.compute_type):
            raise _fail("compute_type", self.compute_type, "use BUILD_GENERAL1_<size>")
        if self.environment_type not in ("LINUX_CONTAINER", "ARM_CONTAINER"):
            raise _fail(
                "environment_type", self.environment_type, "use LINUX_CONTAINER or ARM_CONTAINER"
            )


DEFAULT_ENVIRONMENTS: Mapping[str, BuildEnvironment] = {
    "linux/amd64": BuildEnvironment(X86_STANDARD_IMAGE, "BUILD_GENERAL1_MEDIUM", "LINUX_CONTAINER"),
    "linux/arm64": BuildEnvironment(ARM_STANDARD_IMAGE, "BUILD_GENERAL1_LARGE", "ARM_CONTAINER"),
}
DEFAULT_JOIN_ENVIRONMENT = BuildEnvironment(
    X86_STANDARD_IMAGE, "BUILD_GENERAL1_SMALL", "LINUX_CONTAINER"
)


@dataclass(frozen=True)
class BatchSettings:
    """Environments of the batch graph; platforms not listed use :data:`DEFAULT_ENVIRONMENTS`."""

    environments: tuple[tuple[str, BuildEnvironment], ...] = ()
    join_environment: BuildEnvironment = DEFAULT_JOIN_ENVIRONMENT

    def environment_for(self, platform: str) -> BuildEnvironment:
        for name, environment in self.environments:
            if name == platform:
                return environment
        return DEFAULT_ENVIRONMENTS[platform]


@dataclass(frozen=True)
class BuildSpecSettings:
    """Everything the buildspec needs; the CodeBuild component only fills this in."""

    service_name: str
    solution: str
    test_projects: tuple[str, ...]
    gitleaks: PinnedTool
    trivy: PinnedTool
    dotnet_sdk_version: str = "8.0"
    ecr_repository_url: str | None = None
    region: str | None = None
    role: BuildRole = BuildRole.SINGLE
    platforms: tuple[str, ...] = ("linux/amd64",)
    batch: BatchSettings = field(default_factory=BatchSettings)
    container_name: str | None = None
    dockerfile: str = "Dockerfile"
    docker_context: str = "."
    version_file: str = "VERSION"
    build_configuration: str = "Release"
    branch_policies: tuple[BranchPolicy, ...] = DEFAULT_BRANCH_POLICIES
    other_branches_fail_on: tuple[str, ...] = ()
    branch_variable: str = "BRANCH_NAME"
    trivy_ignore_unfixed: bool = True
    trivy_exceptions_file: str = ".trivy-exceptions.json"
    nuget_fail_severities: tuple[str, ...] = ("High", "Critical")
    restore_locked_mode: bool = False
    sonar: SonarSettings | None = None
    test_report_group: str = "unit-tests"
    coverage_report_group: str = "coverage"
    nuget_cache_path: str = "/root/.nuget/packages"
    tools_dir: str = "/opt/delivery-tools/bin"
    binfmt_image: str | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.service_name):
            raise _fail("service_name", self.service_name, "use lowercase letters, digits, -")
        if self.container_name is not None and not _NAME_RE.match(self.container_name):
            raise _fail("container_name", self.container_name, "use lowercase letters, digits, -")
        for name in (
            "solution",
            "dockerfile",
            "docker_context",
            "version_file",
            "trivy_exceptions_file",
        ):
            value = getattr(self, name)
            if not (value == "." or (_PATH_RE.match(value) and ".." not in value.split("/"))):
                raise _fail(name, value, "use a relative path of letters, digits, ./_- (no ..)")
        if not self.test_projects:
            raise _fail("test_projects", self.test_projects, "name at least one test project glob")
        for pattern in self.test_projects:
            if not _GLOB_RE.match(pattern) or ".." in pattern.split("/"):
                raise _fail("test_projects", pattern, "use a relative glob of letters, ./_-*?")
        if not re.match(r"^[0-9]+\.[0-9]+$", self.dotnet_sdk_version):
            raise _fail("dotnet_sdk_version", self.dotnet_sdk_version, "use major.minor (8.0)")
        if self.ecr_repository_url is not None and not ECR_REPOSITORY_RE.match(
            self.ecr_repository_url
        ):
            raise _fail(
                "ecr_repository_url",
                self.ecr_repository_url,
                "use <account>.dkr.ecr.<region>.amazonaws.com/<name>, or None to read "
                "ECR_REPOSITORY_URI from the project environment",
            )
        if self.region is not None and not re.match(r"^[a-z]{2}(-[a-z]+)+-[0-9]$", self.region):
            raise _fail("region", self.region, "use an AWS region (eu-west-1) or None")
        if not self.platforms or len(set(self.platforms)) != len(self.platforms):
            raise _fail("platforms", self.platforms, "list each platform once")
        for platform in self.platforms:
            if platform not in SUPPORTED_PLATFORMS:
                raise _fail("platforms", platform, f"use one of {SUPPORTED_PLATFORMS}")
        if (
            self.role in (BuildRole.SINGLE, BuildRole.BUILD_ONE_PLATFORM)
            and len(self.platforms) != 1
        ):
            raise _fail(
                "platforms", self.platforms, f"role {self.role.value} builds exactly one platform"
            )
        if self.role is BuildRole.SINGLE_WITH_QEMU and (
            self.binfmt_image is None or not _DIGEST_IMAGE_RE.match(self.binfmt_image)
        ):
            raise _fail(
                "binfmt_image",
                self.binfmt_image,
                "single-with-qemu needs the binfmt image pinned by digest "
                "(tonistiigi/binfmt@sha256:<64 hex>)",
            )
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*$", self.build_configuration):
            raise _fail("build_configuration", self.build_configuration, "use Release or Debug")
        _check_trivy_severities("other_branches_fail_on", self.other_branches_fail_on)
        patterns = [p.pattern for p in self.branch_policies]
        if len(patterns) != len(set(patterns)):
            raise _fail("branch_policies", patterns, "give each pattern once")
        if not _ENV_NAME_RE.match(self.branch_variable):
            raise _fail("branch_variable", self.branch_variable, "use an environment variable name")
        if not self.nuget_fail_severities:
            raise _fail(
                "nuget_fail_severities",
                self.nuget_fail_severities,
                f"name some of {NUGET_SEVERITIES}",
            )
        for severity in self.nuget_fail_severities:
            if severity not in NUGET_SEVERITIES:
                raise _fail("nuget_fail_severities", severity, f"use one of {NUGET_SEVERITIES}")
        for name in ("test_report_group", "coverage_report_group"):
            if not _REPORT_GROUP_RE.match(getattr(self, name)):
                raise _fail(name, getattr(self, name), "use a report group name or ARN")
        if self.test_report_group == self.coverage_report_group:
            raise _fail(
                "coverage_report_group",
                self.coverage_report_group,
                "use a report group different from test_report_group",
            )
        for name in ("nuget_cache_path", "tools_dir"):
            if not _ABS_PATH_RE.match(getattr(self, name)):
                raise _fail(name, getattr(self, name), "use an absolute path of ./_- characters")
        if self.gitleaks.name != "gitleaks" or self.trivy.name != "trivy":
            raise _fail(
                "gitleaks/trivy",
                (self.gitleaks.name, self.trivy.name),
                "pass PinnedTool.gitleaks(...) and PinnedTool.trivy(...)",
            )

    @property
    def container(self) -> str:
        return self.container_name or self.service_name


# ---------------------------------------------------------------------------------------
# Role variables and the batch graph
# ---------------------------------------------------------------------------------------


def _arch(platform: str) -> str:
    return platform.split("/")[1]


def role_variables(
    role: BuildRole, platforms: Sequence[str], *, sonar_here: bool = True
) -> dict[str, str]:
    """The plain environment variables that make the shared commands act as ``role``."""
    joined = " ".join(platforms)
    base = {
        "BUILD_ROLE": role.value,
        "RUN_SOURCE_GATES": "1",
        "RUN_SONAR": "1" if sonar_here else "0",
        "BUILD_PLATFORMS": joined,
        "PUSH_MODE": "arch",
        "MANIFEST_PLATFORMS": "",
        "WRITE_RELEASE": "0",
        "SETUP_QEMU": "0",
        "BATCH_BUILD_NUMBER": "0",
    }
    if role is BuildRole.SINGLE:
        base.update(PUSH_MODE="release", WRITE_RELEASE="1")
    elif role is BuildRole.BUILD_ONE_PLATFORM:
        base.update(BATCH_BUILD_NUMBER="1")
    elif role is BuildRole.JOIN_MANIFEST:
        base.update(
            RUN_SOURCE_GATES="0",
            RUN_SONAR="0",
            BUILD_PLATFORMS="",
            PUSH_MODE="none",
            MANIFEST_PLATFORMS=joined,
            WRITE_RELEASE="1",
            BATCH_BUILD_NUMBER="1",
        )
    elif role is BuildRole.SINGLE_WITH_QEMU:
        base.update(MANIFEST_PLATFORMS=joined, WRITE_RELEASE="1", SETUP_QEMU="1")
    else:
        raise _fail("role", role.value, "role_variables is for the roles of one build")
    return base


def staging_tag(build_number: int, git_sha: str, platform: str) -> str:
    """The tag a per-platform image is pushed under before the join (shell: STAGING_TAG_STEM).

    ``staging-<build number>-<first 12 hex of the commit, lowercase>-<arch>``, e.g.
    ``staging-42-a1b2c3d4e5f6-arm64``: at most 36 characters whatever the version (a release
    tag may already use all 128), and it starts with a letter, so it can never be taken for a
    release tag (those start with a digit).
    """
    versioning.image_tag("0.0.0", build_number, git_sha)  # same checks as the release tag
    if platform not in SUPPORTED_PLATFORMS:
        raise _fail("platform", platform, f"use one of {SUPPORTED_PLATFORMS}")
    sha = git_sha.lower()[: versioning.SHA_LENGTH]
    return f"{STAGING_TAG_PREFIX}{build_number}-{sha}-{_arch(platform)}"


def platform_identifier(platform: str) -> str:
    """The batch task identifier of a platform build (``build_amd64``)."""
    return f"build_{_arch(platform)}"


def render_batch_graph(settings: BuildSpecSettings) -> dict[str, Any]:
    """The ``batch:`` section: one native build per platform, then the manifest join.

    Every task runs with ``privileged-mode`` (Docker); a platform task's variables make it a
    ``build-one-platform`` build, the join task (:data:`JOIN_IDENTIFIER`) depends on all of
    them and runs ``join-manifest``. Sonar runs in the first platform build only.
    """
    tasks: list[dict[str, Any]] = []
    for index, platform in enumerate(settings.platforms):
        environment = settings.batch.environment_for(platform)
        tasks.append(
            {
                "identifier": platform_identifier(platform),
                "env": {
                    "type": environment.environment_type,
                    "image": environment.image,
                    "compute-type": environment.compute_type,
                    "privileged-mode": True,
                    "variables": role_variables(
                        BuildRole.BUILD_ONE_PLATFORM, [platform], sonar_here=index == 0
                    ),
                },
                "ignore-failure": False,
            }
        )
    join = settings.batch.join_environment
    tasks.append(
        {
            "identifier": JOIN_IDENTIFIER,
            "depend-on": [platform_identifier(p) for p in settings.platforms],
            "env": {
                "type": join.environment_type,
                "image": join.image,
                "compute-type": join.compute_type,
                "privileged-mode": True,
                "variables": role_variables(BuildRole.JOIN_MANIFEST, settings.platforms),
            },
            "ignore-failure": False,
        }
    )
    return {"build-graph": tasks}


# ---------------------------------------------------------------------------------------
# Embedded Python (stdlib only; runs in the build image with python3)
# ---------------------------------------------------------------------------------------

NUGET_GATE_PY = textwrap.dedent(
    '''\
    """Fail on vulnerable NuGet packages: `dotnet list package --vulnerable --format json`
    exits 0 even with findings, so its report is parsed here. argv: report, severities."""
    import json
    import sys


    def findings(report):
        out = []
        for project in report.get("projects") or []:
            for framework in project.get("frameworks") or []:
                for kind in ("topLevelPackages", "transitivePackages"):
                    for package in framework.get(kind) or []:
                        for vulnerability in package.get("vulnerabilities") or []:
                            out.append({
                                "project": project.get("path", "?"),
                                "framework": framework.get("framework", "?"),
                                "package": package.get("id", "?"),
                                "version": package.get("resolvedVersion", "?"),
                                "severity": str(vulnerability.get("severity", "Unknown")),
                                "advisory": vulnerability.get("advisoryurl", ""),
                                "transitive": kind == "transitivePackages",
                            })
        return out


    def evaluate(report, fail_on):
        if not isinstance(report, dict) or "projects" not in report:
            return ["the report has no 'projects': not the output of --format json"], []
        errors = [
            "dotnet reported: " + str(problem.get("text", problem))
            for problem in report.get("problems") or []
            if str(problem.get("level", "")).lower() == "error"
        ]
        wanted = {s.lower() for s in fail_on}
        blocking = [f for f in findings(report) if f["severity"].lower() in wanted]
        return errors, blocking


    def main(argv):
        with open(argv[0], encoding="utf-8") as handle:
            report = json.load(handle)
        fail_on = [s for s in argv[1].split(",") if s]
        errors, blocking = evaluate(report, fail_on)
        for item in findings(report) if isinstance(report, dict) else []:
            verdict = "FAIL" if item in blocking else "report"
            print("{0:6} {1:8} {2} {3} ({4}{5}) {6}".format(
                verdict, item["severity"], item["package"], item["version"], item["project"],
                ", transitive" if item["transitive"] else "", item["advisory"]))
        for error in errors:
            print("ERROR " + error, file=sys.stderr)
        if errors or blocking:
            print("vulnerable-package gate FAILED: {0} package(s) at {1}".format(
                len(blocking), "/".join(fail_on)), file=sys.stderr)
            return 1
        print("vulnerable-package gate passed (fails on {0})".format("/".join(fail_on)))
        return 0


    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    '''
)

TRIVY_GATE_PY = textwrap.dedent(
    '''\
    """Trivy gate for one image. argv: report.json, fail-on (CSV, empty = report only),
    allow-exceptions (0/1), exceptions file, ignore-unfixed (0/1)."""
    import datetime
    import json
    import os
    import re
    import sys

    ID_RE = re.compile(r"^(CVE-[0-9]{4}-[0-9]{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$")
    KEYS = {"id", "reason", "expires"}


    class GateError(Exception):
        pass


    def load_exceptions(path, today):
        """Active {id: reason} and the ids of expired entries; GateError if malformed."""
        if not os.path.exists(path):
            return {}, []
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except ValueError as error:
            raise GateError("{0}: not valid JSON ({1})".format(path, error))
        entries = data.get("exceptions") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise GateError('{0}: expected {{"exceptions": [...]}}'.format(path))
        active, expired = {}, []
        for index, entry in enumerate(entries):
            where = "{0}: exceptions[{1}]".format(path, index)
            if not isinstance(entry, dict):
                raise GateError(where + ": expected an object with id, reason, expires")
            unknown = sorted(set(entry) - KEYS)
            if unknown:
                raise GateError("{0}: unknown key(s) {1}; allowed: id, reason, expires".format(
                    where, ", ".join(unknown)))
            vid, reason, expires = entry.get("id"), entry.get("reason"), entry.get("expires")
            if not isinstance(vid, str) or not ID_RE.match(vid):
                raise GateError("{0}.id: {1!r} is not a CVE or GHSA id".format(where, vid))
            if not isinstance(reason, str) or not reason.strip():
                raise GateError("{0}.reason: {1} needs a non-empty reason".format(where, vid))
            try:
                if not isinstance(expires, str) or len(expires) != 10:
                    raise ValueError(expires)
                until = datetime.date.fromisoformat(expires)
            except ValueError:
                raise GateError("{0}.expires: {1!r} is not a date (YYYY-MM-DD)".format(
                    where, expires))
            if until < today:
                expired.append(vid)
            else:
                active[vid] = reason.strip()
        return active, expired


    def findings(report):
        out = []
        for result in report.get("Results") or []:
            for vulnerability in result.get("Vulnerabilities") or []:
                out.append({
                    "id": vulnerability.get("VulnerabilityID", "?"),
                    "severity": str(vulnerability.get("Severity") or "UNKNOWN").upper(),
                    "package": vulnerability.get("PkgName", "?"),
                    "installed": vulnerability.get("InstalledVersion", "?"),
                    "fixed": vulnerability.get("FixedVersion") or "",
                    "target": result.get("Target", "?"),
                })
        return out


    def evaluate(items, fail_on, exceptions, ignore_unfixed):
        """(blocking, excepted, reported) lists of findings."""
        blocking, excepted, reported = [], [], []
        for item in items:
            if ignore_unfixed and not item["fixed"]:
                continue
            if item["severity"] in fail_on:
                (excepted if item["id"] in exceptions else blocking).append(item)
            else:
                reported.append(item)
        return blocking, excepted, reported


    def main(argv):
        report_path, fail_csv, allow, exceptions_path, ignore_unfixed = argv
        fail_on = {s for s in fail_csv.split(",") if s}
        today = datetime.datetime.now(datetime.timezone.utc).date()
        exceptions = {}
        if allow == "1":
            try:
                exceptions, expired = load_exceptions(exceptions_path, today)
            except GateError as error:
                print("Trivy gate FAILED: " + str(error), file=sys.stderr)
                return 1
            for vid in expired:
                print("exception for {0} has expired and no longer applies".format(vid))
        with open(report_path, encoding="utf-8") as handle:
            report = json.load(handle)
        blocking, excepted, reported = evaluate(
            findings(report), fail_on, exceptions, ignore_unfixed == "1")
        for verdict, items in (("FAIL", blocking), ("EXCEPT", excepted), ("report", reported)):
            for item in items:
                print("{0:6} {1:8} {2} {3} {4} -> {5} ({6}){7}".format(
                    verdict, item["severity"], item["id"], item["package"], item["installed"],
                    item["fixed"] or "no fix", item["target"],
                    ": " + exceptions[item["id"]] if verdict == "EXCEPT" else ""))
        if blocking:
            print("Trivy gate FAILED: {0} finding(s) at {1}".format(
                len(blocking), ",".join(sorted(fail_on))), file=sys.stderr)
            return 1
        if fail_on:
            print("Trivy gate passed (fails on {0})".format(",".join(sorted(fail_on))))
        else:
            print("Trivy gate: report only on this branch ({0} finding(s))".format(
                len(reported) + len(excepted)))
        return 0


    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    '''
)

RELEASE_WRITER_PY = textwrap.dedent(
    '''\
    """Write imageDetail.json, imagedefinitions.json and release.json from the environment,
    after the push; refuses anything but a repository@sha256 digest."""
    import datetime
    import json
    import os
    import re
    import sys

    env = os.environ
    digest = env.get("PUSHED_DIGEST", "")
    if not re.match(r"^sha256:[0-9a-f]{64}$", digest):
        sys.exit("no pushed digest (got {0!r}): no release artifact is written".format(digest))
    uri = env["ECR_REPOSITORY_URI"] + "@" + digest
    out = env["RELEASE_DIR"]
    release = {
        "service": env["SERVICE_NAME"],
        "version": env["RELEASE_VERSION"],
        "tag": env["RELEASE_TAG"],
        "commit": env["RELEASE_COMMIT"],
        "digest": digest,
        "imageUri": uri,
        "platforms": env.get("RELEASE_PLATFORMS", "").split(),
        "branch": env.get("RELEASE_BRANCH") or None,
        "buildId": env.get("CODEBUILD_BUILD_ID") or None,
        "buildNumber": int(env["RELEASE_BUILD_NUMBER"]),
        "pipelineExecutionId": env.get("PIPELINE_EXECUTION_ID") or None,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    files = {
        "imageDetail.json": {"ImageURI": uri},
        "imagedefinitions.json": [{"name": env["CONTAINER_NAME"], "imageUri": uri}],
        "release.json": release,
    }
    for name, document in files.items():
        with open(os.path.join(out, name), "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\\n")
    print("release artifacts written for " + uri)
    '''
)


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

_STRICT = "set -euo pipefail"
_GUARD = textwrap.dedent(
    """\
    if [ "${CODEBUILD_BUILD_SUCCEEDING:-0}" != 1 ]; then
      echo "an earlier phase failed: nothing is pushed and no release artifact is written" >&2
      exit 1
    fi"""
)
_ARCH_OF = 'arch="${platform#linux/}"; arch="${arch%%/*}"'


def _cmd(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def _install_tool(tool: PinnedTool, var: str) -> str:
    q = shlex.quote
    return _cmd(
        f"""
        case "$(uname -m)" in
          x86_64) {var}_URL={q(tool.amd64.url)}; {var}_SHA256={q(tool.amd64.sha256)} ;;
          aarch64|arm64) {var}_URL={q(tool.arm64.url)}; {var}_SHA256={q(tool.arm64.sha256)} ;;
          *) echo "unsupported build architecture: $(uname -m)" >&2; exit 1 ;;
        esac
        download="$(mktemp -d)"
        curl --fail --silent --show-error --location --retry 3 \\
          --output "$download/{tool.name}.tar.gz" "${var}_URL"
        printf '%s  %s\\n' "${var}_SHA256" "$download/{tool.name}.tar.gz" | sha256sum -c -
        tar -xzf "$download/{tool.name}.tar.gz" -C "$TOOLS_BIN" {tool.name}
        chmod 0755 "$TOOLS_BIN/{tool.name}"
        rm -rf "$download"
        echo "{tool.name} {tool.version} installed (sha256 verified)"
        """
    )


def _when(condition: str, body: str) -> str:
    """``if condition; then body; fi`` (body not indented: heredocs stay at column 0)."""
    return f"if {condition}; then\n{body}\nfi"


def _strict_when(condition: str, body: str) -> str:
    return f"{_STRICT}\n" + _when(condition, body)


def _quoted_csv(values: Sequence[str]) -> str:
    return shlex.quote(",".join(values)) if values else "''"


def _policy_case(settings: BuildSpecSettings) -> str:
    """The Trivy branch policy as a shell ``case`` (literal values, first match wins)."""
    strictest = [
        s
        for s in TRIVY_SEVERITIES
        if any(s in p.fail_on for p in settings.branch_policies)
        or s in settings.other_branches_fail_on
    ]
    lines = [
        _STRICT,
        f'RELEASE_BRANCH="${{{settings.branch_variable}:-}}"',
        'if [ -z "$RELEASE_BRANCH" ]; then',
        '  RELEASE_BRANCH="${CODEBUILD_WEBHOOK_HEAD_REF:-}"',
        '  RELEASE_BRANCH="${RELEASE_BRANCH#refs/heads/}"',
        "fi",
        'case "$RELEASE_BRANCH" in',
        "  # no branch name: the strictest policy, no exceptions (fail closed)",
        f"  '') TRIVY_FAIL_ON={_quoted_csv(strictest)}; TRIVY_ALLOW_EXCEPTIONS=0 ;;",
    ]
    for policy in settings.branch_policies:
        allow = "1" if policy.allow_exceptions and policy.fail_on else "0"
        lines.append(
            f"  {policy.pattern}) TRIVY_FAIL_ON={_quoted_csv(policy.fail_on)}; "
            f"TRIVY_ALLOW_EXCEPTIONS={allow} ;;"
        )
    lines += [
        f"  *) TRIVY_FAIL_ON={_quoted_csv(settings.other_branches_fail_on)}; "
        "TRIVY_ALLOW_EXCEPTIONS=0 ;;",
        "esac",
        "export RELEASE_BRANCH TRIVY_FAIL_ON TRIVY_ALLOW_EXCEPTIONS",
        "echo \"branch '${RELEASE_BRANCH:-<none>}': Trivy fails on "
        "'${TRIVY_FAIL_ON:-nothing, report only}'\"",
    ]
    return "\n".join(lines)


def _release_coordinates() -> str:
    return "\n".join(
        [
            _STRICT,
            versioning.shell_function("release_tag").rstrip("\n"),
            _cmd(
                """
                RELEASE_VERSION="$(tr -d '[:space:]' < "$VERSION_FILE")"
                RELEASE_COMMIT="${COMMIT_ID:-${CODEBUILD_RESOLVED_SOURCE_VERSION:-}}"
                if [ "$BATCH_BUILD_NUMBER" = 1 ]; then
                  # every build of a batch tags with the batch number, so the join finds them
                  BATCH_ARN="$(aws codebuild batch-get-builds --ids "$CODEBUILD_BUILD_ID" \\
                    --query 'builds[0].buildBatchArn' --output text)"
                  RELEASE_BUILD_NUMBER="$(aws codebuild batch-get-build-batches \\
                    --ids "$BATCH_ARN" --query 'buildBatches[0].buildBatchNumber' --output text)"
                else
                  RELEASE_BUILD_NUMBER="${CODEBUILD_BUILD_NUMBER:-}"
                fi
                RELEASE_TAG="$(release_tag "$RELEASE_VERSION" "$RELEASE_BUILD_NUMBER" \\
                  "$RELEASE_COMMIT")"
                # per-platform images are pushed under a staging tag that can never look
                # like a release tag (see staging_tag); only the manifest list gets RELEASE_TAG
                STAGING_TAG_STEM="@STAGING_PREFIX@$RELEASE_BUILD_NUMBER-$(
                  printf '%s' "$RELEASE_COMMIT" | LC_ALL=C tr 'A-F' 'a-f' | cut -c1-@SHA_LENGTH@)"
                export RELEASE_VERSION RELEASE_COMMIT RELEASE_BUILD_NUMBER RELEASE_TAG
                export STAGING_TAG_STEM
                echo "release $RELEASE_TAG: version $RELEASE_VERSION," \\
                  "build $RELEASE_BUILD_NUMBER, commit $RELEASE_COMMIT"
                """
            )
            .replace("@STAGING_PREFIX@", STAGING_TAG_PREFIX)
            .replace("@SHA_LENGTH@", str(versioning.SHA_LENGTH)),
        ]
    )


def _ecr_login(settings: BuildSpecSettings) -> str:
    region = shlex.quote(settings.region) if settings.region else '"$AWS_REGION"'
    return _strict_when(
        '[ -n "$BUILD_PLATFORMS" ] || [ -n "$MANIFEST_PLATFORMS" ]',
        _cmd(
            f"""
            : "${{ECR_REPOSITORY_URI:?ECR_REPOSITORY_URI is not set}}"
            aws ecr get-login-password --region {region} \\
              | docker login --username AWS --password-stdin "${{ECR_REPOSITORY_URI%%/*}}"
            """
        ),
    )


def _restore(settings: BuildSpecSettings) -> str:
    locked = " --locked-mode" if settings.restore_locked_mode else ""
    return _strict_when('[ "$RUN_SOURCE_GATES" = 1 ]', f'dotnet restore "$SOLUTION"{locked}')


def _nuget_gate(settings: BuildSpecSettings) -> str:
    severities = shlex.quote(",".join(settings.nuget_fail_severities))
    body = (
        'dotnet list "$SOLUTION" package --vulnerable --include-transitive --format json \\\n'
        f'  > "{REPORTS_DIR}/nuget-vulnerable.json"\n'
        f"python3 -I -S - \"{REPORTS_DIR}/nuget-vulnerable.json\" {severities} <<'PY'\n"
        f"{NUGET_GATE_PY.rstrip()}\nPY"
    )
    return _strict_when('[ "$RUN_SOURCE_GATES" = 1 ]', body)


def _gitleaks() -> str:
    return _strict_when(
        '[ "$RUN_SOURCE_GATES" = 1 ]',
        _cmd(
            f"""
            gitleaks dir . --no-banner --redact --exit-code 1 \\
              --report-format sarif --report-path "{REPORTS_DIR}/gitleaks.sarif"
            """
        ),
    )


def _sonar_begin(settings: BuildSpecSettings) -> str:
    sonar = settings.sonar
    assert sonar is not None
    q = shlex.quote
    organization = f" /o:{q(sonar.organization)}" if sonar.organization else ""
    wait = " /d:sonar.qualitygate.wait=true" if sonar.wait_for_quality_gate else ""
    return _strict_when(
        '[ "$RUN_SOURCE_GATES" = 1 ] && [ "$RUN_SONAR" = 1 ]',
        _cmd(
            f"""
            dotnet sonarscanner begin /k:{q(sonar.project_key)}{organization} \\
              /d:sonar.host.url={q(sonar.host_url)} /d:sonar.token="$SONAR_TOKEN"{wait} \\
              /d:sonar.cs.vstest.reportsPaths="{TEST_RESULTS_DIR}/*.trx" \\
              /d:sonar.cs.opencover.reportsPaths="{TEST_RESULTS_DIR}/*/coverage.opencover.xml"
            """
        ),
    )


def _sonar_end() -> str:
    return _strict_when(
        '[ "$RUN_SOURCE_GATES" = 1 ] && [ "$RUN_SONAR" = 1 ]',
        'dotnet sonarscanner end /d:sonar.token="$SONAR_TOKEN"',
    )


def _tests(settings: BuildSpecSettings) -> str:
    patterns = " ".join(settings.test_projects)
    formats = "cobertura,opencover" if settings.sonar else "cobertura"
    return _strict_when(
        '[ "$RUN_SOURCE_GATES" = 1 ]',
        _cmd(
            f"""
            shopt -s globstar nullglob
            test_projects=({patterns})
            if [ "${{#test_projects[@]}}" -eq 0 ]; then
              echo "no test project matches: {patterns}" >&2
              exit 1
            fi
            failed=0
            for project in "${{test_projects[@]}}"; do
              name="$(basename "$project" .csproj)"
              dotnet test "$project" --configuration "$BUILD_CONFIGURATION" --no-build \\
                --logger "trx;LogFileName=$name.trx" --results-directory "{TEST_RESULTS_DIR}" \\
                --collect "XPlat Code Coverage" \\
                -- "$COVERAGE_FORMAT_SETTING={formats}" \\
                || failed=1
            done
            if [ "$failed" != 0 ]; then
              echo "unit tests failed" >&2
              exit 1
            fi
            """
        ),
    )


def _build_images() -> str:
    return _strict_when(
        '[ -n "$BUILD_PLATFORMS" ]',
        _cmd(
            f"""
            read -r -a platforms <<< "$BUILD_PLATFORMS"
            for platform in "${{platforms[@]}}"; do
              {_ARCH_OF}
              docker buildx build --platform "$platform" --file "$DOCKERFILE" --load \\
                --tag "local/$SERVICE_NAME:scan-$arch" \\
                --label "org.opencontainers.image.revision=$RELEASE_COMMIT" \\
                --label "org.opencontainers.image.version=$RELEASE_TAG" \\
                "$DOCKER_CONTEXT"
            done
            """
        ),
    )


def _trivy_gate(settings: BuildSpecSettings) -> str:
    ignore = "1" if settings.trivy_ignore_unfixed else "0"
    flag = " --ignore-unfixed" if settings.trivy_ignore_unfixed else ""
    exceptions = shlex.quote(settings.trivy_exceptions_file)
    body = "\n".join(
        [
            _cmd(
                f"""
                read -r -a platforms <<< "$BUILD_PLATFORMS"
                for platform in "${{platforms[@]}}"; do
                  {_ARCH_OF}
                  image="local/$SERVICE_NAME:scan-$arch"
                  trivy image --quiet --scanners vuln{flag} --format json \\
                    --output "{REPORTS_DIR}/trivy-$arch.json" "$image"
                  trivy image --quiet --format cyclonedx \\
                    --output "{WORK_DIR}/sbom-$arch.cdx.json" "$image"
                  echo "Trivy gate for $platform"
                  python3 -I -S - "{REPORTS_DIR}/trivy-$arch.json" "$TRIVY_FAIL_ON" \\
                    "$TRIVY_ALLOW_EXCEPTIONS" {exceptions} {ignore} <<'PY'
                """
            ),
            TRIVY_GATE_PY.rstrip(),
            "PY",
            "done",
        ]
    )
    return _strict_when('[ -n "$BUILD_PLATFORMS" ]', body)


def _push() -> str:
    body = "\n".join(
        [
            _GUARD,
            _cmd(
                f"""
                read -r -a platforms <<< "$BUILD_PLATFORMS"
                for platform in "${{platforms[@]}}"; do
                  {_ARCH_OF}
                  if [ "$PUSH_MODE" = release ]; then
                    target="$ECR_REPOSITORY_URI:$RELEASE_TAG"
                  else
                    # one platform of a multi-arch release: a staging tag, never the release
                    # tag (only the manifest list of the join carries RELEASE_TAG)
                    target="$ECR_REPOSITORY_URI:$STAGING_TAG_STEM-$arch"
                  fi
                  if [ "${{#target}}" -gt $(( ${{#ECR_REPOSITORY_URI}} + 1 + 128 )) ]; then
                    echo "tag of $target is longer than 128 characters" >&2
                    exit 1
                  fi
                  docker tag "local/$SERVICE_NAME:scan-$arch" "$target"
                  docker push "$target" | tee "{WORK_DIR}/push-$arch.log"
                  digest="$(grep -oE 'digest: sha256:[0-9a-f]{{64}}' "{WORK_DIR}/push-$arch.log" \\
                    | tail -n 1 | cut -d ' ' -f 2)"
                  if [ -z "$digest" ]; then
                    echo "no digest in the push output for $target" >&2
                    exit 1
                  fi
                  printf '%s\\n' "$digest" > "{WORK_DIR}/digest-$arch"
                  echo "pushed $target as $digest"
                  if [ "$PUSH_MODE" = release ]; then
                    PUSHED_DIGEST="$digest"
                    export PUSHED_DIGEST
                  fi
                done
                """
            ),
        ]
    )
    return _strict_when('[ -n "$BUILD_PLATFORMS" ]', body)


def _manifest() -> str:
    body = "\n".join(
        [
            _GUARD,
            _cmd(
                f"""
                read -r -a platforms <<< "$MANIFEST_PLATFORMS"
                sources=()
                for platform in "${{platforms[@]}}"; do
                  {_ARCH_OF}
                  if [ ! -s "{WORK_DIR}/digest-$arch" ]; then
                    # a batch join: resolve this batch's staging tag to the digest it names
                    staged="$ECR_REPOSITORY_URI:$STAGING_TAG_STEM-$arch"
                    docker buildx imagetools inspect "$staged" \\
                      --format '{{{{json .Manifest}}}}' > "{WORK_DIR}/staging-$arch.json"
                    python3 -I -S -c \\
                      'import json, sys; print(json.load(open(sys.argv[1]))["digest"])' \\
                      "{WORK_DIR}/staging-$arch.json" > "{WORK_DIR}/digest-$arch"
                  fi
                  digest="$(cat "{WORK_DIR}/digest-$arch")"
                  if ! printf '%s' "$digest" | grep -Eqx 'sha256:[0-9a-f]{{64}}'; then
                    echo "no digest for $STAGING_TAG_STEM-$arch (got '$digest')" >&2
                    exit 1
                  fi
                  sources+=("$ECR_REPOSITORY_URI@$digest")
                done
                docker buildx imagetools create --tag "$ECR_REPOSITORY_URI:$RELEASE_TAG" \\
                  "${{sources[@]}}"
                docker buildx imagetools inspect "$ECR_REPOSITORY_URI:$RELEASE_TAG" \\
                  --format '{{{{json .Manifest}}}}' > "{WORK_DIR}/manifest.json"
                PUSHED_DIGEST="$(python3 -I -S -c \\
                  'import json, sys; print(json.load(open(sys.argv[1]))["digest"])' \\
                  "{WORK_DIR}/manifest.json")"
                export PUSHED_DIGEST
                echo "manifest list $ECR_REPOSITORY_URI:$RELEASE_TAG is $PUSHED_DIGEST"
                """
            ),
        ]
    )
    return _strict_when('[ -n "$MANIFEST_PLATFORMS" ]', body)


def _artifacts() -> str:
    release = "\n".join(
        [
            'if [ "$WRITE_RELEASE" = 1 ]; then',
            f"RELEASE_DIR={RELEASE_DIR} \\",
            '  RELEASE_PLATFORMS="${MANIFEST_PLATFORMS:-$BUILD_PLATFORMS}" \\',
            "  python3 -I -S - <<'PY'",
            RELEASE_WRITER_PY.rstrip(),
            "PY",
            'IMAGE_TAG="$RELEASE_TAG"',
            'IMAGE_DIGEST="$PUSHED_DIGEST"',
            'IMAGE_URI="$ECR_REPOSITORY_URI@$PUSHED_DIGEST"',
            "export IMAGE_TAG IMAGE_DIGEST IMAGE_URI",
            "fi",
        ]
    )
    platforms = _cmd(
        f"""
        read -r -a platforms <<< "$BUILD_PLATFORMS"
        for platform in "${{platforms[@]}}"; do
          {_ARCH_OF}
          mkdir -p "{RELEASE_DIR}/sbom"
          cp "{WORK_DIR}/sbom-$arch.cdx.json" "{RELEASE_DIR}/sbom/$SERVICE_NAME-$arch.cdx.json"
        done
        """
    )
    # platform files only once the manifest list carries the release tag (never from a
    # platform build of a batch, which may be followed by a failing sibling)
    members = _cmd(
        f"""
        if [ "$WRITE_RELEASE" = 1 ] && [ -n "$MANIFEST_PLATFORMS" ]; then
          read -r -a platforms <<< "$MANIFEST_PLATFORMS"
          for platform in "${{platforms[@]}}"; do
            {_ARCH_OF}
            printf '{{"platform": "%s", "imageUri": "%s@%s", "stagingTag": "%s"}}\\n' \\
              "$platform" "$ECR_REPOSITORY_URI" "$(cat "{WORK_DIR}/digest-$arch")" \\
              "$STAGING_TAG_STEM-$arch" > "{RELEASE_DIR}/platform-$arch.json"
          done
        fi
        """
    )
    return "\n".join([_STRICT, _GUARD, platforms, release, members])


def _qemu(settings: BuildSpecSettings) -> str:
    image = shlex.quote(settings.binfmt_image) if settings.binfmt_image else '"$BINFMT_IMAGE"'
    return _strict_when(
        '[ "$SETUP_QEMU" = 1 ]',
        _cmd(
            f"""
            # opt-in fallback: emulate the foreign platform (slow; see MULTIARCH_NOTES)
            docker run --privileged --rm {image} --install arm64,amd64
            """
        ),
    )


def _sonar_install(settings: BuildSpecSettings) -> str:
    sonar = settings.sonar
    assert sonar is not None
    return _strict_when(
        '[ "$RUN_SOURCE_GATES" = 1 ] && [ "$RUN_SONAR" = 1 ]',
        f"dotnet tool install dotnet-sonarscanner --version {shlex.quote(sonar.scanner_version)}"
        ' --tool-path "$TOOLS_BIN"',
    )


# ---------------------------------------------------------------------------------------
# The buildspec
# ---------------------------------------------------------------------------------------


def _variables(settings: BuildSpecSettings) -> dict[str, str]:
    variables = {
        "SERVICE_NAME": settings.service_name,
        "CONTAINER_NAME": settings.container,
        "SOLUTION": settings.solution,
        "BUILD_CONFIGURATION": settings.build_configuration,
        "DOCKERFILE": settings.dockerfile,
        "DOCKER_CONTEXT": settings.docker_context,
        "VERSION_FILE": settings.version_file,
        "TOOLS_BIN": settings.tools_dir,
        "NUGET_PACKAGES": settings.nuget_cache_path,
        "DOTNET_CLI_TELEMETRY_OPTOUT": "1",
        "DOTNET_NOLOGO": "1",
        "COVERAGE_FORMAT_SETTING": (
            "DataCollectionRunSettings.DataCollectors.DataCollector.Configuration.Format"
        ),
        "IMAGE_TAG": "",
        "IMAGE_URI": "",
        "IMAGE_DIGEST": "",
        "PUSHED_DIGEST": "",
    }
    if settings.ecr_repository_url:
        variables["ECR_REPOSITORY_URI"] = settings.ecr_repository_url
    if settings.role is not BuildRole.BATCH:
        variables.update(role_variables(settings.role, settings.platforms))
    return variables


def render_buildspec(settings: BuildSpecSettings) -> dict[str, Any]:
    """The buildspec (version 0.2) for ``settings`` as plain data."""
    env: dict[str, Any] = {
        "shell": "bash",
        "variables": _variables(settings),
        "exported-variables": list(EXPORTED_VARIABLES),
    }
    if settings.sonar:
        env["secrets-manager"] = {"SONAR_TOKEN": settings.sonar.secrets_manager_reference}

    install = [
        _cmd(
            f"""
            {_STRICT}
            rm -rf "{OUTPUT_DIR}"
            mkdir -p "{RELEASE_DIR}" "{TEST_RESULTS_DIR}" "$TOOLS_BIN" "$NUGET_PACKAGES"
            """
        ),
        _strict_when('[ "$RUN_SOURCE_GATES" = 1 ]', _install_tool(settings.gitleaks, "GITLEAKS")),
        _strict_when('[ -n "$BUILD_PLATFORMS" ]', _install_tool(settings.trivy, "TRIVY")),
    ]
    if settings.sonar:
        install.append(_sonar_install(settings))
    install.append('export PATH="$TOOLS_BIN:$PATH"')
    if settings.role in (BuildRole.SINGLE_WITH_QEMU, BuildRole.BATCH) and settings.binfmt_image:
        install.append(_qemu(settings))
    elif settings.role is BuildRole.SINGLE_WITH_QEMU:  # pragma: no cover - validated above
        raise _fail("binfmt_image", settings.binfmt_image, "required for single-with-qemu")

    pre_build = [
        _release_coordinates(),
        _policy_case(settings),
        _ecr_login(settings),
        _gitleaks(),
        _restore(settings),
        _nuget_gate(settings),
    ]
    build: list[str] = []
    if settings.sonar:
        build.append(_sonar_begin(settings))
    build.append(
        _strict_when(
            '[ "$RUN_SOURCE_GATES" = 1 ]',
            'dotnet build "$SOLUTION" --configuration "$BUILD_CONFIGURATION" --no-restore',
        )
    )
    build.append(_tests(settings))
    if settings.sonar:
        build.append(_sonar_end())
    build.extend([_build_images(), _trivy_gate(settings)])
    post_build = [_GUARD, _push(), _manifest(), _artifacts()]

    spec: dict[str, Any] = {"version": BUILDSPEC_VERSION, "env": env}
    if settings.role is BuildRole.BATCH:
        spec["batch"] = render_batch_graph(settings)
    spec["phases"] = {
        "install": {
            "on-failure": "ABORT",
            "runtime-versions": {"dotnet": settings.dotnet_sdk_version},
            "commands": install,
        },
        "pre_build": {"on-failure": "ABORT", "commands": pre_build},
        "build": {"on-failure": "ABORT", "commands": build},
        "post_build": {"on-failure": "ABORT", "commands": post_build},
    }
    spec["reports"] = {
        settings.test_report_group: {
            "files": ["**/*.trx"],
            "base-directory": TEST_RESULTS_DIR,
            "file-format": "VISUALSTUDIOTRX",
        },
        settings.coverage_report_group: {
            "files": ["**/coverage.cobertura.xml"],
            "base-directory": TEST_RESULTS_DIR,
            "file-format": "COBERTURAXML",
        },
    }
    spec["artifacts"] = {"files": ["**/*"], "base-directory": RELEASE_DIR, "discard-paths": "no"}
    spec["cache"] = {"paths": [f"{settings.nuget_cache_path}/**/*"]}
    return spec


def commands_of(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every shell command of a buildspec as ``(phase, command)`` pairs (for linting)."""
    out: list[tuple[str, str]] = []
    for phase, body in (spec.get("phases") or {}).items():
        for block in ("commands", "finally"):
            out.extend((phase, command) for command in body.get(block) or [])
    return out


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def buildspec_yaml(spec: Mapping[str, Any]) -> str:
    """YAML text of a rendered buildspec; multi-line commands become block scalars."""
    return yaml.dump(
        dict(spec), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100
    )
