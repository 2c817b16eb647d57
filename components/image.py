"""``DotnetServiceImage``: one multi-arch, digest-pinned image in a hardened ECR repository.

Type token ``dotnet-delivery:index:DotnetServiceImage``. It registers:

* ``aws.ecr.Repository`` - tags immutable, scan on push, KMS with the given customer key,
  ``force_delete`` off. The mutability is ``IMMUTABLE_WITH_EXCLUSION`` whose filters cover
  only the build-cache tags (``cache-*``, rewritten by every build), the per-platform staging
  tags of a batch build (``staging-*``, rewritten when a batch is re-run) and, when configured,
  the dev prefix (``dev-*``); release tags (``1.8.0-build.247-git.…``) start with a digit and are
  never covered (:func:`components.render.ecr.mutability_exclusion_filters` refuses a prefix
  that could be). Plain ``IMMUTABLE`` would make the second build's registry-cache export
  fail, because BuildKit overwrites ``<repo>:cache-<arch>``.
* ``aws.ecr.LifecyclePolicy`` - keep the newest N release images, expire dev images and
  untagged images after D days; never expire ``staging-*`` (the per-architecture images the
  releases' manifest lists reference)
  (:func:`components.render.ecr.lifecycle_policy`).
* ``aws.ecr.RepositoryPolicy`` - only the environments' ECS task execution roles may pull:
  the service's (``Names(service, env).execution_role``) and the EF Core migration task's
  (``Names(service, env).role("migrate-exec")``) in each environment account
  (:func:`pull_role_arns`).
* ``aws.ecr.RegistryScanningConfiguration`` (optional) - ENHANCED (Inspector) scan on push
  for this repository.
* ``docker_build.Image`` - one multi-platform build (default ``linux/amd64`` + ``linux/arm64``)
  pushed as ``<repo>:<release tag>``; or, with native builders, one ``Image`` per platform
  (``<repo>:<release tag>-<arch>``) joined by a ``docker_build.Index`` tagged with the release
  tag (no QEMU).

Why the repository policy names account roots and conditions on ``aws:PrincipalArn``
-------------------------------------------------------------------------------------
A role ARN in a resource policy's ``Principal`` is resolved by IAM to the role's unique id
when the policy is written; ECR validates each principal then and refuses the policy
(``Invalid parameter … Principal not found``) if a role does not exist yet (the AWS CDK hit
exactly this for ECR cross-account grants: aws/aws-cdk#15070, fixed in #16376 by trusting
the account instead). The tooling stack comes up *before* the environment stacks create
their execution roles, so the statement uses the environment accounts' roots as principals
(valid as soon as the accounts exist) and an ``ArnEquals`` condition on ``aws:PrincipalArn``
listing the exact execution-role ARNs (a global condition key compared as a string at request
time, so it needs no role to exist when the policy is set). The IAM user guide ("AWS JSON
policy elements: Principal") also notes that a principal resolved to a unique id no longer
matches a role deleted and re-created under the same name; the condition does. Net effect:
no principal other than those roles is allowed by this policy.

Configuration problems the component can only see at run time (a ``VERSION`` file that is
missing or not SemVer, no ``gitSha`` and no git, a context the Dockerfile renderer cannot
work with) raise :class:`components.config.ConfigError` naming the key, before any resource
of the component is registered, so ``python -m components.preview`` exits 2.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from components import config as config_mod
from components import migration, naming
from components.render import dockerfile as dockerfile_mod
from components.render import ecr, iam, versioning

TYPE_TOKEN = "dotnet-delivery:index:DotnetServiceImage"
KEY = f"{config_mod.NAMESPACE}:image"
CACHE_TAG_PREFIX = "cache-"
DEFAULT_PLATFORMS: tuple[str, ...] = ("linux/amd64", "linux/arm64")
VERSION_FILE = "VERSION"
_ENDPOINT_SCHEMES = ("tcp://", "ssh://", "unix://", "npipe://", "http://", "https://")


# --------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------
def arch_of(platform: str) -> str:
    """``linux/arm64`` → ``arm64`` (the part after the OS, variant dropped)."""
    parts = platform.split("/")
    if len(parts) < 2 or not parts[1]:
        raise ValueError(f"platform {platform!r} is not os/arch (for example linux/amd64)")
    return parts[1]


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def digest_of(ref: str) -> str:
    """The ``sha256:<64 hex>`` digest of a pushed ``<repo>[:tag]@sha256:…`` reference.

    Raises :class:`ValueError` when ``ref`` carries no such digest (for example a bare
    ``<repo>:<tag>``, which ``docker_build.Index.ref`` is when the index was not pushed):
    an image ref built from it would not be digest-pinned.
    """
    if not isinstance(ref, str) or "@" not in ref:
        raise ValueError(
            f"image reference {ref!r} has no digest; expected <repository>[:tag]@sha256:<64 "
            "hex> (was the index pushed?)"
        )
    digest = ref.rsplit("@", 1)[1]
    if not _DIGEST_RE.match(digest):
        raise ValueError(
            f"image reference {ref!r}: digest {digest!r} is not sha256:<64 lowercase hex>"
        )
    return digest


def cache_ref(repository_url: str, platforms: Sequence[str]) -> str:
    """The registry-cache ref for a build of ``platforms``: ``<repo>:cache-<arch>[-<arch>…]``.

    A per-platform build gets ``cache-amd64`` / ``cache-arm64``; a single multi-platform
    build exports one cache holding every platform (BuildKit cannot split it), named after
    all of its architectures (``cache-amd64-arm64``).
    """
    if not platforms:
        raise ValueError("platforms: empty; a build needs at least one platform")
    return f"{repository_url}:{CACHE_TAG_PREFIX}{'-'.join(arch_of(p) for p in platforms)}"


def parse_version_file(text: str, path: str) -> str:
    """The SemVer in a ``VERSION`` file's text, or :class:`ConfigError` naming the key."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise config_mod.ConfigError(
            [
                f"{KEY}.version: not set, and {path} holds {len(lines)} non-empty lines; "
                "it must hold exactly one SemVer version (for example 1.8.0), or set "
                f"{KEY}.version"
            ]
        )
    try:
        return versioning.validate_version(lines[0])
    except versioning.TagError as exc:
        raise config_mod.ConfigError(
            [f"{KEY}.version: {exc} (read from {path}; release tags need SemVer)"]
        ) from None


