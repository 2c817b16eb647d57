"""``DevSecOpsBuildProject``: the CodeBuild project that tests, scans, builds multi-arch and
publishes one image digest (issue 5, DESIGN.md §3).

The buildspec comes from the pure renderer :mod:`components.render.buildspec`; the role
policy from :mod:`components.render.iam_build`. This module only turns typed arguments into
resources:

* one ``aws.codebuild.Project`` (source/artifacts ``CODEPIPELINE``, inline buildspec YAML):
  - native fan-out (default, two or more platforms): role ``batch`` - the buildspec's
    ``batch: build-graph`` runs one build per platform on its native x86 / ARM image and a
    join task that publishes the manifest list; ``build_batch_config`` names a separate
    batch service role (``codebuild:StartBuild/StopBuild/RetryBuild`` on this project only,
    as CodeBuild requires for batches);
  - ``qemu_fallback``: role ``single-with-qemu`` on one x86 build (pinned binfmt image);
  - one platform: role ``single`` on that platform's native environment;
  privileged mode is on because every variant runs ``docker buildx`` (the policy pack reads
  the inline buildspec to confirm it);
* a KMS-encrypted log group with retention, with its own key whose policy lets
  ``logs.<region>.amazonaws.com`` use it for this log group only (the artifact key's policy
  has no service statement);
* two report groups (trx tests, cobertura coverage), exported to the artifact bucket under
  ``reports/`` with the artifact key, or ``NO_EXPORT``;
* the least-privilege service role and its inline policy.

Secrets (the Sonar token) reach the build only by reference: ``env.secrets-manager`` in
the buildspec and a ``SECRETS_MANAGER`` project environment variable - never ``PLAINTEXT``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pulumi
import pulumi_aws as aws

from components import _wiring
from components import config as config_mod
from components.naming import Kind, fit
from components.render import buildspec as bs
from components.render import iam
from components.render.iam_build import VpcAccess, build_role_policy

TYPE_TOKEN = "dotnet-delivery:index:DevSecOpsBuildProject"

#: Pinned tool releases (version + SHA-256 of the linux archives, from each release's
#: checksums file). Bump version and both digests together.
GITLEAKS = bs.PinnedTool.gitleaks(
    "8.21.2",
    sha256_amd64="5bc41815076e6ed6ef8fbecc9d9b75bcae31f39029ceb55da08086315316e3ba",
    sha256_arm64="654c935542c89f565aabe7bf7c6c500830f116c114f0aeb509d2460c1ac2e6da",
)
TRIVY = bs.PinnedTool.trivy(
    "0.63.0",
    sha256_amd64="ea91fa393cfcb802da22832c96e99a4c8a295a8ba8faefd824c7168b7f0a741e",
    sha256_arm64="9aeecf81e8a1dc5625dd96a1a6fbea92a1f8e51c4160cfc0e412ef5f641ea1ac",
)
#: QEMU registration image for the opt-in fallback, pinned by digest.
BINFMT_IMAGE = (
    "tonistiigi/binfmt:qemu-v8.1.5"
    "@sha256:2d2918e86e5327d0661f7083d67a95280b0f7be8f77ed79a8418f81d7d90ce6f"
)
SONAR_SCANNER_VERSION = "9.0.2"
LOCAL_CACHE_MODES = (
    "LOCAL_DOCKER_LAYER_CACHE",
    "LOCAL_SOURCE_CACHE",
    "LOCAL_CUSTOM_CACHE",
)
#: ARM_CONTAINER has no MEDIUM in every region: a MEDIUM request runs ARM builds on LARGE.
_ARM_COMPUTE = {"BUILD_GENERAL1_MEDIUM": "BUILD_GENERAL1_LARGE"}
_ENVIRONMENT_TYPE = {"linux/amd64": "LINUX_CONTAINER", "linux/arm64": "ARM_CONTAINER"}
_IMAGE = {"linux/amd64": bs.X86_STANDARD_IMAGE, "linux/arm64": bs.ARM_STANDARD_IMAGE}


class BuildProjectError(ValueError):
    """Arguments that cannot make the project (names the field, value and what is allowed)."""


@dataclass(frozen=True)
class BuildProjectArgs:
    """Everything the component needs; all names are the deterministic ones from Names."""

    service_name: str
    account_id: str
    region: str
    project_name: str
    role_name: str
    batch_role_name: str
    repository_name: str
    artifact_bucket_name: str
    kms_key_arn: pulumi.Input[str]
    settings: bs.BuildSpecSettings
    """Buildspec settings; role, platforms, repository URL, region and report groups are
    filled in by the component (pass the build-specific parts: solution, tests, gates)."""
    platforms: tuple[str, ...] = ("linux/amd64",)
    qemu_fallback: bool = False
    compute_type: str = "BUILD_GENERAL1_MEDIUM"
    timeout_minutes: int = 30
    queued_timeout_minutes: int = 60
    concurrent_build_limit: int = 2
    log_retention_days: int = 30
    cache: Literal["LOCAL", "S3"] = "LOCAL"
    export_reports: bool = True
    test_report_group_name: str = ""
    coverage_report_group_name: str = ""
    branch: str | None = None
    sonar_token_secret_arn: str | None = None
    vpc_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    partition: str = "aws"

    def __post_init__(self) -> None:
        if not self.platforms:
            raise BuildProjectError("platforms: () is not allowed; name at least one platform")
        for platform in self.platforms:
            if platform not in _IMAGE:
                raise BuildProjectError(
                    f"platforms: {platform!r} is not allowed; use {sorted(_IMAGE)}"
                )
        if self.cache not in ("LOCAL", "S3"):
            raise BuildProjectError(f"cache: {self.cache!r} is not allowed; use LOCAL or S3")
        if bool(self.vpc_id) != bool(self.subnet_ids):
            raise BuildProjectError(
                f"vpc_id/subnet_ids: {self.vpc_id!r}/{self.subnet_ids!r} is not allowed; "
                "give both or neither"
            )
        if not 5 <= self.timeout_minutes <= 480:
            raise BuildProjectError(
                f"timeout_minutes: {self.timeout_minutes} is not allowed; use 5..480"
            )
        if self.settings.sonar is not None and not self.sonar_token_secret_arn:
            raise BuildProjectError(
                "sonar_token_secret_arn: None is not allowed when settings.sonar is set; "
                "pass the ARN of the Secrets Manager secret holding the token"
            )

    # --- derived -----------------------------------------------------------------------
    @property
    def role(self) -> bs.BuildRole:
        if len(self.platforms) == 1:
            return bs.BuildRole.SINGLE
        return bs.BuildRole.SINGLE_WITH_QEMU if self.qemu_fallback else bs.BuildRole.BATCH

    @property
    def batch(self) -> bool:
        return self.role is bs.BuildRole.BATCH

    @property
    def repository_url(self) -> str:
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.repository_name}"

    @property
    def repository_arn(self) -> str:
        return (
            f"arn:{self.partition}:ecr:{self.region}:{self.account_id}:"
            f"repository/{self.repository_name}"
        )

    @property
    def artifact_bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.artifact_bucket_name}"

    @property
    def log_group_name(self) -> str:
        return fit(f"/aws/codebuild/{self.project_name}", Kind.LOG_GROUP)

    def report_group_arn(self, name: str) -> str:
        return f"arn:{self.partition}:codebuild:{self.region}:{self.account_id}:report-group/{name}"

    @property
    def report_group_names(self) -> tuple[str, str]:
        tests = self.test_report_group_name or fit(
            f"{self.project_name}-unit-tests", Kind.CODEBUILD_REPORT_GROUP
        )
        coverage = self.coverage_report_group_name or fit(
            f"{self.project_name}-coverage", Kind.CODEBUILD_REPORT_GROUP
        )
        return tests, coverage

    def environment_for(self, platform: str) -> bs.BuildEnvironment:
        """The native CodeBuild environment of one platform."""
        compute = self.compute_type
        if platform == "linux/arm64":
            compute = _ARM_COMPUTE.get(compute, compute)
        return bs.BuildEnvironment(_IMAGE[platform], compute, _ENVIRONMENT_TYPE[platform])

    @property
    def project_environment(self) -> bs.BuildEnvironment:
        """The project's own environment (a batch's tasks override it per platform)."""
        if self.role is bs.BuildRole.SINGLE:
            return self.environment_for(self.platforms[0])
        return self.environment_for("linux/amd64")

    def buildspec_settings(self) -> bs.BuildSpecSettings:
        tests, coverage = self.report_group_names
        return dataclasses.replace(
            self.settings,
            service_name=self.service_name,
            ecr_repository_url=self.repository_url,
            region=self.region,
            role=self.role,
            platforms=self.platforms,
            batch=bs.BatchSettings(
                environments=tuple((p, self.environment_for(p)) for p in self.platforms)
            ),
            binfmt_image=BINFMT_IMAGE if self.role is bs.BuildRole.SINGLE_WITH_QEMU else None,
            test_report_group=self.report_group_arn(tests),
            coverage_report_group=self.report_group_arn(coverage),
        )

    def batch_compute_types(self) -> list[str]:
        settings = self.buildspec_settings()
        types = {settings.batch.environment_for(p).compute_type for p in self.platforms}
        types.add(settings.batch.join_environment.compute_type)
        return sorted(types)


def render_buildspec_yaml(args: BuildProjectArgs) -> str:
    """The project's inline buildspec (pure)."""
    return bs.buildspec_yaml(bs.render_buildspec(args.buildspec_settings()))


