"""The least-privilege policy of the DevSecOps CodeBuild service role (pure).

:func:`build_role_policy` grants exactly what the rendered buildspec
(:mod:`components.render.buildspec`) and CodeBuild itself do with the role:

* ECR: push to (and read back from) the ONE repository of the service;
  ``ecr:GetAuthorizationToken`` on ``*`` because AWS offers no resource-level permission
  for it (the token is registry-wide, not repository-scoped);
* CloudWatch Logs: streams and events in the project's own log group only (the group is
  created by the component with a retention, so no ``logs:CreateLogGroup``);
* CodeBuild reports: its report groups (``CreateReportGroup`` included for groups named in
  the buildspec that CodeBuild creates on first use);
* Secrets Manager: ``GetSecretValue`` on the named secrets (``env.secrets-manager``);
* KMS: the one key that encrypts artifacts, logs and secrets;
* S3: the artifact bucket (read input artifacts, write output artifacts);
* batch builds: ``BatchGetBuilds`` / ``BatchGetBuildBatches`` on its own project, so every
  build of a batch reads the shared ``buildBatchNumber`` for the release tag;
* optional VPC: the ENI permissions of the AWS CodeBuild guide ("Allow CodeBuild access to
  AWS services required to create a VPC network interface",
  https://docs.aws.amazon.com/codebuild/latest/userguide/auth-and-access-control-iam-identity-based-access-control.html),
  with ``ec2:CreateNetworkInterfacePermission`` conditioned on the project's subnets and
  ``ec2:AuthorizedService = codebuild.amazonaws.com`` as documented there, and
  ``ec2:CreateNetworkInterface`` narrowed to the subnets and security groups.

No statement uses a ``*`` action (enforced by :mod:`components.render.iam`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from components.render.iam import Statement, policy_document

_PARTITION_RE = re.compile(r"^aws(-cn|-us-gov)?$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$")
_LOG_GROUP_RE = re.compile(r"^[A-Za-z0-9_/.#-]{1,512}$")


class BuildPolicyError(ValueError):
    """An input that cannot make a scoped policy (names the field, value and what is allowed)."""


@dataclass(frozen=True)
class VpcAccess:
    """The project's VPC placement: the ENIs CodeBuild creates live in these subnets."""

    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.subnet_ids:
            raise BuildPolicyError("vpc.subnet_ids: () is not allowed; name at least one subnet")
        for subnet in self.subnet_ids:
            if not re.match(r"^subnet-[0-9a-f]{8,17}$", subnet):
                raise BuildPolicyError(f"vpc.subnet_ids: {subnet!r} is not a subnet id")
        if not self.security_group_ids:
            raise BuildPolicyError(
                "vpc.security_group_ids: () is not allowed; name at least one security group"
            )
        for group in self.security_group_ids:
            if not re.match(r"^sg-[0-9a-f]{8,17}$", group):
                raise BuildPolicyError(f"vpc.security_group_ids: {group!r} is not a group id")


def report_group_arn(
    *, partition: str = "aws", region: str, account_id: str, project_name: str, name: str
) -> str:
    """ARN of the report group CodeBuild uses for a buildspec ``reports:`` *name*.

    A name (not an ARN) in the buildspec means the group ``<project>-<name>``.
    """
    return f"arn:{partition}:codebuild:{region}:{account_id}:report-group/{project_name}-{name}"


def _check(field_name: str, value: str, pattern: re.Pattern[str], allowed: str) -> None:
    if not pattern.match(value):
        raise BuildPolicyError(f"{field_name}: {value!r} is not allowed; {allowed}")


