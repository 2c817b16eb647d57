"""The recommended multi-stage Dockerfile for an ASP.NET Core service (pure).

Two parts:

* :func:`discover_restore_inputs` reads the build context (files only, no Pulumi, no Docker):
  it walks the ``ProjectReference`` graph from the entry project and collects every file
  ``dotnet restore`` reads - each project file in the graph, the ``Directory.Build.props`` /
  ``Directory.Build.targets`` / ``Directory.Packages.props`` / ``NuGet.config`` /
  ``global.json`` files on the way from those projects up to the context root, each project's
  ``packages.lock.json``, and files pulled in by literal ``<Import Project="...">`` paths.
* :func:`render_dockerfile` turns those inputs and :class:`DockerfileSettings` into Dockerfile
  text; it does no I/O.

:func:`dockerfile_for` is what the image component calls: the service's own ``Dockerfile`` when
the context has one, otherwise the rendered one.

The rendered Dockerfile follows Microsoft's multi-platform pattern: the SDK stage runs on the
build host's own platform (``FROM --platform=$BUILDPLATFORM``) and cross-targets with
``-a $TARGETARCH`` (the SDK maps Docker's ``amd64`` to the ``x64`` RID), so an arm64 image
built on an x86 host (or the reverse) runs no SDK step under QEMU; only the runtime stage is
per-platform, and it runs nothing at build time. The restore layer is built from the copied
restore inputs alone, so it is reused until a project file or a package pin changes.

Build context hygiene: ``COPY . .`` copies whatever the context holds, so the context needs a
``.dockerignore`` that excludes ``bin/`` and ``obj/`` (a host ``obj/project.assets.json`` would
overwrite the container's restore output and break ``publish --no-restore``); see
:data:`RECOMMENDED_DOCKERIGNORE`.
"""

from __future__ import annotations

import json
import posixpath
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

SDK_REPOSITORY = "mcr.microsoft.com/dotnet/sdk"
RUNTIME_REPOSITORY = "mcr.microsoft.com/dotnet/aspnet"
HTTP_PORT = 8080
# Declared as a VOLUME: the task definition mounts its writable task volume here.
TMP_VOLUME_PATH = "/tmp"
PUBLISH_DIR = "/app/publish"
# BuildKit secret ids the image component passes (never build args).
NUGET_CONFIG_SECRET_ID = "nuget_config"
NUGET_CREDENTIALS_SECRET_ID = "nuget_credentials"
# NuGet's user-level config in the SDK image (which runs as root). NuGet merges it with the
# repository's NuGet.config, so the mounted file only needs <packageSourceCredentials>.
NUGET_USER_CONFIG = "/root/.nuget/NuGet/NuGet.Config"

PROJECT_EXTENSIONS = (".csproj", ".fsproj", ".vbproj")
# Files MSBuild / NuGet / the dotnet host look for in a project's directory and its parents.
MSBUILD_ANCESTOR_FILES = (
    "Directory.Build.props",
    "Directory.Build.targets",
    "Directory.Packages.props",
)
HOST_ANCESTOR_FILES = ("global.json",)
NUGET_CONFIG_NAME = "nuget.config"  # matched case-insensitively: NuGet.config, NuGet.Config...
PROJECT_LOCK_FILE = "packages.lock.json"

RECOMMENDED_DOCKERIGNORE = """\
**/bin/
**/obj/
**/.vs/
**/.vscode/
**/*.user
**/TestResults/
.git/
.dockerignore
Dockerfile
"""

NuGetSecretMode = Literal["none", "config_file", "source_credentials"]
_NUGET_SECRET_MODES: tuple[str, ...] = ("none", "config_file", "source_credentials")

_DOTNET_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_ASSEMBLY_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_. -]*[A-Za-z0-9_])?$")
_CONFIGURATION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_SOURCE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Characters a COPY source cannot carry literally: glob metacharacters, variable expansion,
# quoting/escaping and line breaks.
_UNSAFE_PATH_CHARS = set('*?[]$"\\\n\r\t')
_MSBUILD_DIR_MACROS = ("$(MSBuildThisFileDirectory)", "$(MSBuildProjectDirectory)")
_MIN_DOTNET_MAJOR = 8  # noble chiseled images and $APP_UID exist from .NET 8 on