def resolve_version(context_dir: Path, configured: str | None) -> str:
    """``image.version`` when set (already validated), else ``<context>/VERSION``."""
    if configured is not None:
        return versioning.validate_version(configured)
    path = Path(context_dir) / VERSION_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise config_mod.ConfigError(
            [
                f"{KEY}.version: not set, and {path} cannot be read ({exc.strerror or exc}); "
                "set the version in config or add a VERSION file (for example 1.8.0) to the "
                "build context"
            ]
        ) from None
    return parse_version_file(text, str(path))


def resolve_git_sha(context_dir: Path, configured: str | None) -> str:
    """``image.gitSha`` when set, else ``git rev-parse HEAD`` in the build context."""
    if configured is not None:
        return configured.lower()
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=str(context_dir),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise config_mod.ConfigError(
            [
                f"{KEY}.gitSha: not set, and git could not run in {context_dir} ({exc}); "
                "set it to the commit id of the initial image (7-40 hex characters)"
            ]
        ) from None
    sha = done.stdout.strip().lower()
    if done.returncode != 0 or not versioning.GIT_SHA_RE.match(sha):
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else sha
        raise config_mod.ConfigError(
            [
                f"{KEY}.gitSha: not set, and `git rev-parse HEAD` in {context_dir} gave no "
                f"commit ({detail or 'no output'}); set it to the commit id of the initial "
                "image (7-40 hex characters)"
            ]
        )
    return sha


def execution_role_arns(service: str, environments: Mapping[str, str]) -> list[str]:
    """The task execution role ARN of each environment (environment → account id)."""
    return [
        naming.role_arn(naming.Names(service, env).execution_role, account_id=account)
        for env, account in environments.items()
    ]


def pull_role_arns(service: str, environments: Mapping[str, str]) -> list[str]:
    """Every role that pulls the image in an environment (environment → account id).

    Per environment: the service's task execution role and the EF Core migration task's own
    execution role (:func:`components.migration.execution_role_name`). The migration role is
    listed for every environment, whether or not it enables migrations: the tooling stack
    never reads an environment stack, so it cannot know, and naming a role that does not
    exist grants nothing (the policy conditions on ``aws:PrincipalArn``, a string match).
    """
    arns: list[str] = []
    for env, account in environments.items():
        names = naming.Names(service, env)
        arns.append(naming.role_arn(names.execution_role, account_id=account))
        arns.append(naming.role_arn(migration.execution_role_name(names), account_id=account))
    return arns