def role_policy_json(args: BuildProjectArgs, kms_key_arn: str, sg_ids: Sequence[str]) -> str:
    """The service role's inline policy as JSON (pure)."""
    vpc = VpcAccess(tuple(args.subnet_ids), tuple(sg_ids)) if args.vpc_id else None
    return iam.to_json(
        build_role_policy(
            region=args.region,
            account_id=args.account_id,
            project_name=args.project_name,
            ecr_repository_arn=args.repository_arn,
            log_group_name=args.log_group_name,
            report_group_arns=[args.report_group_arn(n) for n in args.report_group_names],
            artifact_bucket_arn=args.artifact_bucket_arn,
            kms_key_arn=kms_key_arn,
            secret_arns=[args.sonar_token_secret_arn] if args.sonar_token_secret_arn else [],
            vpc=vpc,
            batch=args.batch,
            partition=args.partition,
        )
    )


def batch_role_policy(args: BuildProjectArgs) -> dict[str, object]:
    """What CodeBuild needs to run the batch's builds: start/stop/retry on this project."""
    project_arn = (
        f"arn:{args.partition}:codebuild:{args.region}:{args.account_id}:"
        f"project/{args.project_name}"
    )
    return iam.policy_document(
        [
            iam.Statement(
                sid="RunBatchBuildsOfThisProject",
                actions=["codebuild:RetryBuild", "codebuild:StartBuild", "codebuild:StopBuild"],
                resources=[project_arn],
            )
        ]
    )


