"""Corpus tests for the delivery guardrails (everything but images and secrets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.testing.policy_runner import UNKNOWN, Violation, evaluate, evaluate_report
from policy.guardrails.build import builds_images
from policy.guardrails.network import ssl_policy_support

ACCOUNT = "111122223333"
KEY_ARN = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0f0e0d0c-1111-2222-3333-444455556666"
IMAGE = "repo@sha256:" + "a" * 64


def resource(
    kind: str, inputs: dict[str, Any], name: str = "subject", **extra: Any
) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:prod::dotnet-delivery::{kind}::{name}",
        "type": kind,
        "name": name,
        "inputs": inputs,
        **extra,
    }


def found(resources: list[dict[str, Any]], policy: str, **kw: Any) -> list[Violation]:
    return [v for v in evaluate(resources, **kw) if v.policy == policy]


def names(violations: list[Violation]) -> list[str]:
    return [v.urn.rsplit("::", 1)[-1] for v in violations if v.urn]


# --------------------------------------------------------------------------------------
# ecr-scan-and-kms
# --------------------------------------------------------------------------------------
ECR = "aws:ecr/repository:Repository"
GOOD_ECR = {
    "imageTagMutability": "IMMUTABLE",
    "imageScanningConfiguration": {"scanOnPush": True},
    "encryptionConfigurations": [{"encryptionType": "KMS", "kmsKey": KEY_ARN}],
}


def test_ecr_compliant_repository_passes() -> None:
    assert found([resource(ECR, GOOD_ECR)], "ecr-scan-and-kms") == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"imageScanningConfiguration": None}, "not scanned on push"),
        ({"imageScanningConfiguration": {"scanOnPush": False}}, "not scanned on push"),
        ({"encryptionConfigurations": None}, "not set (AWS default AES256)"),
        ({"encryptionConfigurations": [{"encryptionType": "AES256"}]}, "encryption is AES256"),
    ],
)
def test_ecr_violations(change: dict[str, Any], fragment: str) -> None:
    inputs = {k: v for k, v in {**GOOD_ECR, **change}.items() if v is not None}
    violations = found([resource(ECR, inputs)], "ecr-scan-and-kms")
    assert len(violations) == 1 and fragment in violations[0].message
    assert violations[0].enforcement_level == "mandatory"


def test_ecr_enhanced_registry_scanning_and_customer_key_config() -> None:
    no_scan = {**GOOD_ECR, "imageScanningConfiguration": {"scanOnPush": False}}
    config = {"ecr-scan-and-kms": {"registryScanType": "ENHANCED"}}
    assert found([resource(ECR, no_scan)], "ecr-scan-and-kms", config=config) == []
    aws_key = {**GOOD_ECR, "encryptionConfigurations": [{"encryptionType": "KMS"}]}
    assert found([resource(ECR, aws_key)], "ecr-scan-and-kms") == []
    strict = {"ecr-scan-and-kms": {"requireCustomerManagedKey": True}}
    violations = found([resource(ECR, aws_key)], "ecr-scan-and-kms", config=strict)
    assert violations and "AWS managed key aws/ecr" in violations[0].message


# --------------------------------------------------------------------------------------
# lb-listener-https-tls
# --------------------------------------------------------------------------------------
LISTENER = "aws:lb/listener:Listener"
ALB_LISTENER = "aws:alb/listener:Listener"
FORWARD = [{"type": "forward", "targetGroupArn": "arn:tg"}]
REDIRECT = [
    {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
]


@pytest.mark.parametrize(
    ("name", "support"),
    [
        ("ELBSecurityPolicy-TLS13-1-2-2021-06", (2, True)),
        ("ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09", (2, True)),
        ("ELBSecurityPolicy-TLS13-1-3-2021-06", (3, True)),
        ("ELBSecurityPolicy-TLS13-1-0-2021-06", (0, True)),
        ("ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04", (1, True)),
        ("ELBSecurityPolicy-TLS-1-2-Ext-2018-06", (2, False)),
        ("ELBSecurityPolicy-FS-1-2-Res-2020-10", (2, False)),
        ("ELBSecurityPolicy-2016-08", (0, False)),
        ("ELBSecurityPolicy-FS-2018-06", (0, False)),
        ("my-custom-policy", None),
    ],
)
def test_ssl_policy_support(name: str, support: tuple[int, bool] | None) -> None:
    assert ssl_policy_support(name) == support


@pytest.mark.parametrize("kind", [LISTENER, ALB_LISTENER])
def test_https_listener_with_tls13_policy_and_http_redirect_pass(kind: str) -> None:
    https = resource(
        kind,
        {
            "protocol": "HTTPS",
            "port": 443,
            "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "defaultActions": FORWARD,
        },
        "https",
    )
    http = resource(kind, {"protocol": "HTTP", "port": 80, "defaultActions": REDIRECT}, "http")
    nlb = resource(kind, {"protocol": "TCP", "port": 5432, "defaultActions": FORWARD}, "tcp")
    assert found([https, http, nlb], "lb-listener-https-tls") == []


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ({"protocol": "HTTPS", "port": 443}, "sslPolicy is not set"),
        (
            {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-2016-08"},
            "still accepts TLS 1.0",
        ),
        (
            {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-TLS13-1-0-2021-06"},
            "still accepts TLS 1.0",
        ),
        (
            {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-TLS-1-2-2017-01"},
            "does not offer TLS 1.3",
        ),
        (
            {"protocol": "TLS", "port": 443, "sslPolicy": "custom"},
            "not a known ELB security policy",
        ),
        ({"protocol": "HTTP", "port": 80, "defaultActions": FORWARD}, "default action 'forward'"),
        ({"port": 80, "defaultActions": FORWARD}, "not set (HTTP by default)"),
        (
            {
                "protocol": "HTTP",
                "port": 80,
                "defaultActions": [{"type": "redirect", "redirect": {"protocol": "#{protocol}"}}],
            },
            "does not redirect to HTTPS",
        ),
        ({"protocol": "HTTP", "port": 80, "defaultActions": []}, "no default action"),
    ],
)
def test_listener_violations(inputs: dict[str, Any], fragment: str) -> None:
    violations = found([resource(ALB_LISTENER, inputs)], "lb-listener-https-tls")
    assert len(violations) == 1
    assert fragment in violations[0].message
    assert "(port " in violations[0].message and "Fix:" in violations[0].message


def test_listener_tls_config() -> None:
    tls12 = resource(
        LISTENER,
        {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-TLS-1-2-2017-01"},
    )
    relaxed = {"lb-listener-https-tls": {"requireTls13Support": False}}
    assert found([tls12], "lb-listener-https-tls", config=relaxed) == []
    allowed = {
        "lb-listener-https-tls": {"allowedSslPolicies": ["ELBSecurityPolicy-TLS-1-2-2017-01"]}
    }
    assert found([tls12], "lb-listener-https-tls", config=allowed) == []
    tls13_only = {"lb-listener-https-tls": {"minimumTlsVersion": "1.3"}}
    prod = resource(
        LISTENER,
        {"protocol": "HTTPS", "port": 443, "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"},
    )
    assert found([prod], "lb-listener-https-tls", config=tls13_only)


def test_unknown_ssl_policy_is_not_applicable() -> None:
    report = evaluate_report(
        [resource(LISTENER, {"protocol": "HTTPS", "port": 443, "sslPolicy": UNKNOWN})]
    )
    assert not [v for v in report.violations if v.policy == "lb-listener-https-tls"]
    assert [n for n in report.not_applicable if n.policy == "lb-listener-https-tls"]


# --------------------------------------------------------------------------------------
# alb-access-logs-drop-invalid-headers
# --------------------------------------------------------------------------------------
LB = "aws:lb/loadBalancer:LoadBalancer"


def test_alb_attributes() -> None:
    good = resource(
        LB,
        {
            "loadBalancerType": "application",
            "dropInvalidHeaderFields": True,
            "accessLogs": {"bucket": "logs", "enabled": True},
        },
        "good",
    )
    default_type = resource(
        "aws:alb/loadBalancer:LoadBalancer", {"accessLogs": {"bucket": "logs"}}, "bare"
    )
    nlb = resource(LB, {"loadBalancerType": "network"}, "nlb")
    violations = found([good, default_type, nlb], "alb-access-logs-drop-invalid-headers")
    assert names(violations) == ["bare", "bare"]
    assert {v.enforcement_level for v in violations} == {"advisory"}
    text = " ".join(v.message for v in violations)
    assert "access logs are off" in text and "dropInvalidHeaderFields = true" in text


# --------------------------------------------------------------------------------------
# codedeploy-ecs-auto-rollback
# --------------------------------------------------------------------------------------
GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
GOOD_GROUP = {
    "appName": "orders",
    "deploymentGroupName": "orders-prod",
    "ecsService": {"clusterName": "orders-prod", "serviceName": "orders-api"},
    "autoRollbackConfiguration": {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    },
    "alarmConfiguration": {"enabled": True, "alarms": ["orders-prod-5xx", "orders-prod-p99"]},
}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"autoRollbackConfiguration": None}, "automatic rollback is off"),
        ({"autoRollbackConfiguration": {"enabled": False}}, "automatic rollback is off"),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}},
            "does not roll back on DEPLOYMENT_STOP_ON_ALARM",
        ),
        ({"alarmConfiguration": None}, "alarm monitoring is off"),
        ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "lists 0 alarm(s)"),
    ],
)
def test_codedeploy_violations(change: dict[str, Any], fragment: str) -> None:
    inputs = {k: v for k, v in {**GOOD_GROUP, **change}.items() if v is not None}
    violations = found([resource(GROUP, inputs)], "codedeploy-ecs-auto-rollback")
    assert len(violations) == 1 and fragment in violations[0].message


def test_codedeploy_good_group_and_non_ecs_group_pass() -> None:
    ec2 = resource(GROUP, {"appName": "legacy", "deploymentGroupName": "x"}, "ec2")
    assert found([resource(GROUP, GOOD_GROUP), ec2], "codedeploy-ecs-auto-rollback") == []
    strict = {"codedeploy-ecs-auto-rollback": {"minimumAlarms": 3}}
    assert found([resource(GROUP, GOOD_GROUP)], "codedeploy-ecs-auto-rollback", config=strict)


# --------------------------------------------------------------------------------------
# ecs-blue-green-rollback-alarms
# --------------------------------------------------------------------------------------
SERVICE = "aws:ecs/service:Service"
ALARMS = {"alarmNames": ["orders-prod-5xx"], "enable": True, "rollback": True}


def service(**inputs: Any) -> dict[str, Any]:
    return resource(SERVICE, {"name": "orders-api", "cluster": "orders-prod", **inputs})


@pytest.mark.parametrize("strategy", ["BLUE_GREEN", "CANARY", "LINEAR"])
def test_native_blue_green_needs_alarms_that_roll_back(strategy: str) -> None:
    config = {"strategy": strategy, "bakeTimeInMinutes": "5"}
    good = service(
        deploymentController={"type": "ECS"}, deploymentConfiguration=config, alarms=ALARMS
    )
    assert found([good], "ecs-blue-green-rollback-alarms") == []
    for alarms, fragment in [
        (None, "has no deployment alarms"),
        ({**ALARMS, "rollback": False}, "does not roll back on alarm"),
        ({**ALARMS, "enable": False}, "switched off"),
        ({**ALARMS, "alarmNames": []}, "lists no alarm names"),
    ]:
        inputs: dict[str, Any] = {"deploymentConfiguration": config}
        if alarms is not None:
            inputs["alarms"] = alarms
        violations = found([service(**inputs)], "ecs-blue-green-rollback-alarms")
        assert len(violations) == 1 and fragment in violations[0].message
        assert strategy in violations[0].message


def test_rolling_and_codedeploy_services_are_left_alone_unless_configured() -> None:
    rolling = service()
    codedeploy = service(deploymentController={"type": "CODE_DEPLOY"})
    assert found([rolling, codedeploy], "ecs-blue-green-rollback-alarms") == []
    config = {"ecs-blue-green-rollback-alarms": {"rollingRequiresRollback": True}}
    assert found([rolling], "ecs-blue-green-rollback-alarms", config=config)
    breaker = service(deploymentCircuitBreaker={"enable": True, "rollback": True})
    assert found([breaker], "ecs-blue-green-rollback-alarms", config=config) == []
    bg = {"ecs-blue-green-rollback-alarms": {"requireBlueGreen": True}}
    violations = found([rolling, codedeploy], "ecs-blue-green-rollback-alarms", config=bg)
    assert len(violations) == 1 and "ROLLING strategy" in violations[0].message


# --------------------------------------------------------------------------------------
# codedeploy-service-has-deployment-group (stack)
# --------------------------------------------------------------------------------------
CLUSTER_ARN = f"arn:aws:ecs:eu-west-1:{ACCOUNT}:cluster/orders-prod"


def test_codedeploy_service_with_matching_group_passes() -> None:
    svc = service(cluster=CLUSTER_ARN, deploymentController={"type": "CODE_DEPLOY"})
    group = resource(GROUP, GOOD_GROUP, "group")
    assert found([svc, group], "codedeploy-service-has-deployment-group") == []


def test_codedeploy_service_without_group_fails_on_the_service() -> None:
    svc = service(cluster=CLUSTER_ARN, deploymentController={"type": "CODE_DEPLOY"})
    elsewhere = resource(
        GROUP,
        {**GOOD_GROUP, "ecsService": {"clusterName": "other", "serviceName": "orders-api"}},
        "group",
    )
    violations = found([svc, elsewhere], "codedeploy-service-has-deployment-group")
    assert len(violations) == 1
    assert violations[0].urn == svc["urn"]
    assert "service 'orders-api' in cluster 'orders-prod'" in violations[0].message


def test_stack_policy_prefers_outputs_and_handles_unknown_targets() -> None:
    svc = resource(
        SERVICE,
        {"cluster": CLUSTER_ARN, "deploymentController": {"type": "CODE_DEPLOY"}},
        "svc",
        outputs={"name": "orders-api-3f2a"},
    )
    group = resource(
        GROUP,
        {
            **GOOD_GROUP,
            "ecsService": {"clusterName": "orders-prod", "serviceName": "orders-api-3f2a"},
        },
    )
    assert found([svc, group], "codedeploy-service-has-deployment-group") == []
    pending = resource(
        GROUP, {**GOOD_GROUP, "ecsService": {"clusterName": "orders-prod", "serviceName": UNKNOWN}}
    )
    report = evaluate_report([svc, pending])
    assert not [
        v for v in report.violations if v.policy == "codedeploy-service-has-deployment-group"
    ]
    assert [
        n for n in report.not_applicable if n.policy == "codedeploy-service-has-deployment-group"
    ]


def test_stack_policy_exceptions_apply_to_reported_urns() -> None:
    svc = service(deploymentController={"type": "CODE_DEPLOY"})
    config = {
        "codedeploy-service-has-deployment-group": {
            "exceptions": [
                {"namePattern": "subj*", "reason": "deployed by the platform team's pipeline"}
            ]
        }
    }
    assert found([svc], "codedeploy-service-has-deployment-group")
    assert found([svc], "codedeploy-service-has-deployment-group", config=config) == []


# --------------------------------------------------------------------------------------
# codepipeline-artifacts-kms
# --------------------------------------------------------------------------------------
PIPELINE = "aws:codepipeline/pipeline:Pipeline"


@pytest.mark.parametrize(
    ("store", "fragment"),
    [
        ({"location": "artifacts", "type": "S3"}, "has no encryptionKey"),
        (
            {
                "location": "artifacts",
                "type": "S3",
                "encryptionKey": {"type": "KMS", "id": "alias/aws/s3"},
            },
            "AWS managed key",
        ),
        (
            {"location": "artifacts", "type": "S3", "encryptionKey": {"type": "KMS"}},
            "not a KMS key with an id",
        ),
        (None, "has no artifact store"),
    ],
)
def test_pipeline_artifact_violations(store: dict[str, Any] | None, fragment: str) -> None:
    stores = [store] if store else []
    violations = found(
        [resource(PIPELINE, {"artifactStores": stores})], "codepipeline-artifacts-kms"
    )
    assert len(violations) == 1 and fragment in violations[0].message


def test_pipeline_with_customer_keys_in_every_region_passes_and_each_store_is_judged() -> None:
    good = {
        "location": "a",
        "type": "S3",
        "region": "eu-west-1",
        "encryptionKey": {"type": "KMS", "id": KEY_ARN},
    }
    bad = {"location": "b", "type": "S3", "region": "us-east-1"}
    assert (
        found([resource(PIPELINE, {"artifactStores": [good]})], "codepipeline-artifacts-kms") == []
    )
    violations = found(
        [resource(PIPELINE, {"artifactStores": [good, bad]})], "codepipeline-artifacts-kms"
    )
    assert len(violations) == 1 and "'b' (us-east-1)" in violations[0].message


# --------------------------------------------------------------------------------------
# codebuild-privileged-only-for-image-builds
# --------------------------------------------------------------------------------------
PROJECT = "aws:codebuild/project:Project"
IMAGE_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - docker buildx build --platform linux/amd64,linux/arm64 --push -t "$REPO:$TAG" .
"""
TEST_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      # docker build is not needed here
      - dotnet test --logger trx