def project_root() -> Path:
    """Where relative config paths start: the Pulumi project directory.

    The Pulumi runtime's root directory when it knows one, else the directory of the running
    ``__main__.py`` when it holds a ``Pulumi.yaml`` (the offline engine), else the current
    directory (the Pulumi CLI runs programs from the project directory).
    """
    root = pulumi.runtime.get_root_directory()
    if root and (Path(root) / "Pulumi.yaml").is_file():
        return Path(root)
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file and (Path(main_file).parent / "Pulumi.yaml").is_file():
        return Path(main_file).resolve().parent
    return Path.cwd()


def _dockerfile_problem(exc: dockerfile_mod.DockerfileError) -> str:
    text = str(exc)
    for field_name, key in (
        ("project_path", "projectPath"),
        ("context_dir", "context"),
        ("dotnet_version", "dotnetVersion"),
        ("sdk_digest", "sdkDigest"),
        ("runtime_digest", "runtimeDigest"),
    ):
        if text.startswith(f"{field_name}: "):
            return f"{KEY}.{key}: {text[len(field_name) + 2 :]}"
    return f"{KEY}.projectPath: cannot render a Dockerfile for the build context: {text}"


# --------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DotnetServiceImageArgs:
    """Everything the component needs; :func:`args_from_config` builds it from config."""

    repository_name: str
    context_dir: Path
    """Where the component reads the context (absolute, or relative to the current directory)."""
    tag: str
    """The release tag (:func:`components.render.versioning.image_tag`)."""
    pull_role_arns: Sequence[str]
    kms_key_arn: pulumi.Input[str]
    dockerfile_inline: str | None = None
    dockerfile_location: str | None = None
    platforms: Sequence[str] = DEFAULT_PLATFORMS
    native_builders: Mapping[str, str] = field(default_factory=dict)
    """platform → buildx builder name, or a build daemon address (``tcp://…``, ``ssh://…``)."""
    build_on_preview: bool = False
    nuget_config: pulumi.Input[str] | None = None
    """A NuGet.Config with feed credentials: BuildKit secret ``nuget_config``."""
    dev_tag_prefix: str | None = None
    keep_release_images: int = 50
    untagged_expiry_days: int = 7
    enhanced_scanning: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    frozen_digest: str | None = None
    """``dotnet-delivery:image.initialDigest``: no build; export ``<repo>@<digest>``."""
    context_location: str | None = None
    """The context path handed to BuildKit (default ``context_dir``). The stack passes the
    configured, project-relative path so the recorded inputs are the same on every machine
    (the Pulumi CLI runs the program from the project directory)."""


def args_from_config(
    cfg: config_mod.ToolingConfig,
    *,
    kms_key_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    root: Path | None = None,
) -> DotnetServiceImageArgs:
    """Resolve ``dotnet-delivery:image`` (VERSION file, git sha, Dockerfile) into args.

    Raises :class:`components.config.ConfigError` naming the key for anything the config
    model could not check on its own.
    """
    image = cfg.image
    base = root or project_root()
    context = Path(image.context)
    context_dir = context if context.is_absolute() else (base / context)
    if not context_dir.is_dir():
        raise config_mod.ConfigError(
            [f"{KEY}.context: {image.context!r} is not a directory (looked in {context_dir})"]
        )
    version = resolve_version(context_dir, image.version)
    git_sha = resolve_git_sha(context_dir, image.git_sha)
    try:
        tag = versioning.image_tag(version, image.build_number, git_sha)
    except versioning.TagError as exc:
        raise config_mod.ConfigError([f"{KEY}: {exc}"]) from None

    inline: str | None = None
    location: str | None = None
    if image.dockerfile is not None:
        path = context_dir / image.dockerfile
        if not path.is_file():
            raise config_mod.ConfigError(
                [f"{KEY}.dockerfile: {image.dockerfile!r} is not a file in {context_dir}"]
            )
        location = f"{image.context.rstrip('/')}/{image.dockerfile}"
    else:
        try:
            settings = dockerfile_mod.DockerfileSettings(
                project_path=image.project_path,
                dotnet_version=image.dotnet_version,
                chiseled_extra=image.chiseled_extra,
                sdk_digest=image.sdk_digest,
                runtime_digest=image.runtime_digest,
                nuget_secret="config_file" if image.nuget_feed_secret else "none",
            )
            text, own = dockerfile_mod.dockerfile_for(context_dir, settings)
        except dockerfile_mod.DockerfileError as exc:
            raise config_mod.ConfigError([_dockerfile_problem(exc)]) from None
        if own:
            location = f"{image.context.rstrip('/')}/Dockerfile"
        else:
            inline = text

    nuget = image.nuget_feed_secret
    return DotnetServiceImageArgs(
        repository_name=cfg.names.repository,
        context_dir=context_dir,
        tag=tag,
        pull_role_arns=pull_role_arns(cfg.app.name, cfg.accounts.environments),
        kms_key_arn=image.kms_key_arn or kms_key_arn,
        dockerfile_inline=inline,
        dockerfile_location=location,
        platforms=tuple(image.platforms),
        native_builders={str(p): b for p, b in image.native_builders.items()},
        build_on_preview=image.build_on_preview,
        nuget_config=pulumi.Output.secret(nuget.get_secret_value()) if nuget else None,
        dev_tag_prefix=image.dev_tag_prefix,
        keep_release_images=image.keep_release_images,
        untagged_expiry_days=image.untagged_expiry_days,
        enhanced_scanning=image.enhanced_scanning,
        tags=dict(tags),
        context_location=image.context,
        frozen_digest=image.initial_digest,
    )