class DockerfileError(ValueError):
    """A build context or setting the Dockerfile renderer cannot work with."""


@dataclass(frozen=True)
class RestoreInputs:
    """Everything ``dotnet restore`` of the entry project reads, relative to the context.

    Paths use ``/`` separators and are sorted; ``projects`` includes ``entry_project``.
    """

    entry_project: str
    projects: tuple[str, ...]
    support_files: tuple[str, ...]
    assembly_name: str

    @property
    def files(self) -> tuple[str, ...]:
        """Every file the restore layer copies, sorted."""
        return tuple(sorted({*self.projects, *self.support_files}))


@dataclass(frozen=True)
class DockerfileSettings:
    """What the rendered Dockerfile depends on besides the context's files.

    ``sdk_digest`` / ``runtime_digest`` pin the base images; give the digest of the
    multi-platform index (what ``docker buildx imagetools inspect`` prints first), not of one
    platform's manifest, or the other platform's build pulls the wrong architecture.
    ``nuget_secret`` selects how private-feed credentials reach ``dotnet restore``:
    ``config_file`` mounts BuildKit secret ``nuget_config`` (a NuGet.Config holding
    ``<packageSourceCredentials>``) as the user-level NuGet config; ``source_credentials``
    exposes BuildKit secret ``nuget_credentials`` (``Username=...;Password=...``) as the
    ``NuGetPackageSourceCredentials_<nuget_source_name>`` environment variable of that one
    ``RUN`` step. Either way the value never lands in a layer, an ARG or an ENV.
    """

    project_path: str
    dotnet_version: str = "10.0"
    assembly_name: str | None = None
    chiseled_extra: bool = False
    sdk_digest: str | None = None
    runtime_digest: str | None = None
    build_configuration: str = "Release"
    nuget_secret: NuGetSecretMode = "none"
    nuget_source_name: str | None = None

    def __post_init__(self) -> None:
        version = _DOTNET_VERSION_RE.match(self.dotnet_version)
        if not version:
            raise DockerfileError(
                f"dotnet_version: {self.dotnet_version!r} is not a .NET version; "
                "use major.minor such as '10.0' (or major.minor.patch such as '10.0.1')"
            )
        if int(version.group(1)) < _MIN_DOTNET_MAJOR:
            raise DockerfileError(
                f"dotnet_version: {self.dotnet_version!r} is too old; the noble chiseled "
                f"runtime images and $APP_UID start at {_MIN_DOTNET_MAJOR}.0"
            )
        for name in ("sdk_digest", "runtime_digest"):
            value = getattr(self, name)
            if value is not None and not _DIGEST_RE.match(value):
                raise DockerfileError(
                    f"{name}: {value!r} is not an image digest; use 'sha256:' followed by "
                    "64 lowercase hex characters"
                )
        if self.assembly_name is not None and not _ASSEMBLY_RE.match(self.assembly_name):
            raise DockerfileError(
                f"assembly_name: {self.assembly_name!r} is not a valid assembly name; use "
                "letters, digits, '_', '.', '-' and inner spaces (without the .dll suffix)"
            )
        if not _CONFIGURATION_RE.match(self.build_configuration):
            raise DockerfileError(
                f"build_configuration: {self.build_configuration!r} is not a build "
                "configuration name (for example Release)"
            )
        if self.nuget_secret not in _NUGET_SECRET_MODES:
            raise DockerfileError(
                f"nuget_secret: {self.nuget_secret!r} is not allowed; use one of "
                f"{', '.join(_NUGET_SECRET_MODES)}"
            )
        if self.nuget_secret == "source_credentials":
            if not self.nuget_source_name or not _SOURCE_NAME_RE.match(self.nuget_source_name):
                raise DockerfileError(
                    f"nuget_source_name: {self.nuget_source_name!r} must name the package "
                    "source (its key in NuGet.config) with letters, digits and '_' so it can "
                    "form the NuGetPackageSourceCredentials_<name> variable"
                )
        elif self.nuget_source_name is not None:
            raise DockerfileError(
                f"nuget_source_name: {self.nuget_source_name!r} is only used with "
                "nuget_secret='source_credentials'"
            )
        _normalize_relative(self.project_path, "project_path")

    @property
    def sdk_image(self) -> str:
        return _image(SDK_REPOSITORY, f"{self.dotnet_version}-noble", self.sdk_digest)

    @property
    def runtime_image(self) -> str:
        flavour = "noble-chiseled-extra" if self.chiseled_extra else "noble-chiseled"
        return _image(RUNTIME_REPOSITORY, f"{self.dotnet_version}-{flavour}", self.runtime_digest)

    @property
    def secret_ids(self) -> tuple[str, ...]:
        """The BuildKit secret ids the build must provide."""
        if self.nuget_secret == "config_file":
            return (NUGET_CONFIG_SECRET_ID,)
        if self.nuget_secret == "source_credentials":
            return (NUGET_CREDENTIALS_SECRET_ID,)
        return ()