def _codebuild_role(
    resource_name: str,
    args: BuildProjectArgs,
    role_name: str,
    purpose: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> aws.iam.Role:
    """A role CodeBuild assumes for this account only (one-hour sessions)."""
    return _wiring.same_account_service_role(
        resource_name,
        name=role_name,
        service="codebuild.amazonaws.com",
        account_id=args.account_id,
        description=f"{args.project_name}: CodeBuild {purpose} role",
        max_session_duration=3600,
        tags=tags,
        parent=parent,
    )


class DevSecOpsBuildProject(pulumi.ComponentResource):
    """The CodeBuild project (+ role, log group, report groups) of the release flow."""

    project_name: pulumi.Output[str]
    project_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    test_report_group_arn: pulumi.Output[str]
    coverage_report_group_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: BuildProjectArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        key_arn = pulumi.Output.from_input(args.kms_key_arn)

        # Log group with its own key: CloudWatch Logs may use it for this group only.
        log_group = _wiring.encrypted_log_group(
            f"{name}-logs",
            name=args.log_group_name,
            retention_in_days=args.log_retention_days,
            account_id=args.account_id,
            region=args.region,
            key_description=f"{args.project_name}: CodeBuild logs",
            partition=args.partition,
            tags=tags,
            parent=self,
        ).log_group

        # Report groups (names fixed, so the buildspec and the policy use their ARNs).
        report_groups: list[aws.codebuild.ReportGroup] = []
        for purpose, group_name, kind in (
            ("tests", args.report_group_names[0], "TEST"),
            ("coverage", args.report_group_names[1], "CODE_COVERAGE"),
        ):
            export = (
                aws.codebuild.ReportGroupExportConfigArgs(
                    type="S3",
                    s3_destination=aws.codebuild.ReportGroupExportConfigS3DestinationArgs(
                        bucket=args.artifact_bucket_name,
                        encryption_key=key_arn,
                        encryption_disabled=False,
                        packaging="NONE",
                        path=f"reports/{purpose}",
                    ),
                )
                if args.export_reports
                else aws.codebuild.ReportGroupExportConfigArgs(type="NO_EXPORT")
            )
            report_groups.append(
                aws.codebuild.ReportGroup(
                    f"{name}-{purpose}",
                    name=group_name,
                    type=kind,
                    export_config=export,
                    delete_reports=True,
                    tags=tags,
                    opts=child,
                )
            )

        # Optional VPC placement: HTTPS egress only (NuGet, GitHub releases, ECR, AWS APIs).
        security_group_ids: list[pulumi.Output[str]] = []
        if args.vpc_id:
            group = aws.ec2.SecurityGroup(
                f"{name}-sg",
                name=fit(f"{args.project_name}-build", Kind.SECURITY_GROUP),
                description=f"{args.project_name}: CodeBuild builds, HTTPS egress only",
                vpc_id=args.vpc_id,
                egress=[
                    aws.ec2.SecurityGroupEgressArgs(
                        protocol="tcp",
                        from_port=443,
                        to_port=443,
                        cidr_blocks=["0.0.0.0/0"],
                        description="HTTPS to package feeds, tool releases, ECR and AWS APIs",
                    )
                ],
                tags={**tags, "Name": f"{args.project_name}-build"},
                opts=child,
            )
            security_group_ids.append(group.id)

        role = _codebuild_role(f"{name}-role", args, args.role_name, "service", tags, self)
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            name="build",
            policy=pulumi.Output.all(key_arn, *security_group_ids).apply(
                lambda values: role_policy_json(args, str(values[0]), [str(v) for v in values[1:]])
            ),
            opts=child,
        )
        depends: list[pulumi.Resource] = [policy, log_group, *report_groups]

        batch_config: aws.codebuild.ProjectBuildBatchConfigArgs | None = None
        if args.batch:
            batch_role = _codebuild_role(
                f"{name}-batch-role", args, args.batch_role_name, "batch service", tags, self
            )
            batch_policy = aws.iam.RolePolicy(
                f"{name}-batch-policy",
                role=batch_role.id,
                name="batch",
                policy=iam.to_json(batch_role_policy(args)),
                opts=child,
            )
            depends.append(batch_policy)
            batch_config = aws.codebuild.ProjectBuildBatchConfigArgs(
                service_role=batch_role.arn,
                # The join task writes the only artifacts. Builds started outside the pipeline
                # keep them per build; the pipeline's BuildAndScan action sets
                # CombineArtifacts=true (it overrides this per batch), so its one output
                # artifact BuildOutput holds them under the join identifier's directory
                # (buildspec.JOIN_IDENTIFIER), where the deploy step's `find` picks them up.
                combine_artifacts=False,
                restrictions=aws.codebuild.ProjectBuildBatchConfigRestrictionsArgs(
                    compute_types_alloweds=args.batch_compute_types(),
                    maximum_builds_allowed=len(args.platforms) + 1,
                ),
                # platform builds run in parallel, then the join: two build timeouts at most
                timeout_in_mins=min(2 * args.timeout_minutes, 2160),
            )

        variables: list[aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs] = []
        if args.branch:
            variables.append(
                aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                    name=args.settings.branch_variable, value=args.branch, type="PLAINTEXT"
                )
            )
        if args.sonar_token_secret_arn:
            variables.append(
                aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                    name="SONAR_TOKEN", value=args.sonar_token_secret_arn, type="SECRETS_MANAGER"
                )
            )
        environment = args.project_environment
        cache = (
            aws.codebuild.ProjectCacheArgs(type="LOCAL", modes=list(LOCAL_CACHE_MODES))
            if args.cache == "LOCAL"
            else aws.codebuild.ProjectCacheArgs(
                type="S3", location=f"{args.artifact_bucket_name}/build-cache"
            )
        )
        project = aws.codebuild.Project(
            f"{name}-project",
            name=args.project_name,
            description=f"{args.service_name}: test, scan, build multi-arch, publish one digest",
            service_role=role.arn,
            source=aws.codebuild.ProjectSourceArgs(
                type="CODEPIPELINE", buildspec=render_buildspec_yaml(args)
            ),
            artifacts=aws.codebuild.ProjectArtifactsArgs(type="CODEPIPELINE"),
            environment=aws.codebuild.ProjectEnvironmentArgs(
                type=environment.environment_type,
                image=environment.image,
                compute_type=environment.compute_type,
                image_pull_credentials_type="CODEBUILD",
                # every role runs `docker buildx` (image builds need the Docker daemon)
                privileged_mode=True,
                environment_variables=variables,
            ),
            build_batch_config=batch_config,
            cache=cache,
            encryption_key=key_arn,
            logs_config=aws.codebuild.ProjectLogsConfigArgs(
                cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                    status="ENABLED", group_name=log_group.name
                ),
                s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
            ),
            build_timeout=args.timeout_minutes,
            queued_timeout=args.queued_timeout_minutes,
            concurrent_build_limit=args.concurrent_build_limit,
            vpc_config=(
                aws.codebuild.ProjectVpcConfigArgs(
                    vpc_id=args.vpc_id,
                    subnets=list(args.subnet_ids),
                    security_group_ids=security_group_ids,
                )
                if args.vpc_id
                else None
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )

        self.project_name = project.name
        self.project_arn = project.arn
        self.role_arn = role.arn
        self.test_report_group_arn = report_groups[0].arn
        self.coverage_report_group_arn = report_groups[1].arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "project_name": self.project_name,
                "project_arn": self.project_arn,
                "role_arn": self.role_arn,
                "test_report_group_arn": self.test_report_group_arn,
                "coverage_report_group_arn": self.coverage_report_group_arn,
                "log_group_name": self.log_group_name,
            }
        )