# --------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------
def _registry_host(url: str) -> str:
    return url.split("/", 1)[0]


class DotnetServiceImage(pulumi.ComponentResource):
    """The hardened ECR repository and the initial multi-arch image (see module docstring).

    Outputs: ``image_ref`` (``<repository_url>@sha256:…``), ``digest``, ``repository_url``,
    ``repository_arn``, ``tags`` (the pushed ``repo:tag`` refs) and ``platforms``.
    """

    image_ref: pulumi.Output[str]
    digest: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    tags: pulumi.Output[list[str]]
    platforms: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        args: DotnetServiceImageArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        platforms = list(args.platforms)
        if not platforms:
            raise config_mod.ConfigError([f"{KEY}.platforms: empty; name at least one platform"])
        if args.native_builders and set(args.native_builders) != set(platforms):
            raise config_mod.ConfigError(
                [f"{KEY}.nativeBuilders: must name exactly the platforms {platforms}"]
            )
        if (args.dockerfile_inline is None) == (args.dockerfile_location is None):
            raise ValueError(
                "DotnetServiceImageArgs: give exactly one of dockerfile_inline, dockerfile_location"
            )

        # ---- repository ----------------------------------------------------------------
        # mutable: the build cache ref, the per-platform staging tags of a batch build (a
        # re-run overwrites them) and the dev prefix; release tags never (ecr refuses a
        # prefix that could cover one)
        prefixes = [CACHE_TAG_PREFIX, ecr.STAGING_TAG_PREFIX]
        if args.dev_tag_prefix and args.dev_tag_prefix not in prefixes:
            prefixes.append(args.dev_tag_prefix)
        try:
            filters = ecr.mutability_exclusion_filters(prefixes[0], prefixes[1:])
            lifecycle = ecr.lifecycle_policy(
                args.keep_release_images,
                args.untagged_expiry_days,
                dev_tag_prefix=args.dev_tag_prefix,
                # No expiry for staging-* images: they are the per-architecture images every
                # release's manifest list references, and whether ECR's lifecycle keeps an
                # image a live manifest list references is not documented. Failed batches'
                # leftovers are small; delete them by hand if they ever matter.
                staging_tag_prefix=None,
            )
            pull_policy = ecr.repository_pull_policy(list(args.pull_role_arns))
        except ecr.EcrDocumentError as exc:
            raise config_mod.ConfigError([f"{KEY}: {exc}"]) from None

        repo = aws.ecr.Repository(
            name,
            name=args.repository_name,
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                    filter=f["filter"], filter_type=f["filter_type"]
                )
                for f in filters
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn
                )
            ],
            force_delete=False,
            tags=dict(args.tags),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle", repository=repo.name, policy=iam.to_json(lifecycle), opts=child
        )
        aws.ecr.RepositoryPolicy(
            f"{name}-pull", repository=repo.name, policy=iam.to_json(pull_policy), opts=child
        )
        if args.enhanced_scanning:
            # Registry-wide singleton (one per account and region): scope its rule to this
            # repository; a second program managing it would overwrite this one.
            aws.ecr.RegistryScanningConfiguration(
                f"{name}-scanning",
                scan_type="ENHANCED",
                rules=[
                    aws.ecr.RegistryScanningConfigurationRuleArgs(
                        scan_frequency="SCAN_ON_PUSH",
                        repository_filters=[
                            aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                                filter=args.repository_name, filter_type="WILDCARD"
                            )
                        ],
                    )
                ],
                opts=child,
            )

        # ---- build -----------------------------------------------------------------------
        url = repo.repository_url
        token = aws.ecr.get_authorization_token_output(registry_id=repo.registry_id)
        registry = docker_build.RegistryArgs(
            address=url.apply(_registry_host),
            username=token.user_name,
            password=pulumi.Output.secret(token.password),
        )
        dockerfile = docker_build.DockerfileArgs(
            inline=args.dockerfile_inline, location=args.dockerfile_location
        )
        build_context = docker_build.BuildContextArgs(
            location=args.context_location or str(args.context_dir)
        )
        secrets: dict[str, pulumi.Input[str]] = {}
        if args.nuget_config is not None:
            secrets[dockerfile_mod.NUGET_CONFIG_SECRET_ID] = pulumi.Output.secret(args.nuget_config)
        release_ref = url.apply(lambda u: f"{u}:{args.tag}")

        def build(
            resource_name: str,
            build_platforms: list[str],
            tag: pulumi.Input[str],
            builder: str | None,
        ) -> docker_build.Image:
            cache = url.apply(lambda u: cache_ref(u, build_platforms))
            image_opts = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
            builder_args = None
            if builder and builder.startswith(_ENDPOINT_SCHEMES):
                provider = docker_build.Provider(
                    f"{resource_name}-daemon", host=builder, opts=child
                )
                image_opts = pulumi.ResourceOptions(
                    parent=self, provider=provider, retain_on_delete=True
                )
            elif builder:
                builder_args = docker_build.BuilderConfigArgs(name=builder)
            return docker_build.Image(
                resource_name,
                context=build_context,
                dockerfile=dockerfile,
                platforms=[docker_build.Platform(p) for p in build_platforms],
                push=True,
                tags=[tag],
                registries=[registry],
                builder=builder_args,
                build_on_preview=args.build_on_preview,
                secrets=secrets or None,
                cache_from=[
                    docker_build.CacheFromArgs(
                        registry=docker_build.CacheFromRegistryArgs(ref=cache)
                    )
                ],
                cache_to=[
                    docker_build.CacheToArgs(
                        registry=docker_build.CacheToRegistryArgs(
                            ref=cache,
                            image_manifest=True,
                            oci_media_types=True,
                            mode=docker_build.CacheMode.MAX,
                        )
                    )
                ],
                opts=image_opts,
            )

        # Builds are retained on delete: freezing the bootstrap image (initialDigest) drops
        # them from the program, and that must never touch what the registry holds.
        if args.frozen_digest:
            digest: pulumi.Input[str] = args.frozen_digest
        elif args.native_builders:
            images = [
                build(
                    f"{name}-{arch_of(p)}",
                    [p],
                    pulumi.Output.concat(url, ":", args.tag, "-", arch_of(p)),
                    args.native_builders[p],
                )
                for p in platforms
            ]
            index = docker_build.Index(
                f"{name}-index",
                tag=release_ref,
                sources=[i.ref for i in images],
                push=True,
                registry=registry,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            digest = index.ref.apply(digest_of)
        else:
            image = build(f"{name}-image", platforms, release_ref, None)
            digest = image.digest

        self.repository_url = url
        self.repository_arn = repo.arn
        self.digest = pulumi.Output.from_input(digest)
        self.image_ref = pulumi.Output.concat(url, "@", digest)
        self.tags = release_ref.apply(lambda r: [r])
        self.platforms = pulumi.Output.from_input(platforms)
        self.register_outputs(
            {
                "imageRef": self.image_ref,
                "digest": self.digest,
                "repositoryUrl": self.repository_url,
                "repositoryArn": self.repository_arn,
                "tags": self.tags,
                "platforms": self.platforms,
            }
        )


__all__ = [
    "CACHE_TAG_PREFIX",
    "TYPE_TOKEN",
    "DotnetServiceImage",
    "DotnetServiceImageArgs",
    "arch_of",
    "args_from_config",
    "cache_ref",
    "digest_of",
    "execution_role_arns",
    "parse_version_file",
    "project_root",
    "pull_role_arns",
    "resolve_git_sha",
    "resolve_version",
]