def _image(repository: str, tag: str, digest: str | None) -> str:
    return f"{repository}:{tag}@{digest}" if digest else f"{repository}:{tag}"


# --------------------------------------------------------------------------- discovery


def _normalize_relative(path: str, what: str) -> str:
    """A context-relative path with '/' separators, or a DockerfileError naming ``what``."""
    text = path.strip().replace("\\", "/")
    if not text:
        raise DockerfileError(f"{what}: empty path")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise DockerfileError(f"{what}: {path!r} must be relative to the build context")
    normalized = posixpath.normpath(text)
    if normalized == ".." or normalized.startswith("../"):
        raise DockerfileError(f"{what}: {path!r} points outside the build context")
    return normalized


def _check_copyable(path: str, what: str) -> None:
    bad = sorted({c for c in path if c in _UNSAFE_PATH_CHARS})
    if bad:
        raise DockerfileError(
            f"{what}: {path!r} contains {bad}, which a Dockerfile COPY cannot take "
            "literally; rename the file or add your own Dockerfile to the build context"
        )


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_project_xml(context: Path, rel: str) -> ET.Element:
    try:
        # The service's own project files; ElementTree resolves no external entities.
        return ET.parse(context / rel).getroot()
    except ET.ParseError as err:
        raise DockerfileError(f"{rel}: not a valid MSBuild XML file ({err})") from err


def _case_insensitive_hint(context: Path, rel: str) -> str:
    """' (did you mean X?)' when ``rel`` exists under another letter case."""
    current = context
    found: list[str] = []
    for part in rel.split("/"):
        if not current.is_dir():
            return ""
        matches = [p for p in current.iterdir() if p.name.lower() == part.lower()]
        if len(matches) != 1:
            return ""
        found.append(matches[0].name)
        current = matches[0]
    return f" (did you mean {'/'.join(found)!r}? paths are case-sensitive in the Linux build)"


def _resolve_reference(context: Path, referencing: str, raw: str, kind: str) -> str | None:
    """Resolve an MSBuild path written in ``referencing``; None when it cannot be evaluated.

    ``$(MSBuildThisFileDirectory)`` / ``$(MSBuildProjectDirectory)`` prefixes are expanded;
    any other property or item function makes the path unknowable without MSBuild.
    """
    value = raw.strip()
    for macro in _MSBUILD_DIR_MACROS:
        if value.startswith(macro):
            value = value[len(macro) :].lstrip("\\/")
    if "$(" in value or "@(" in value or "%(" in value:
        return None
    if any(c in value for c in "*?"):
        raise DockerfileError(
            f"{referencing}: {kind} {raw!r} uses a wildcard; list each project explicitly "
            "or add your own Dockerfile to the build context"
        )
    base = posixpath.dirname(referencing)
    joined = posixpath.join(base, value.replace("\\", "/"))
    normalized = posixpath.normpath(joined)
    if normalized == ".." or normalized.startswith("../") or value.startswith(("/", "\\")):
        raise DockerfileError(
            f"{referencing}: {kind} {raw!r} resolves to {normalized!r}, outside the build "
            "context; widen the context (for example to the repository root) so the Dockerfile "
            "can copy it"
        )
    return normalized