def build_role_policy(
    *,
    region: str,
    account_id: str,
    project_name: str,
    ecr_repository_arn: str,
    log_group_name: str,
    report_group_arns: Sequence[str],
    artifact_bucket_arn: str,
    kms_key_arn: str,
    secret_arns: Sequence[str] = (),
    vpc: VpcAccess | None = None,
    batch: bool = False,
    partition: str = "aws",
) -> dict[str, Any]:
    """The inline policy of the CodeBuild service role (see the module docstring)."""
    _check("partition", partition, _PARTITION_RE, "use aws, aws-cn or aws-us-gov")
    _check("region", region, _REGION_RE, "use an AWS region such as eu-west-1")
    _check("account_id", account_id, _ACCOUNT_RE, "use the 12-digit account id")
    _check("project_name", project_name, _PROJECT_RE, "use a CodeBuild project name")
    _check("log_group_name", log_group_name, _LOG_GROUP_RE, "use a log group name, not an ARN")
    prefix = f"arn:{partition}"
    _check(
        "ecr_repository_arn",
        ecr_repository_arn,
        re.compile(rf"^{prefix}:ecr:{region}:{account_id}:repository/[a-z0-9][a-z0-9._/-]*$"),
        f"use the ARN of one repository in {account_id}/{region} (no wildcard)",
    )
    _check(
        "artifact_bucket_arn",
        artifact_bucket_arn,
        re.compile(rf"^{prefix}:s3:::[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]$"),
        "use the ARN of the artifact bucket (arn:aws:s3:::name)",
    )
    _check(
        "kms_key_arn",
        kms_key_arn,
        re.compile(rf"^{prefix}:kms:{region}:[0-9]{{12}}:key/[0-9a-f-]{{36}}$"),
        "use the ARN of the key (key/<uuid>, not an alias)",
    )
    if not report_group_arns:
        raise BuildPolicyError("report_group_arns: () is not allowed; name the report groups")
    for arn in report_group_arns:
        _check(
            "report_group_arns",
            arn,
            re.compile(rf"^{prefix}:codebuild:{region}:{account_id}:report-group/[A-Za-z0-9_-]+$"),
            "use report-group ARNs of this account and region (report_group_arn())",
        )
    for arn in secret_arns:
        _check(
            "secret_arns",
            arn,
            re.compile(
                rf"^{prefix}:secretsmanager:{region}:[0-9]{{12}}:secret:[A-Za-z0-9/_+=.@-]+$"
            ),
            "use full secret ARNs (with their 6-character suffix)",
        )

    log_group = f"{prefix}:logs:{region}:{account_id}:log-group:{log_group_name}"
    statements = [
        Statement(
            sid="EcrAuthorizationToken",
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],
            star_resource_reason=(
                "ecr:GetAuthorizationToken has no resource-level permission: the token is "
                "for the registry, repository access is scoped by EcrPushToServiceRepository"
            ),
        ),
        Statement(
            sid="EcrPushToServiceRepository",
            actions=[
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:CompleteLayerUpload",
                "ecr:GetDownloadUrlForLayer",
                "ecr:InitiateLayerUpload",
                "ecr:PutImage",
                "ecr:UploadLayerPart",
            ],
            resources=[ecr_repository_arn],
        ),
        Statement(
            sid="BuildLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group, f"{log_group}:log-stream:*"],
        ),
        Statement(
            sid="TestAndCoverageReports",
            actions=[
                "codebuild:BatchPutCodeCoverages",
                "codebuild:BatchPutTestCases",
                "codebuild:CreateReport",
                "codebuild:CreateReportGroup",
                "codebuild:UpdateReport",
            ],
            resources=list(report_group_arns),
        ),
        Statement(
            sid="ArtifactBucketObjects",
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            resources=[f"{artifact_bucket_arn}/*"],
        ),
        Statement(
            sid="ArtifactBucket",
            actions=["s3:GetBucketAcl", "s3:GetBucketLocation"],
            resources=[artifact_bucket_arn],
        ),
        Statement(
            sid="ArtifactKey",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[kms_key_arn],
        ),
    ]
    if secret_arns:
        statements.append(
            Statement(
                sid="NamedSecrets",
                actions=["secretsmanager:GetSecretValue"],
                resources=list(secret_arns),
            )
        )
    if batch:
        statements.append(
            Statement(
                sid="ReadOwnBatchNumber",
                actions=["codebuild:BatchGetBuildBatches", "codebuild:BatchGetBuilds"],
                resources=[f"{prefix}:codebuild:{region}:{account_id}:project/{project_name}"],
            )
        )
    if vpc is not None:
        statements.extend(_vpc_statements(prefix, region, account_id, vpc))
    return policy_document(statements)


def _vpc_statements(prefix: str, region: str, account_id: str, vpc: VpcAccess) -> list[Statement]:
    ec2 = f"{prefix}:ec2:{region}:{account_id}"
    subnets = [f"{ec2}:subnet/{subnet}" for subnet in vpc.subnet_ids]
    groups = [f"{ec2}:security-group/{group}" for group in vpc.security_group_ids]
    interfaces = f"{ec2}:network-interface/*"
    return [
        Statement(
            sid="VpcDescribe",
            actions=[
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            resources=["*"],
            star_resource_reason=(
                "EC2 Describe* actions have no resource-level permissions (AWS CodeBuild VPC "
                "policy example uses Resource *)"
            ),
        ),
        Statement(
            sid="VpcCreateInterfaceInProjectSubnets",
            actions=["ec2:CreateNetworkInterface"],
            resources=[interfaces, *subnets, *groups],
        ),
        Statement(
            # the ENI ids are only known at build time; scoped to this account and region
            sid="VpcDeleteInterface",
            actions=["ec2:DeleteNetworkInterface"],
            resources=[interfaces],
        ),
        Statement(
            sid="VpcInterfacePermissionForCodeBuild",
            actions=["ec2:CreateNetworkInterfacePermission"],
            resources=[interfaces],
            conditions={
                "StringEquals": {
                    "ec2:Subnet": subnets,
                    "ec2:AuthorizedService": "codebuild.amazonaws.com",
                }
            },
        ),
    ]