# --------------------------------------------------------------------------------------
# From the tooling stack's configuration
# --------------------------------------------------------------------------------------
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def find_solution(context_dir: Path, fallback: str) -> str:
    """The one ``*.sln``/``*.slnx`` at the root of the service source, else ``fallback``."""
    found = sorted(p.name for p in context_dir.glob("*.sln*") if p.suffix in (".sln", ".slnx"))
    return found[0] if len(found) == 1 else fallback


def args_from_config(
    cfg: config_mod.ToolingConfig,
    *,
    kms_key_arn: pulumi.Input[str],
    tags: Mapping[str, str],
    project_root: Path = PROJECT_ROOT,
) -> BuildProjectArgs:
    """The component's arguments for the tooling stack (names from :class:`Names`)."""
    names = cfg.names
    build = cfg.build
    image = cfg.image
    sonar = (
        bs.SonarSettings(
            host_url=build.sonar.host_url,
            project_key=build.sonar.project_key,
            token_secret_id=build.sonar.token_secret_arn,
            scanner_version=SONAR_SCANNER_VERSION,
        )
        if build.sonar
        else None
    )
    settings = bs.BuildSpecSettings(
        service_name=cfg.app.name,
        solution=find_solution(project_root / image.context, image.project_path),
        test_projects=(build.test_projects,),
        gitleaks=GITLEAKS,
        trivy=TRIVY,
        dotnet_sdk_version=image.dotnet_version,
        dockerfile=image.dockerfile or "Dockerfile",
        trivy_ignore_unfixed=build.trivy.ignore_unfixed,
        trivy_exceptions_file=build.trivy.exceptions_file,
        nuget_fail_severities=tuple(build.vulnerable_package_severities),
        sonar=sonar,
    )
    return BuildProjectArgs(
        service_name=cfg.app.name,
        account_id=cfg.account_id,
        region=cfg.region,
        project_name=names.build_project("build"),
        role_name=names.build_role,
        batch_role_name=names.role("build-batch"),
        repository_name=names.repository,
        artifact_bucket_name=names.artifact_bucket(cfg.account_id),
        kms_key_arn=kms_key_arn,
        settings=settings,
        platforms=tuple(image.platforms),
        qemu_fallback=build.qemu_fallback,
        compute_type=build.compute_type,
        timeout_minutes=build.timeout_minutes,
        concurrent_build_limit=build.concurrent_build_limit,
        log_retention_days=build.log_retention_days,
        test_report_group_name=names.report_group("unit-tests"),
        coverage_report_group_name=names.report_group("coverage"),
        branch=cfg.pipeline.source.branch,
        sonar_token_secret_arn=build.sonar.token_secret_arn if build.sonar else None,
        vpc_id=build.vpc_id,
        subnet_ids=tuple(build.subnet_ids),
        tags=tags,
    )