def _conditional(element: ET.Element, parents: dict[ET.Element, ET.Element]) -> bool:
    node: ET.Element | None = element
    while node is not None:
        if node.get("Condition"):
            return True
        node = parents.get(node)
    return False


def _literal_assembly_name(root: ET.Element) -> str | None:
    for element in root.iter():
        if _local_name(element.tag) == "AssemblyName" and element.text:
            text = element.text.strip()
            if text and "$(" not in text:
                return text
    return None


def _ancestor_files(context: Path, directory: str) -> list[str]:
    """Well-known restore inputs in ``directory`` and each parent up to the context root."""
    found: list[str] = []
    current = directory
    while True:
        folder = context / current if current != "." else context
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if not entry.is_file():
                    continue
                name = entry.name
                if (
                    name in MSBUILD_ANCESTOR_FILES
                    or name in HOST_ANCESTOR_FILES
                    or name.lower() == NUGET_CONFIG_NAME
                ):
                    found.append(name if current == "." else f"{current}/{name}")
        if current == ".":
            return found
        current = posixpath.dirname(current) or "."


def discover_restore_inputs(context_dir: Path, project_path: str) -> RestoreInputs:
    """Walk the ProjectReference graph from ``project_path`` and collect the restore inputs.

    Raises :class:`DockerfileError` for a missing entry project, a reference that is missing or
    points outside the context, or a path a Dockerfile cannot copy literally. Deterministic:
    the same context always gives the same (sorted) result.
    """
    context = Path(context_dir)
    if not context.is_dir():
        raise DockerfileError(f"context_dir: {str(context)!r} is not a directory")
    entry = _normalize_relative(project_path, "project_path")
    if not entry.endswith(PROJECT_EXTENSIONS):
        raise DockerfileError(
            f"project_path: {project_path!r} is not a project file; use a path ending in "
            f"{', '.join(PROJECT_EXTENSIONS)}"
        )
    if not (context / entry).is_file():
        raise DockerfileError(
            f"project_path: {entry!r} does not exist in the build context {str(context)!r}"
            f"{_case_insensitive_hint(context, entry)}"
        )

    projects: set[str] = set()
    support: set[str] = set()
    queue: list[str] = [entry]
    visited_xml: set[str] = set()
    entry_root: ET.Element | None = None

    while queue:
        current = queue.pop()
        if current in visited_xml:
            continue
        visited_xml.add(current)
        root = _parse_project_xml(context, current)
        if current == entry:
            entry_root = root
        if current.endswith(PROJECT_EXTENSIONS):
            projects.add(current)
            lock = posixpath.join(posixpath.dirname(current), PROJECT_LOCK_FILE)
            if (context / lock).is_file():
                support.add(lock)
            for ancestor in _ancestor_files(context, posixpath.dirname(current) or "."):
                support.add(ancestor)
                if ancestor.endswith((".props", ".targets")):
                    queue.append(ancestor)
        parents = {child: parent for parent in root.iter() for child in parent}
        for element in root.iter():
            name = _local_name(element.tag)
            if name == "ProjectReference":
                kind, attr = "ProjectReference", "Include"
            elif name == "Import":
                kind, attr = "Import", "Project"
            else:
                continue
            for raw in (element.get(attr) or "").split(";"):
                if not raw.strip():
                    continue
                target = _resolve_reference(context, current, raw, kind)
                if target is None:
                    if kind == "ProjectReference":
                        raise DockerfileError(
                            f"{current}: ProjectReference {raw!r} uses MSBuild properties "
                            "the renderer cannot evaluate; use a relative path or add your "
                            "own Dockerfile to the build context"
                        )
                    continue  # e.g. $([MSBuild]::GetPathOfFileAbove(...)): parents are collected
                if not (context / target).is_file():
                    if _conditional(element, parents):
                        continue  # MSBuild skips it too when its Condition is false
                    raise DockerfileError(
                        f"{current}: {kind} {raw!r} resolves to {target!r}, which does not "
                        f"exist in the build context{_case_insensitive_hint(context, target)}"
                    )
                if kind == "ProjectReference":
                    if not target.endswith(PROJECT_EXTENSIONS):
                        raise DockerfileError(
                            f"{current}: ProjectReference {raw!r} is not a project file "
                            f"({', '.join(PROJECT_EXTENSIONS)})"
                        )
                    queue.append(target)
                else:
                    support.add(target)
                    queue.append(target)

    for path in (*projects, *support):
        _check_copyable(path, "restore input")
    if entry_root is None:  # pragma: no cover - the entry is always parsed first
        raise DockerfileError(f"project_path: {entry!r} was not read")
    assembly = (
        _literal_assembly_name(entry_root) or posixpath.splitext(posixpath.basename(entry))[0]
    )
    return RestoreInputs(
        entry_project=entry,
        projects=tuple(sorted(projects)),
        support_files=tuple(sorted(support - projects)),
        assembly_name=assembly,
    )


