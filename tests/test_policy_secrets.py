"""Corpus tests: ``account-local-secrets``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.testing.policy_runner import UNKNOWN, Violation, evaluate, evaluate_report
from policy.guardrails.secrets import is_credential_name, plaintext_credential, reference_problem

POLICY = "account-local-secrets"
ACCOUNT = "111122223333"
OTHER = "444455556666"
EXEC_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-prod-execution"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
CODEBUILD = "aws:codebuild/project:Project"
IMAGE = "repo@sha256:" + "a" * 64


def resource(kind: str, inputs: dict[str, Any], name: str = "subject") -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:prod::dotnet-delivery::{kind}::{name}",
        "type": kind,
        "name": name,
        "inputs": inputs,
    }


def task(container: dict[str, Any], role: Any = EXEC_ROLE) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "family": "orders",
        "containerDefinitions": json.dumps([{"name": "api", "image": IMAGE, **container}]),
    }
    if role is not None:
        inputs["executionRoleArn"] = role
    return resource(TASK, inputs)


def secrets_task(*value_from: str, role: Any = EXEC_ROLE) -> dict[str, Any]:
    return task(
        {"secrets": [{"name": f"S{i}", "valueFrom": v} for i, v in enumerate(value_from)]},
        role=role,
    )


def codebuild(variables: list[dict[str, Any]], **environment: Any) -> dict[str, Any]:
    return resource(
        CODEBUILD,
        {
            "serviceRole": f"arn:aws:iam::{ACCOUNT}:role/build",
            "environment": {
                "computeType": "BUILD_GENERAL1_SMALL",
                "image": "aws/codebuild/standard:7.0",
                "type": "LINUX_CONTAINER",
                "environmentVariables": variables,
                **environment,
            },
        },
    )


def found(resources: list[dict[str, Any]], **kw: Any) -> list[Violation]:
    return [v for v in evaluate(resources, **kw) if v.policy == POLICY]


LOCAL_REFERENCES = [
    "/orders/prod/db-password",
    "orders-db-password",
    f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/orders/prod/db-password",
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:orders/db-AbCdEf",
    # partial ARN (no random suffix) and JSON-key / version suffixes
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:orders/db",
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:orders/db-AbCdEf:password::",
    f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:orders/db-AbCdEf:password:AWSCURRENT:",
]


@pytest.mark.parametrize("value_from", LOCAL_REFERENCES)
def test_local_secret_references_pass(value_from: str) -> None:
    assert found([secrets_task(value_from)]) == []


@pytest.mark.parametrize(
    "value_from",
    [
        f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/orders/prod/db-password",
        f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:orders/db-AbCdEf",
        f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:orders/db",
        f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:orders/db-AbCdEf:password::",
    ],
)
def test_other_account_references_fail(value_from: str) -> None:
    violations = found([secrets_task(LOCAL_REFERENCES[2], value_from)])
    assert len(violations) == 1
    message = violations[0].message
    assert f"account {OTHER}, not in {ACCOUNT}" in message
    assert "container 'api' secret 'S1'" in message
    assert "task execution role" in message and "Fix:" in message


@pytest.mark.parametrize(
    ("value_from", "fragment"),
    [
        ("arn:aws:ssm:eu-west-1", "not a complete ARN"),
        ("arn:aws:ssm:eu-west-1::parameter/x", "does not name a 12-digit account"),
        (f"arn:aws:s3:::{ACCOUNT}-bucket/secret.txt", "not a Secrets Manager secret or SSM"),
        ("   ", "is empty"),
    ],
)
def test_malformed_references_fail(value_from: str, fragment: str) -> None:
    violations = found([secrets_task(value_from)])
    assert len(violations) == 1 and fragment in violations[0].message


def test_repository_credentials_and_log_secret_options_are_checked() -> None:
    other = f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:dockerhub-AbCdEf"
    container = {
        "repositoryCredentials": {"credentialsParameter": other},
        "logConfiguration": {
            "logDriver": "awsfirelens",
            "secretOptions": [{"name": "apikey", "valueFrom": other}],
        },
    }
    messages = [v.message for v in found([task(container)])]
    assert len(messages) == 2
    assert any("repositoryCredentials" in m for m in messages)
    assert any("log secretOption 'apikey'" in m for m in messages)


def test_config_account_overrides_the_role_account() -> None:
    ref = f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/x"
    config = {POLICY: {"accountId": OTHER}}
    assert found([secrets_task(ref)], config=config) == []
    violations = found([secrets_task(LOCAL_REFERENCES[2])], config=config)
    assert violations and "the accountId set in the policy config" in violations[0].message


def test_missing_or_non_arn_role_cannot_vouch_for_an_account() -> None:
    ref = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/x"
    no_role = found([secrets_task(ref, role=None)])
    assert no_role and "no task execution role is set" in no_role[0].message
    named = found([secrets_task(ref, role="orders-execution")])
    assert named and "is not an ARN with an account" in named[0].message
    # a bare name needs no account at all
    assert found([secrets_task("/orders/db", role=None)]) == []


def test_unknown_role_is_not_applicable_but_plain_findings_still_count() -> None:
    ref = f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/x"
    container = {
        "environment": [{"name": "DB_PASSWORD", "value": "hunter2"}],
        "secrets": [{"name": "A", "valueFrom": ref}],
    }
    report = evaluate_report([task(container, role=UNKNOWN)])
    mine = [v for v in report.violations if v.policy == POLICY]
    assert len(mine) == 1 and "DB_PASSWORD" in mine[0].message
    unknown = [n for n in report.not_applicable if n.policy == POLICY]
    assert unknown and "executionRoleArn" in unknown[0].reason
    # once the role is known, the cross-account reference is caught
    assert len(found([task(container)])) == 2


def test_unknown_role_does_not_matter_for_bare_names() -> None:
    report = evaluate_report([secrets_task("/orders/db", role=UNKNOWN)])
    assert not [n for n in report.not_applicable if n.policy == POLICY]


# --------------------------------------------------------------------------------------
# plain environment variables
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value", "bad"),
    [
        ("DB_PASSWORD", "hunter2", True),
        ("dbPassword", "hunter2", True),
        ("Stripe__ApiKey", "sk_live_abc", True),
        ("GITHUB_TOKEN", "ghp_abc", True),
        ("CLIENT_SECRET", "abc", True),
        ("AWS_ACCESS_KEY", "x", True),
        ("DB_PWD", "x", True),
        ("ANYTHING", "AKIAIOSFODNN7EXAMPLE", True),
        ("ConnectionStrings__Orders", "Host=db;Username=app;Password=s3cret", True),
        ("ConnectionStrings__Orders", "Server=db;Database=o;User Id=a;Pwd=s3cret;", True),
        ("REDIS_URL", "redis://user:pa55@cache:6379/0", True),
        ("TLS_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMII...", True),
        ("DB_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x", False),
        ("DB_PASSWORD", "arn:aws:secretsmanager:eu-west-1:1:secret:x", False),
        ("TOKEN_ENDPOINT", "https://login.example.com/token", False),
        ("JWT_TOKEN_LIFETIME", "3600", False),
        ("REQUIRE_TOKEN", "true", False),
        ("DB_PASSWORD", "", False),
        ("PWD", "/app", False),
        ("ConnectionStrings__Orders", "Host=db;Database=o;Integrated Security=true", False),
        ("ConnectionStrings__Orders", "Host=db;Password=;", False),
        ("ASPNETCORE_ENVIRONMENT", "Production", False),
        ("SERVICE_URL", "https://api.example.com/v1", False),
    ],
)
def test_plaintext_credential_detection(name: str, value: str, bad: bool) -> None:
    assert (plaintext_credential(name, value) is not None) is bad


def test_credential_names() -> None:
    assert is_credential_name("OrdersApiKey")
    assert not is_credential_name("OrdersApiKeyHeader")
    assert not is_credential_name("KEY_VAULT_NAME")


def test_plain_credentials_in_ecs_codebuild_and_lambda_fail_without_echoing_values() -> None:
    ecs = task({"environment": [{"name": "DB_PASSWORD", "value": "hunter2-ecs"}]})
    cb = codebuild([{"name": "NPM_TOKEN", "value": "hunter2-cb", "type": "PLAINTEXT"}])
    cb_default_type = codebuild([{"name": "SONAR_TOKEN", "value": "hunter2-cb2"}])
    fn = resource(
        "aws:lambda/function:Function",
        {"environment": {"variables": {"SLACK_WEBHOOK_TOKEN": "hunter2-fn"}}},
        "notifier",
    )
    violations = found([ecs, cb, cb_default_type, fn])
    assert len(violations) == 4
    for v in violations:
        assert "hunter2" not in v.message
        assert "Secrets Manager" in v.message


def test_allowed_environment_names_silence_the_name_test_only() -> None:
    ecs = task(
        {
            "environment": [
                {"name": "FEATURE_TOKEN_BUCKET", "value": "orders"},
                {"name": "FEATURE_TOKEN_KEYS", "value": "AKIAIOSFODNN7EXAMPLE"},
            ]
        }
    )
    assert len(found([ecs])) == 2
    config = {POLICY: {"allowedEnvironmentNames": ["FEATURE_TOKEN_*"]}}
    remaining = found([ecs], config=config)
    assert len(remaining) == 1 and "AWS access key" in remaining[0].message


# --------------------------------------------------------------------------------------
# CodeBuild references
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "value", "bad"),
    [
        ("PARAMETER_STORE", "/build/sonar-token", False),
        ("PARAMETER_STORE", f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/build/sonar", False),
        ("PARAMETER_STORE", f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/build/sonar", True),
        ("SECRETS_MANAGER", "build/nuget:apiKey", False),
        ("SECRETS_MANAGER", "build/nuget:apiKey:AWSCURRENT:", False),
        (
            "SECRETS_MANAGER",
            f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:build/nuget-AbCdEf:apiKey",
            False,
        ),
        (
            "SECRETS_MANAGER",
            f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:build/nuget-AbCdEf:apiKey::",
            True,
        ),
    ],
)
def test_codebuild_secret_references(kind: str, value: str, bad: bool) -> None:
    violations = found([codebuild([{"name": "NUGET_API_KEY", "value": value, "type": kind}])])
    assert bool(violations) is bad
    if bad:
        assert f"({kind})" in violations[0].message and "service role" in violations[0].message


def test_codebuild_registry_credential_is_a_reference() -> None:
    other = f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:dockerhub-AbCdEf"
    project = codebuild(
        [], registryCredential={"credential": other, "credentialProvider": "SECRETS_MANAGER"}
    )
    violations = found([project])
    assert len(violations) == 1 and "registryCredential" in violations[0].message


def test_reference_problem_parses_account_despite_json_key_suffix() -> None:
    ref = f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:a:b:c:d"
    assert reference_problem(ref) == (OTHER, None)
    assert reference_problem("plain-name") == (None, None)
