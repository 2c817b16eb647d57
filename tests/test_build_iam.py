"""The CodeBuild service role policy: no wildcard action, every resource named."""

from __future__ import annotations

from typing import Any

import pytest

from components.render.iam import PolicyError, actions_of
from components.render.iam_build import (
    BuildPolicyError,
    VpcAccess,
    build_role_policy,
    report_group_arn,
)

REGION, ACCOUNT, PROJECT = "eu-west-1", "123456789012", "orders-build"
REPO = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/orders-api"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"
BUCKET = "arn:aws:s3:::orders-artifacts-123456789012"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:orders/sonar-token-AbC123"
REPORTS = [
    report_group_arn(region=REGION, account_id=ACCOUNT, project_name=PROJECT, name=name)
    for name in ("unit-tests", "coverage")
]
VPC = VpcAccess(("subnet-0a1b2c3d4e5f60718", "subnet-0b1b2c3d4e5f60718"), ("sg-0a1b2c3d4e5f60718",))


def _policy(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "region": REGION,
        "account_id": ACCOUNT,
        "project_name": PROJECT,
        "ecr_repository_arn": REPO,
        "log_group_name": f"/aws/codebuild/{PROJECT}",
        "report_group_arns": REPORTS,
        "artifact_bucket_arn": BUCKET,
        "kms_key_arn": KEY,
        "secret_arns": [SECRET],
        "vpc": VPC,
        "batch": True,
    }
    args.update(overrides)
    return build_role_policy(**args)


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in policy["Statement"] if s["Sid"] == sid)


def _resources(statement: dict[str, Any]) -> list[str]:
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else list(resource)


def test_no_statement_uses_a_wildcard_action() -> None:
    for policy in (_policy(), _policy(vpc=None, batch=False, secret_arns=[])):
        actions = actions_of(policy)
        assert actions, "the policy grants something"
        assert all("*" not in action and ":" in action for action in actions), actions


def test_star_resources_only_where_aws_has_no_resource_level_permission() -> None:
    star = {s["Sid"] for s in _policy()["Statement"] if "*" in _resources(s)}
    assert star == {"EcrAuthorizationToken", "VpcDescribe"}
    assert actions_of({"Statement": [_statement(_policy(), "EcrAuthorizationToken")]}) == [
        "ecr:GetAuthorizationToken"
    ]


def test_every_resource_is_named_and_in_this_account() -> None:
    policy = _policy()
    for statement in policy["Statement"]:
        for resource in _resources(statement):
            if resource == "*":
                continue
            assert resource.startswith("arn:aws:"), resource
            assert ACCOUNT in resource or resource.startswith("arn:aws:s3:::"), resource


def test_ecr_push_only_to_the_one_repository() -> None:
    push = _statement(_policy(), "EcrPushToServiceRepository")
    assert push["Resource"] == REPO
    assert {"ecr:PutImage", "ecr:UploadLayerPart", "ecr:BatchGetImage"} <= set(push["Action"])


def test_logs_reports_secrets_key_bucket_are_the_named_ones() -> None:
    policy = _policy()
    logs = _resources(_statement(policy, "BuildLogs"))
    assert logs == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/{PROJECT}",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/{PROJECT}:log-stream:*",
    ]
    assert "logs:CreateLogGroup" not in actions_of(policy)
    assert _resources(_statement(policy, "TestAndCoverageReports")) == [
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/{PROJECT}-unit-tests",
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/{PROJECT}-coverage",
    ]
    assert _statement(policy, "NamedSecrets")["Resource"] == SECRET
    assert _statement(policy, "ArtifactKey")["Resource"] == KEY
    assert _statement(policy, "ArtifactBucketObjects")["Resource"] == f"{BUCKET}/*"
    assert _statement(policy, "ArtifactBucket")["Resource"] == BUCKET
    assert _statement(policy, "ReadOwnBatchNumber")["Resource"] == (
        f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/{PROJECT}"
    )


def test_optional_statements_only_when_asked() -> None:
    sids = {s["Sid"] for s in _policy(vpc=None, batch=False, secret_arns=[])["Statement"]}
    assert not sids & {"NamedSecrets", "ReadOwnBatchNumber", "VpcDescribe"}
    assert "codebuild:BatchGetBuilds" not in actions_of(_policy(batch=False))


def test_vpc_interface_permission_carries_the_documented_conditions() -> None:
    policy = _policy()
    permission = _statement(policy, "VpcInterfacePermissionForCodeBuild")
    assert permission["Resource"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
    assert permission["Condition"] == {
        "StringEquals": {
            "ec2:Subnet": [f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in VPC.subnet_ids],
            "ec2:AuthorizedService": "codebuild.amazonaws.com",
        }
    }
    create = _resources(_statement(policy, "VpcCreateInterfaceInProjectSubnets"))
    assert f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0a1b2c3d4e5f60718" in create
    assert "*" not in create


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("ecr_repository_arn", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*", "one repository"),
        ("ecr_repository_arn", f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/x", "one repository"),
        ("kms_key_arn", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/orders", "not an alias"),
        ("report_group_arns", [], "name the report groups"),
        ("report_group_arns", [f"arn:aws:codebuild:{REGION}:{ACCOUNT}:report-group/*"], "ARNs"),
        ("secret_arns", ["orders/sonar-token"], "full secret ARNs"),
        ("log_group_name", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:x", "not an ARN"),
        ("account_id", "12345", "12-digit"),
    ],
)
def test_bad_input_names_the_field_and_what_is_allowed(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(BuildPolicyError) as error:
        _policy(**{field: value})
    assert field in str(error.value)
    assert message in str(error.value)


def test_vpc_access_needs_subnets_and_groups() -> None:
    with pytest.raises(BuildPolicyError, match="subnet"):
        VpcAccess((), ("sg-0a1b2c3d4e5f60718",))
    with pytest.raises(BuildPolicyError, match="security_group_ids"):
        VpcAccess(("subnet-0a1b2c3d4e5f60718",), ("default",))


def test_policy_primitives_refuse_a_star_action_for_this_document_too() -> None:
    from components.render.iam import Statement, policy_document

    with pytest.raises(PolicyError):
        policy_document([Statement("X", ["ecr:*"], [REPO])])