# --------------------------------------------------------------------------- rendering


def _json_args(*args: str) -> str:
    return json.dumps(list(args))


def _copy_lines(files: tuple[str, ...]) -> list[str]:
    """One COPY per destination directory; every file lands at its own path."""
    by_dir: dict[str, list[str]] = {}
    for path in files:
        by_dir.setdefault(posixpath.dirname(path), []).append(path)
    lines: list[str] = []
    for directory in sorted(by_dir):
        destination = f"{directory}/" if directory else "./"
        lines.append(f"COPY {_json_args(*sorted(by_dir[directory]), destination)}")
    return lines


def _restore_mount(settings: DockerfileSettings) -> str:
    if settings.nuget_secret == "config_file":
        return (
            f"--mount=type=secret,id={NUGET_CONFIG_SECRET_ID},"
            f"target={NUGET_USER_CONFIG},required=true"
        )
    if settings.nuget_secret == "source_credentials":
        return (
            f"--mount=type=secret,id={NUGET_CREDENTIALS_SECRET_ID},"
            f"env=NuGetPackageSourceCredentials_{settings.nuget_source_name},required=true"
        )
    return ""


def render_dockerfile(settings: DockerfileSettings, inputs: RestoreInputs) -> str:
    """The Dockerfile text for ``inputs`` under ``settings`` (pure; same input, same text)."""
    entry = _normalize_relative(settings.project_path, "project_path")
    if entry != inputs.entry_project:
        raise DockerfileError(
            f"project_path: settings name {entry!r} but the restore inputs were discovered "
            f"for {inputs.entry_project!r}"
        )
    for path in inputs.files:
        _check_copyable(path, "restore input")
    if inputs.entry_project not in inputs.projects:
        raise DockerfileError(
            f"restore inputs: entry project {inputs.entry_project!r} is not among the projects"
        )
    assembly = settings.assembly_name or inputs.assembly_name
    if not _ASSEMBLY_RE.match(assembly):
        raise DockerfileError(
            f"assembly_name: {assembly!r} (from {inputs.entry_project}) is not a valid "
            "assembly name; set assembly_name explicitly"
        )
    project = json.dumps(inputs.entry_project)
    mount = _restore_mount(settings)
    secret_note = {
        "none": [],
        "config_file": [
            f"# Private feed: BuildKit secret '{NUGET_CONFIG_SECRET_ID}' (a NuGet.Config with",
            "# <packageSourceCredentials>) is mounted for this one step as the user-level",
            "# NuGet config; it is never written to a layer, an ARG or an ENV.",
        ],
        "source_credentials": [
            f"# Private feed: BuildKit secret '{NUGET_CREDENTIALS_SECRET_ID}' "
            "(Username=...;Password=...)",
            f"# is exposed to this one step as NuGetPackageSourceCredentials_"
            f"{settings.nuget_source_name};",
            "# it is never written to a layer, an ARG or an ENV.",
        ],
    }[settings.nuget_secret]

    # UseAppHost=false on restore too: publish uses it, and a cross-arch restore would
    # otherwise download the target's apphost pack, which a private-only feed may not serve.
    restore_command = f'dotnet restore {project} -a "$TARGETARCH" -p:UseAppHost=false'
    restore = [f"RUN {mount} \\", f"    {restore_command}"] if mount else [f"RUN {restore_command}"]
    lines = [
        "# syntax=docker/dockerfile:1",
        "# Rendered by dotnet-delivery (components/render/dockerfile.py) because the build",
        "# context has no Dockerfile of its own; add one to the context to take over.",
        "# The context needs a .dockerignore excluding bin/ and obj/ (COPY . . below).",
        "",
        "# Build stage: runs on the build host's platform and cross-targets $TARGETARCH",
        "# (dotnet -a maps amd64 to x64), so restore and publish never run under emulation.",
        f"FROM --platform=$BUILDPLATFORM {settings.sdk_image} AS build",
        "ARG TARGETARCH",
        "WORKDIR /src",
        "",
        "# Restore layer: only the files restore reads, each copied to its own path, so this",
        "# layer is reused until a project file, a props file or a package pin changes.",
        *_copy_lines(inputs.files),
        *secret_note,
        *restore,
        "",
        "COPY . .",
        f'RUN dotnet publish {project} --no-restore -a "$TARGETARCH" \\',
        f"    -c {settings.build_configuration} -o {PUBLISH_DIR} -p:UseAppHost=false",
        "",
        "# Runtime stage: chiseled Ubuntu (no shell, no package manager, non-root user).",
        "# Nothing may RUN here and no HEALTHCHECK can call curl: the load balancer checks",
        "# /health/ready from outside, and an ECS container health check on this image must",
        "# be an exec-form command that exists in it (e.g. the app's own --healthcheck mode),",
        "# never CMD-SHELL.",
        f"FROM {settings.runtime_image} AS final",
        "WORKDIR /app",
        f"COPY --from=build {PUBLISH_DIR} .",
        f"ENV ASPNETCORE_HTTP_PORTS={HTTP_PORT}",
        f"EXPOSE {HTTP_PORT}",
        "# The task runs with a read-only root filesystem and mounts a task volume at /tmp.",
        "# A Fargate bind mount is root-owned 0755 unless the image declares the path as a",
        "# VOLUME; then ECS copies the image's /tmp (mode 1777 in the chiseled images) into",
        "# it, so the non-root app can write its temp files. Nothing may write /tmp after this.",
        f"VOLUME {_json_args(TMP_VOLUME_PATH)}",
        "# $APP_UID comes from the .NET base image (1654, the non-root 'app' user) and is",
        "# expanded at build time, so the image config records a numeric user; hadolint",
        "# cannot see base-image ENV values and would report DL3066 for the variable.",
        "# hadolint ignore=DL3066",
        "USER $APP_UID",
        f"ENTRYPOINT {_json_args('dotnet', f'{assembly}.dll')}",
    ]
    return "\n".join(lines) + "\n"


def dockerfile_for(context_dir: Path, settings: DockerfileSettings) -> tuple[str, bool]:
    """The service's own Dockerfile (and True) if the context has one, else the rendered one."""
    own = Path(context_dir) / "Dockerfile"
    if own.is_file():
        return own.read_text(encoding="utf-8"), True
    inputs = discover_restore_inputs(Path(context_dir), settings.project_path)
    return render_dockerfile(settings, inputs), False


__all__ = [
    "NUGET_CONFIG_SECRET_ID",
    "NUGET_CREDENTIALS_SECRET_ID",
    "RECOMMENDED_DOCKERIGNORE",
    "TMP_VOLUME_PATH",
    "DockerfileError",
    "DockerfileSettings",
    "RestoreInputs",
    "discover_restore_inputs",
    "dockerfile_for",
    "render_dockerfile",
]