"""


def project(buildspec: str | None, privileged: bool = True, **extra: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "CODEPIPELINE"}
    if buildspec is not None:
        source["buildspec"] = buildspec
    return resource(
        PROJECT,
        {
            "serviceRole": f"arn:aws:iam::{ACCOUNT}:role/build",
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "privilegedMode": privileged,
            },
            "source": source,
            **extra,
        },
    )


@pytest.mark.parametrize(
    ("line", "builds"),
    [
        ("- docker build -t x .", True),
        ("- docker buildx imagetools create -t x a b", True),
        ("- docker image build .", True),
        ("- docker compose build", True),
        ("- buildah bud -t x .", True),
        ("- podman build .", True),
        ("- docker push x", False),
        ("# docker build -t x .", False),
        ("- dotnet build", False),
    ],
)
def test_image_build_detection(line: str, builds: bool) -> None:
    assert builds_images(f"phases:\n  build:\n    commands:\n      {line}\n") is builds


def test_privileged_projects() -> None:
    assert found([project(IMAGE_BUILDSPEC)], "codebuild-privileged-only-for-image-builds") == []
    assert (
        found(
            [project(TEST_BUILDSPEC, privileged=False)],
            "codebuild-privileged-only-for-image-builds",
        )
        == []
    )
    no_build = found([project(TEST_BUILDSPEC)], "codebuild-privileged-only-for-image-builds")
    assert no_build and "builds no container image" in no_build[0].message
    file_spec = found([project("ci/buildspec.yml")], "codebuild-privileged-only-for-image-builds")
    assert file_spec and "the file 'ci/buildspec.yml'" in file_spec[0].message
    default_spec = found([project(None)], "codebuild-privileged-only-for-image-builds")
    assert default_spec and "buildspec.yml" in default_spec[0].message
    tagged = project("ci/buildspec.yml", tags={"builds-images": "true"})
    assert found([tagged], "codebuild-privileged-only-for-image-builds") == []
    wrong_value = project("ci/buildspec.yml", tags={"builds-images": "no"})
    assert found([wrong_value], "codebuild-privileged-only-for-image-builds")


# --------------------------------------------------------------------------------------
# iam-no-wildcard-actions
# --------------------------------------------------------------------------------------
def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


ALLOW_S3 = {
    "Sid": "Read",
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:List*"],
    "Resource": "arn:aws:s3:::b/*",
}


@pytest.mark.parametrize(
    ("kind", "prop"),
    [
        ("aws:iam/policy:Policy", "policy"),
        ("aws:iam/rolePolicy:RolePolicy", "policy"),
        ("aws:s3/bucketPolicy:BucketPolicy", "policy"),
        ("aws:kms/key:Key", "policy"),
        ("aws:iam/role:Role", "assumeRolePolicy"),
    ],
)
def test_wildcard_actions_fail_everywhere(kind: str, prop: str) -> None:
    bad = doc(ALLOW_S3, {"Sid": "All", "Effect": "Allow", "Action": "S3:*", "Resource": "*"})
    violations = found([resource(kind, {prop: bad})], "iam-no-wildcard-actions")
    assert len(violations) == 1
    assert "statement 'All' allows 'S3:*'" in violations[0].message
    assert f"{prop} " in violations[0].message
    assert found([resource(kind, {prop: doc(ALLOW_S3)})], "iam-no-wildcard-actions") == []


def test_iam_documents_edge_cases() -> None:
    role = resource(
        "aws:iam/role:Role",
        {
            "assumeRolePolicy": doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
            "inlinePolicies": [
                {"name": "ok", "policy": doc(ALLOW_S3)},
                {
                    "name": "star",
                    "policy": doc({"Effect": "Allow", "Action": ["*"], "Resource": "*"}),
                },
                {
                    "name": "not-action",
                    "policy": doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
                },
            ],
        },
        "role",
    )
    deny = resource(
        "aws:s3/bucketPolicy:BucketPolicy",
        {"policy": doc({"Effect": "Deny", "Action": "s3:*", "Principal": "*", "Resource": "*"})},
        "deny",
    )
    as_object = resource(
        "aws:iam/policy:Policy",
        {"policy": {"Statement": {"Effect": "Allow", "Action": "*"}}},
        "obj",
    )
    garbage = resource("aws:iam/policy:Policy", {"policy": "{not json"}, "garbage")
    violations = found([role, deny, as_object, garbage], "iam-no-wildcard-actions")
    messages = [v.message for v in violations]
    assert names(violations) == ["role", "role", "obj", "garbage"]
    assert "inlinePolicies['star'] statement #1 allows '*'" in messages[0]
    assert "inlinePolicies['not-action']" in messages[1] and "NotAction" in messages[1]
    assert "not valid JSON" in messages[3]


def test_iam_allowed_actions_config() -> None:
    key = resource(
        "aws:kms/key:Key",
        {
            "policy": doc(
                {
                    "Sid": "Root",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::1:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            )
        },
    )
    assert found([key], "iam-no-wildcard-actions")
    config = {"iam-no-wildcard-actions": {"allowedActions": ["KMS:*"]}}
    assert found([key], "iam-no-wildcard-actions", config=config) == []


IAM = "iam-no-wildcard-actions"


def allow(action: Any, **extra: Any) -> str:
    return doc({"Sid": "S", "Effect": "Allow", "Action": action, "Resource": "*", **extra})


@pytest.mark.parametrize(
    ("action", "reach"),
    [
        ("*", "every action of every service"),
        ("**", "every action of every service"),
        ("?*", "every action of every service"),
        ("s3:*", "every action of s3"),
        ("s3:**", "every action of s3"),
        ("s3:?*", "every action of s3"),
        ("s3:*?", "every action of s3"),
        (" S3:* ", "every action of S3"),
        ("*:*", "actions of every service"),
        ("*:Get*", "actions of every service"),
        ("*:GetObject", "actions of every service"),
        ("s*:GetObject", "actions of more than one service"),
        ("?3:List*", "actions of more than one service"),
        ("*GetObject", "actions of any service"),
        ("iam:*Policy*", "iam actions of every verb"),
        ("s3:*Object", "s3 actions of every verb"),
    ],
)
def test_wildcards_reaching_a_whole_service_or_several_fail(action: str, reach: str) -> None:
    violations = found([resource("aws:iam/policy:Policy", {"policy": allow(action)})], IAM)
    assert len(violations) == 1
    assert f"statement 'S' allows {action!r} ({reach}" in violations[0].message


@pytest.mark.parametrize(
    "action",
    ["s3:GetObject", "s3:Get*", "ecr:Describe*", "s3:Get?bject", "logs:Put*", ["s3:List*"]],
)
def test_exact_actions_and_prefix_patterns_pass_by_default(action: Any) -> None:
    policy = resource("aws:iam/policy:Policy", {"policy": allow(action)})
    assert found([policy], IAM) == []


def test_forbid_partial_wildcards_refuses_prefix_patterns_only() -> None:
    policy = resource("aws:iam/policy:Policy", {"policy": allow(["s3:Get*", "s3:PutObject"])})
    config = {IAM: {"forbidPartialWildcards": True}}
    violations = found([policy], IAM, config=config)
    assert len(violations) == 1
    assert "'s3:Get*' (a partial wildcard; forbidPartialWildcards is on)" in violations[0].message
    assert "PutObject" not in violations[0].message
    # allowedActions still wins for an exact pattern
    config = {IAM: {"forbidPartialWildcards": True, "allowedActions": ["s3:get*"]}}
    assert found([policy], IAM, config=config) == []


def test_not_action_with_allow_stays_a_violation_even_when_narrow() -> None:
    policy = resource(
        "aws:iam/policy:Policy",
        {"policy": doc({"Effect": "Allow", "NotAction": ["s3:DeleteBucket"], "Resource": "*"})},
    )
    violations = found([policy], IAM)
    assert len(violations) == 1 and "NotAction" in violations[0].message
    assert found([policy], IAM, config={IAM: {"allowNotAction": True}}) == []
    deny = resource(
        "aws:iam/policy:Policy",
        {"policy": doc({"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"})},
    )
    assert found([deny], IAM) == []


@pytest.mark.parametrize(
    "kind",
    [
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:kms/key:Key",
        "aws:kms/keyPolicy:KeyPolicy",
    ],
)
def test_resource_policies_are_judged_like_iam_policies(kind: str) -> None:
    principal = {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/app"}}
    bad = resource(kind, {"policy": allow("s3:**", **principal)})
    violations = found([bad], IAM)
    assert len(violations) == 1 and "policy statement 'S' allows 's3:**'" in violations[0].message
    good = resource(kind, {"policy": allow(["s3:GetObject", "kms:Decrypt"], **principal)})
    assert found([good], IAM) == []


def test_kms_root_statement_needs_allowed_actions_but_named_key_actions_pass() -> None:
    root = {"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    key = resource("aws:kms/key:Key", {"policy": allow("kms:*", **root)})
    assert found([key], IAM)
    assert found([key], IAM, config={IAM: {"allowedActions": ["kms:*"]}}) == []
    # allowedActions is exact: 'kms:*' does not excuse '*:*' or 'kms:**'
    broader = resource("aws:kms/key:Key", {"policy": allow(["kms:**", "*:*"], **root)})
    assert len(found([broader], IAM, config={IAM: {"allowedActions": ["kms:*"]}})) == 1


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.mark.parametrize(
    ("kind", "inputs"),
    [
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "r", "policyArn": ADMIN}),
        ("aws:iam/userPolicyAttachment:UserPolicyAttachment", {"user": "u", "policyArn": ADMIN}),
        (
            "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
            {"group": "g", "policyArn": ADMIN},
        ),
        ("aws:iam/policyAttachment:PolicyAttachment", {"roles": ["r"], "policyArn": ADMIN}),
        (
            "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
            {"roleName": "r", "policyArns": [ADMIN]},
        ),
        ("aws:iam/role:Role", {"assumeRolePolicy": doc(), "managedPolicyArns": [ADMIN]}),
    ],
)
def test_attaching_aws_managed_admin_policies_fails(kind: str, inputs: dict[str, Any]) -> None:
    violations = found([resource(kind, inputs)], IAM)
    assert len(violations) == 1
    message = violations[0].message
    assert "attaches the AWS managed policy 'AdministratorAccess'" in message
    assert "customer managed policy" in message


@pytest.mark.parametrize(
    ("arn", "bad"),
    [
        ("arn:aws:iam::aws:policy/PowerUserAccess", True),
        ("arn:aws:iam::aws:policy/IAMFullAccess", True),
        ("arn:aws-us-gov:iam::aws:policy/AdministratorAccess", True),
        ("arn:aws:iam::aws:policy/administratoraccess", True),
        ("arn:aws:iam::aws:policy/job-function/AdministratorAccess", True),
        ("arn:aws:iam::aws:policy/AmazonS3FullAccess", False),  # only with '*FullAccess'
        ("arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS", False),
        ("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy", False),
        ("arn:aws:iam::aws:policy/AdministratorAccess-Amplify", False),
        (f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess", False),  # customer managed
    ],
)
def test_managed_policy_denylist_default(arn: str, bad: bool) -> None:
    attachment = resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "r", "policyArn": arn}
    )
    assert bool(found([attachment], IAM)) is bad


def test_managed_policy_denylist_is_configurable() -> None:
    s3_full = "arn:aws:iam::aws:policy/AmazonS3FullAccess"
    role = resource(
        "aws:iam/role:Role",
        {"assumeRolePolicy": doc(), "managedPolicyArns": [s3_full, ADMIN]},
    )
    config = {IAM: {"forbiddenManagedPolicies": ["*FullAccess"]}}
    violations = found([role], IAM, config=config)
    assert len(violations) == 1 and "'AmazonS3FullAccess'" in violations[0].message
    config = {IAM: {"forbiddenManagedPolicies": ["AdministratorAccess", "*fullaccess"]}}
    assert len(found([role], IAM, config=config)) == 2


def test_unknown_attachment_arn_is_not_applicable() -> None:
    attachment = resource(
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "r", "policyArn": UNKNOWN}
    )
    report = evaluate_report([attachment])
    assert not [v for v in report.violations if v.policy == IAM]
    assert [n for n in report.not_applicable if n.policy == IAM]


# --------------------------------------------------------------------------------------
# ecs-task-non-root-read-only (advisory)
# --------------------------------------------------------------------------------------
def task(**container: Any) -> dict[str, Any]:
    return resource(
        "aws:ecs/taskDefinition:TaskDefinition",
        {"containerDefinitions": json.dumps([{"name": "api", "image": IMAGE, **container}])},
    )


@pytest.mark.parametrize(
    ("container", "fragments"),
    [
        ({"user": "1654", "readonlyRootFilesystem": True}, []),
        ({"user": "app:app", "readonlyRootFilesystem": True}, []),
        ({"user": "root", "readonlyRootFilesystem": True}, ["runs as root"]),
        ({"user": "0:0", "readonlyRootFilesystem": True}, ["runs as root"]),
        ({"readonlyRootFilesystem": True}, ["sets no user"]),
        ({"user": "1654"}, ["writable root filesystem"]),
        (
            {"user": "root", "readonlyRootFilesystem": False},
            ["runs as root", "writable root filesystem"],
        ),
    ],
)
def test_non_root_read_only(container: dict[str, Any], fragments: list[str]) -> None:
    violations = found([task(**container)], "ecs-task-non-root-read-only")
    assert len(violations) == len(fragments)
    for v, fragment in zip(violations, fragments, strict=True):
        assert fragment in v.message and v.enforcement_level == "advisory"


# --------------------------------------------------------------------------------------
# log-group-retention
# --------------------------------------------------------------------------------------
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


@pytest.mark.parametrize(
    ("inputs", "config", "fragment"),
    [
        ({"retentionInDays": 30}, None, None),
        ({}, None, "not set"),
        ({"retentionInDays": 0}, None, "not set"),
        ({"retentionInDays": 7}, {"minimumDays": 30}, "is 7, below 30"),
        ({"retentionInDays": 3653}, {"maximumDays": 365}, "above the maximum of 365"),
    ],
)
def test_log_group_retention(
    inputs: dict[str, Any], config: dict[str, Any] | None, fragment: str | None
) -> None:
    pack_config = {"log-group-retention": config} if config else None
    violations = found([resource(LOG_GROUP, inputs)], "log-group-retention", config=pack_config)
    if fragment is None:
        assert violations == []
    else:
        assert len(violations) == 1 and fragment in violations[0].message
