"""IAM documents of the Fargate service: each role gets exactly the resources it uses."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.iam.policy_validation import IAMPolicyDocumentValidator, IAMTrustPolicyDocumentValidator

from components.render.iam import PolicyError, actions_of
from components.render.iam_service import (
    ecs_infrastructure_role_policy,
    ecs_service_trust_policy,
    execution_role_policy,
    execution_role_trust_policy,
    lifecycle_hook_role_policy,
    secretsmanager_resource,
    task_role_policy,
    task_role_trust_policy,
)
from components.render.task_definition import AdotSidecar, HealthCheck, TaskDefinitionSpec

ACCOUNT = "123456789012"
REGION = "eu-west-1"
DIGEST = "ab" * 32
IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/orders-api@sha256:{DIGEST}"
REPO_ARN = f"arn:aws:ecr:{REGION}:111122223333:repository/orders-api"
ADOT_IMAGE = f"public.ecr.aws/aws-observability/aws-otel-collector@sha256:{DIGEST}"
SM = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret"
SSM = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter"
KMS_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
TG_BLUE = f"{ELB}:targetgroup/orders-api-prod-tg-blue/73e2d6bc24d8a067"
TG_GREEN = f"{ELB}:targetgroup/orders-api-prod-tg-green/83e2d6bc24d8a068"
LISTENER_443 = f"{ELB}:listener/app/orders-api-prod-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
LISTENER_8443 = f"{ELB}:listener/app/orders-api-prod-alb/50dc6c495c0c9188/a2f7dc8efc522ab3"
_ALB = "orders-api-prod-alb/50dc6c495c0c9188"
RULE_PROD = f"{ELB}:listener-rule/app/{_ALB}/f2f7dc8efc522ab2/9683b2d02a6cabee"
RULE_TEST = f"{ELB}:listener-rule/app/{_ALB}/a2f7dc8efc522ab3/1683b2d02a6cabef"
HOOK_FN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:orders-api-prod-smoke-hook"

#: The only statements allowed a "*" resource, each because AWS offers no narrower one.
STAR_SIDS = {"EcrAuthToken", "ELBReadOperations", "AdotWriteTraces"}


def make_spec(**overrides: Any) -> TaskDefinitionSpec:
    base: dict[str, Any] = {
        "service_name": "orders-api",
        "environment_name": "prod",
        "image": IMAGE,
        "cpu": 512,
        "memory": 1024,
        "cpu_architecture": "ARM64",
        "aspnetcore_environment": "Production",
        "account_id": ACCOUNT,
        "region": REGION,
        "log_group_name": "/ecs/prod/orders-api",
        "health_check": HealthCheck.probe_binary(),
    }
    base.update(overrides)
    return TaskDefinitionSpec(**base)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    matches = [s for s in document["Statement"] if s["Sid"] == sid]
    assert len(matches) == 1, f"{sid} not in {[s['Sid'] for s in document['Statement']]}"
    return matches[0]


def resources(document: dict[str, Any], sid: str) -> list[str]:
    value = statement(document, sid)["Resource"]
    return [value] if isinstance(value, str) else list(value)


def sids(document: dict[str, Any]) -> list[str]:
    return [s["Sid"] for s in document["Statement"]]


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM resource matching: '*' any run of characters, '?' exactly one."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def assert_valid(document: dict[str, Any]) -> None:
    """moto's IAM validator: the same syntax checks IAM's CreatePolicy applies."""
    IAMPolicyDocumentValidator(json.dumps(document)).validate()
    for s in document["Statement"]:
        if "*" in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]):
            assert s["Sid"] in STAR_SIDS, s


# ---- execution role ------------------------------------------------------------------


def test_minimal_execution_role_pulls_one_repository_and_writes_one_log_group() -> None:
    document = execution_role_policy(make_spec())
    assert_valid(document)
    assert sids(document) == ["EcrAuthToken", "EcrPullServiceImage", "WriteServiceLogs"]
    assert resources(document, "EcrAuthToken") == ["*"]
    assert statement(document, "EcrAuthToken")["Action"] == ["ecr:GetAuthorizationToken"]
    assert resources(document, "EcrPullServiceImage") == [REPO_ARN]
    assert statement(document, "EcrPullServiceImage")["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert resources(document, "WriteServiceLogs") == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/prod/orders-api",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/prod/orders-api:log-stream:*",
    ]
    assert not any(a.startswith(("secretsmanager:", "ssm:", "kms:")) for a in actions_of(document))


def test_execution_role_reads_exactly_the_referenced_secrets() -> None:
    spec = make_spec(
        secrets={
            "DB_PASSWORD": f"{SM}:orders/db-AbC123:password::",
            "API_KEY": f"{SM}:orders/payments",  # partial ARN
            "SMTP_PASSWORD": f"{SSM}/orders/prod/smtp",
            "SIGNING_KEY": "/orders/prod/signing",
            "LICENSE": "orders-license",
        }
    )
    document = execution_role_policy(spec, kms_key_arns=[KMS_KEY])
    assert_valid(document)
    assert resources(document, "ReadReferencedSecrets") == [
        f"{SM}:orders/payments-??????",
        f"{SM}:orders/db-AbC123",
    ]
    assert resources(document, "ReadReferencedParameters") == [
        f"{SSM}/orders-license",
        f"{SSM}/orders/prod/signing",
        f"{SSM}/orders/prod/smtp",
    ]
    assert statement(document, "ReadReferencedParameters")["Action"] == ["ssm:GetParameters"]
    decrypt = statement(document, "DecryptReferencedSecrets")
    assert decrypt["Action"] == ["kms:Decrypt"]
    assert decrypt["Resource"] == KMS_KEY
    assert decrypt["Condition"] == {
        "StringEquals": {
            "kms:ViaService": [
                f"secretsmanager.{REGION}.amazonaws.com",
                f"ssm.{REGION}.amazonaws.com",
            ]
        }
    }


def test_adot_config_parameter_is_readable_by_the_execution_role() -> None:
    spec = make_spec(adot=AdotSidecar(image=ADOT_IMAGE, config_ssm_parameter="/otel/config"))
    document = execution_role_policy(spec)
    assert resources(document, "ReadReferencedParameters") == [f"{SSM}/otel/config"]


def test_explicit_repository_arn_wins_and_is_checked() -> None:
    other = f"arn:aws:ecr:{REGION}:111122223333:repository/mirror/orders-api"
    document = execution_role_policy(make_spec(), repository_arn=other)
    assert resources(document, "EcrPullServiceImage") == [other]
    with pytest.raises(PolicyError, match="repository_arn: 'orders-api' is not an ECR"):
        execution_role_policy(make_spec(), repository_arn="orders-api")


def test_kms_alias_is_refused() -> None:
    alias = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/orders"
    with pytest.raises(PolicyError, match=r"kms_key_arns: .*alias/orders' is not a KMS key"):
        execution_role_policy(make_spec(), kms_key_arns=[alias])


@pytest.mark.parametrize(
    ("arn", "resource"),
    [
        (f"{SM}:db-AbC123", f"{SM}:db-AbC123"),
        (f"{SM}:db", f"{SM}:db-??????"),
        (f"{SM}:orders/db-prod", f"{SM}:orders/db-prod-??????"),  # 4 chars: not a suffix
    ],
)
def test_secretsmanager_resource(arn: str, resource: str) -> None:
    assert secretsmanager_resource(arn) == resource


_names = st.from_regex(r"\A[a-z][a-z0-9/_]{0,15}[a-z]\Z")


@given(
    names=st.lists(_names, min_size=1, max_size=4, unique=True),
    partial=st.lists(st.booleans(), min_size=4, max_size=4),
)
@settings(max_examples=60, deadline=None)
def test_secret_grants_cover_each_reference_and_nothing_beside(
    names: list[str], partial: list[bool]
) -> None:
    suffix = "Zx9Qw1"
    secrets = {}
    for i, name in enumerate(names):
        arn = f"{SM}:{name}" if partial[i] else f"{SM}:{name}-{suffix}"
        secrets[f"S{i}"] = arn
    document = execution_role_policy(make_spec(secrets=secrets))
    patterns = resources(document, "ReadReferencedSecrets")
    for name in names:
        real = f"{SM}:{name}-{suffix}"  # what Secrets Manager calls the secret
        assert any(iam_matches(p, real) for p in patterns)
        neighbour = f"{SM}:{name}x-{suffix}"  # another secret whose name extends this one
        assert not any(iam_matches(p, neighbour) for p in patterns)
    assert all("*" not in p for p in patterns)


# ---- task role -----------------------------------------------------------------------


def test_task_role_has_nothing_by_default() -> None:
    assert task_role_policy(make_spec()) is None


def test_task_role_writes_traces_when_adot_is_on() -> None:
    document = task_role_policy(make_spec(adot=AdotSidecar(image=ADOT_IMAGE)))
    assert document is not None
    assert_valid(document)
    assert actions_of(document) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


# ---- trust policies --------------------------------------------------------------------


def test_task_role_trust_is_limited_to_this_account_and_region() -> None:
    trust = task_role_trust_policy(account_id=ACCOUNT, region=REGION)
    IAMTrustPolicyDocumentValidator(json.dumps(trust)).validate()
    (only,) = trust["Statement"]
    assert only["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert only["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"},
    }


def test_execution_role_trust() -> None:
    trust = execution_role_trust_policy()
    IAMTrustPolicyDocumentValidator(json.dumps(trust)).validate()
    assert trust["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]


def test_ecs_service_trust() -> None:
    trust = ecs_service_trust_policy()
    IAMTrustPolicyDocumentValidator(json.dumps(trust)).validate()
    assert trust["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert trust["Statement"][0]["Action"] == "sts:AssumeRole"


# ---- ECS infrastructure role for load balancers ---------------------------------------


def infra() -> dict[str, Any]:
    return ecs_infrastructure_role_policy(
        target_group_arns=[TG_BLUE, TG_GREEN],
        listener_arns=[LISTENER_443, LISTENER_8443],
        listener_rule_arns=[RULE_PROD, RULE_TEST],
    )


def test_infrastructure_role_is_scoped_to_this_services_load_balancer() -> None:
    document = infra()
    assert_valid(document)
    assert resources(document, "TargetGroupOperations") == [TG_BLUE, TG_GREEN]
    assert resources(document, "ModifyServiceListeners") == [LISTENER_443, LISTENER_8443]
    assert resources(document, "ModifyServiceListenerRules") == [RULE_PROD, RULE_TEST]
    assert resources(document, "ELBReadOperations") == ["*"]
    assert all(
        a.startswith("elasticloadbalancing:Describe")
        for a in actions_of({"Statement": [statement(document, "ELBReadOperations")]})
    )


def test_infrastructure_role_has_the_managed_policys_actions_and_no_more() -> None:
    managed = {
        "elasticloadbalancing:DescribeListeners",
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:RegisterTargets",
        "elasticloadbalancing:DeregisterTargets",
        "elasticloadbalancing:ModifyListener",
        "elasticloadbalancing:ModifyRule",
    }
    assert set(actions_of(infra())) == managed


def test_infrastructure_role_refuses_mixed_up_arns() -> None:
    with pytest.raises(PolicyError, match=r"listener_rule_arns: .*targetgroup.* is not a"):
        ecs_infrastructure_role_policy(
            target_group_arns=[TG_BLUE, TG_GREEN],
            listener_arns=[LISTENER_443],
            listener_rule_arns=[TG_GREEN],
        )
    with pytest.raises(PolicyError, match="target_group_arns: at least one"):
        ecs_infrastructure_role_policy(
            target_group_arns=[], listener_arns=[LISTENER_443], listener_rule_arns=[RULE_PROD]
        )


def test_lifecycle_hook_role_invokes_only_the_hooks() -> None:
    document = lifecycle_hook_role_policy([HOOK_FN, f"{HOOK_FN}:live"])
    assert_valid(document)
    assert actions_of(document) == ["lambda:InvokeFunction"]
    assert resources(document, "InvokeLifecycleHooks") == [HOOK_FN, f"{HOOK_FN}:live"]
    with pytest.raises(PolicyError, match="is not a Lambda function ARN"):
        lifecycle_hook_role_policy([f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:*"])
