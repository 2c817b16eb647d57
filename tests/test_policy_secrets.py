"""Corpus tests: ``account-local-secrets``."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --------------------------------------------------------------------------------------
# realistic plain-text credentials (reviewer's bypasses) and false positives
# --------------------------------------------------------------------------------------
GHP = "ghp_" + "A1b2C3d4E5" * 3 + "f6G7h8"
SLACK_HOOK = "https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefghijklmnopqrstuvwx"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("PGPASSWORD", "hunter2", "its name says"),
        ("DB_PASS", "hunter2", "its name says"),
        ("Jwt__Key", "a-very-long-signing-key", "its name says"),
        ("Jwt__SigningKey", "a-very-long-signing-key", "its name says"),
        ("AZURE_DEVOPS_PAT", "x7d2k", "its name says"),
        ("GH_PAT", "x7d2k", "its name says"),
        ("GITHUBTOKEN", "x7d2k", "its name says"),
        ("GithubToken", "x7d2k", "its name says"),
        ("NUGETAPIKEY", "oy2abc", "its name says"),
        ("DB_PASSWORD", "12345678", "its name says"),  # digits are a password too
        ("SOME_VALUE", GHP, "a GitHub token"),
        ("SOME_VALUE", "github_pat_11ABCDEFG0123456789_abcdefghijKLMNOPQRSTUV", "a GitHub token"),
        ("NOTIFY", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp", "a Slack token"),
        ("NOTIFY", "xoxp-1234567890-0987654321-AbCdEfGhIjKlMnOp", "a Slack token"),
        ("NOTIFY", "xoxa-2-1234567890-AbCdEfGhIjKlMnOp", "a Slack token"),
        ("SLACK_WEBHOOK_URL", SLACK_HOOK, "a webhook URL"),
        (
            "TEAMS_WEBHOOK_URL",
            "https://contoso.webhook.office.com/webhookb2/1a2b@3c4d/IncomingWebhook/5e6f/7a8b",
            "a webhook URL",
        ),
        (
            "ALERTS_ENDPOINT",
            "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/"
            "invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=Xy1Zq2Wv3",
            "a signed URL",
        ),
        (
            "UPLOAD_URI",
            "https://a.blob.core.windows.net/c/f?sv=2022-11-02&sig=abc%3D",
            "signed URL",
        ),
        ("KEY_ID", "AKIAIOSFODNN7EXAMPLE", "AWS access key"),
        ("SESSION", "ASIAIOSFODNN7EXAMPLE", "AWS access key"),
        ("DEPLOY_KEY_FILE", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl", "a private key"),
        ("SIGNER", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQ", "a private key"),
        ("BEARER_HEADER", f"Bearer {JWT}", "a JSON Web Token"),
        ("ConnectionStrings__Redis", "cache:6380,password=s3cret,ssl=True", "connection string"),
        ("ConnectionStrings__Redis", "cache:6380,ssl=True,Password = s3cret", "connection string"),
        ("MONGO", "mongodb://db/orders?authSource=admin&password=s3cret", "connection string"),
        (
            "ConnectionStrings__Blobs",
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=bXlrZXk=;",
            "connection string",
        ),
        ("REDIS_URL", "redis://:s3cret@cache:6379/0", "embedded credentials"),
        ("BROKER_URL", "amqps://app:s3cret@mq.internal:5671/", "embedded credentials"),
    ],
)
def test_realistic_plaintext_credentials_fail(name: str, value: str, what: str) -> None:
    finding = plaintext_credential(name, value)
    assert finding is not None and what in finding
    # and through the policy, without echoing the value
    violations = found([task({"environment": [{"name": name, "value": value}]})])
    assert len(violations) == 1
    assert f"variable '{name}'" in violations[0].message
    assert value not in violations[0].message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PASSWORD_MIN_LENGTH", "12"),
        ("TOKEN_TTL_SECONDS", "3600"),
        ("SECRET_ROTATION_DAYS", "30"),
        ("Jwt__TokenLifetimeMinutes", "15"),
        ("REFRESH_TOKEN_MAX", "5"),
        ("PASSWORD_HASH_ALGORITHM", "argon2id"),
        ("DB_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
        ("DB_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:eu-west-1:1:secret:x"),
        ("GITHUB_TOKEN_PARAMETER", "/ci/github-token"),
        ("DB_PASSWORD_PARAMETER", "/orders/prod/db-password"),
        ("JWT_KEY_ID", "2024-01"),
        ("ENCRYPTION_KEY", "alias/orders"),
        ("DB_PASSWORD", "${DB_PASSWORD}"),
        ("DB_PASSWORD", "{{resolve:secretsmanager:orders/db:SecretString:password}}"),
        ("GIT_REMOTE", "https://x-access-token:${GITHUB_TOKEN}@github.com/o/r.git"),
        ("GIT_REMOTE", "https://x-access-token:$GITHUB_TOKEN@github.com/o/r.git"),
        ("PASS_THROUGH_HEADERS", "X-Request-Id"),
        ("BYPASS", "cache"),
        ("COMPASS_REGION", "eu"),
        ("PATH", "/usr/local/bin:/usr/bin"),
        ("PAT_EXPIRY_DAYS", "90"),
        ("SERVICE_URL", "https://hooks.example.com/services/orders"),
        ("STATUS_URL", "https://api.example.com/v1/status?sign=1"),
        ("ConnectionStrings__Redis", "cache:6380,ssl=True,abortConnect=False"),
        ("ConnectionStrings__Orders", "Host=db;Database=o;Password=;"),
        ("SAMPLE", "eyJhbGciOiJIUzI1NiJ9"),  # a JWT header alone is no token
        ("GITHUB_REPOSITORY", "ghp_short"),
    ],
)
def test_settings_references_and_lookalikes_pass(name: str, value: str) -> None:
    assert plaintext_credential(name, value) is None


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("PGPASSWORD", True),
        ("MYSQL_PWD", True),
        ("DB_PASS", True),
        ("ADO_PAT", True),
        ("Jwt__Key", True),
        ("Jwt__SigningKey", True),
        ("Storage__AccountKey", True),
        ("PASS", True),
        ("PWD", False),  # the shell's working directory
        ("PASS_THROUGH", False),
        ("PASSWORD_MIN_LENGTH", False),
        ("TOKEN_TTL_SECONDS", False),
        ("SECRET_ROTATION_DAYS", False),
        ("SLACK_WEBHOOK_URL", False),  # a reference by name: its value is still judged
        ("DB_SECRET_ARN", False),
        ("PGPASSFILE", False),
    ],
)
def test_credential_name_rule(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential


# --------------------------------------------------------------------------------------
# CodeBuild inline buildspec env
# --------------------------------------------------------------------------------------
def buildspec_project(buildspec: str, variables: list[dict[str, Any]] | None = None) -> Any:
    project = codebuild(variables or [])
    project["inputs"]["source"] = {"type": "CODEPIPELINE", "buildspec": buildspec}
    return project


BUILD_PHASES = "phases:\n  build:\n    commands:\n      - dotnet test\n"


@pytest.mark.parametrize(
    ("section", "value", "bad"),
    [
        ("secrets-manager", "build/sonar:token", False),
        (
            "secrets-manager",
            f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:build/sonar-AbCdEf:token",
            False,
        ),
        (
            "secrets-manager",
            f"arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:build/sonar-AbCdEf:token::",
            True,
        ),
        ("parameter-store", "/build/sonar-token", False),
        ("parameter-store", f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/build/sonar", True),
        ("parameter-store", f"arn:aws:s3:::{ACCOUNT}-bucket/token", True),
    ],
)
def test_buildspec_env_references_are_account_local(section: str, value: str, bad: bool) -> None:
    spec = f"version: 0.2\nenv:\n  {section}:\n    SONAR_TOKEN: '{value}'\n{BUILD_PHASES}"
    violations = found([buildspec_project(spec)])
    assert bool(violations) is bad
    if bad:
        assert f"buildspec env.{section} 'SONAR_TOKEN'" in violations[0].message
        assert "Fix:" in violations[0].message


def test_buildspec_env_variables_are_plain_variables() -> None:
    spec = (
        "version: 0.2\nenv:\n  variables:\n"
        "    DB_PASSWORD: hunter2\n"
        f"    SLACK_WEBHOOK_URL: {SLACK_HOOK}\n"
        "    PASSWORD_MIN_LENGTH: 12\n"
        "    RUN_TESTS: true\n"
        "    DOTNET_CLI_TELEMETRY_OPTOUT: '1'\n"
        f"{BUILD_PHASES}"
    )
    messages = [v.message for v in found([buildspec_project(spec)])]
    assert len(messages) == 2
    assert any("buildspec env.variables variable 'DB_PASSWORD'" in m for m in messages)
    assert any("'SLACK_WEBHOOK_URL' holds a webhook URL" in m for m in messages)
    assert not any("hunter2" in m or SLACK_HOOK in m for m in messages)


def test_buildspec_that_yaml_refuses_is_still_scanned_leniently() -> None:
    spec = (
        "version: 0.2\n"
        "env:\n"
        "  variables:\n"
        '    NPM_TOKEN: "npm-secret" # set by hand\n'
        "    STAGE: prod\n"
        "  secrets-manager:\n"
        f"    SONAR_TOKEN: arn:aws:secretsmanager:eu-west-1:{OTHER}:secret:s-AbCdEf:token\n"
        "phases:\n  build:\n    commands:\n      - [ -f x ] && echo {a\n"
    )
    messages = [v.message for v in found([buildspec_project(spec)])]
    assert len(messages) == 2
    assert any("'NPM_TOKEN' holds a credential" in m for m in messages)
    assert any("env.secrets-manager 'SONAR_TOKEN'" in m and OTHER in m for m in messages)


def test_buildspec_as_json_and_buildspec_files() -> None:
    spec = json.dumps(
        {"version": 0.2, "env": {"variables": {"GH_PAT": "x7d2k"}}, "phases": {"build": {}}}
    )
    assert len(found([buildspec_project(spec)])) == 1
    # a buildspec file in the repository cannot be read: nothing to judge
    assert found([buildspec_project("ci/buildspec.yml")]) == []
    # no env section, or an env without the judged sections
    assert found([buildspec_project(f"version: 0.2\n{BUILD_PHASES}")]) == []
    shell = "version: 0.2\nenv:\n  shell: bash\n  exported-variables: [TAG]\n" + BUILD_PHASES
    assert found([buildspec_project(shell)]) == []


def test_buildspec_references_use_the_service_role_and_unknowns_stay_unknown() -> None:
    ref = f"arn:aws:ssm:eu-west-1:{OTHER}:parameter/x"
    spec = f"version: 0.2\nenv:\n  parameter-store:\n    X: {ref}\n{BUILD_PHASES}"
    project = buildspec_project(spec)
    assert found([project], config={POLICY: {"accountId": OTHER}}) == []
    project["inputs"]["serviceRole"] = UNKNOWN
    report = evaluate_report([project])
    assert not [v for v in report.violations if v.policy == POLICY]
    assert [n for n in report.not_applicable if n.policy == POLICY]
    unknown_spec = buildspec_project("x")
    unknown_spec["inputs"]["source"]["buildspec"] = UNKNOWN
    report = evaluate_report([unknown_spec])
    assert [n for n in report.not_applicable if n.policy == POLICY]


@settings(max_examples=60, deadline=None)
@given(
    name=st.from_regex(r"[A-Z][A-Z_]{0,20}", fullmatch=True),
    token=st.text(alphabet=string.ascii_letters + string.digits, min_size=36, max_size=36),
    prefix=st.sampled_from(["ghp_", "gho_", "ghs_"]),
)
def test_a_github_token_value_fails_whatever_the_name(name: str, token: str, prefix: str) -> None:
    assert plaintext_credential(name, prefix + token, judge_name=False) == "a GitHub token"


@settings(max_examples=60, deadline=None)
@given(
    word=st.sampled_from(["PASSWORD", "TOKEN", "SECRET", "API_KEY", "PAT", "JWT_KEY"]),
    setting=st.sampled_from(["LENGTH", "TTL", "SECONDS", "DAYS", "ARN", "PARAMETER", "MAX"]),
    number=st.integers(0, 10**6),
)
def test_a_setting_about_a_credential_passes(word: str, setting: str, number: int) -> None:
    assert plaintext_credential(f"APP_{word}_{setting}", str(number)) is None
    assert plaintext_credential(f"APP_{word}", str(number) + "x") is not None
