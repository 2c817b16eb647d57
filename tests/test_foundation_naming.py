"""Every physical name is valid for its type and distinct inputs never collide."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components import naming, tags
from components.naming import Kind, Names

service_names = st.from_regex(r"\A[a-z][a-z0-9]{0,39}(-[a-z0-9]{1,39}){0,19}\Z").filter(
    lambda s: len(s) <= naming.SERVICE_NAME_MAX
) | st.sampled_from(["sg", "sg-api", "internal", "internal-api", "a" * 40, "a-" * 19 + "bc"])
environment_names = st.from_regex(r"\A[a-z][a-z0-9]{0,11}\Z").filter(lambda s: s != "tooling")

VALID = {
    Kind.ALB: re.compile(r"^(?!internal-)[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$"),
    Kind.TARGET_GROUP: re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$"),
    Kind.IAM_ROLE: re.compile(r"^[\w+=,.@-]{1,64}$"),
    Kind.LAMBDA: re.compile(r"^[A-Za-z0-9_-]{1,64}$"),
    Kind.ECS: re.compile(r"^[A-Za-z0-9_-]{1,255}$"),
    Kind.S3_BUCKET: re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
    Kind.CODEBUILD_PROJECT: re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,149}$"),
    Kind.CODEPIPELINE: re.compile(r"^[A-Za-z0-9.@_-]{1,100}$"),
    Kind.ECR_REPOSITORY: re.compile(
        r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"
    ),
    Kind.SECURITY_GROUP: re.compile(r"^(?!sg-)[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}$"),
    Kind.LOG_GROUP: re.compile(r"^[A-Za-z0-9_/.#-]{1,512}$"),
    Kind.ALARM: re.compile(r"^[A-Za-z0-9 ._/-]{1,255}$"),
    Kind.BUDGET: re.compile(r"^[A-Za-z0-9_.:-]{1,100}$"),
    Kind.KMS_ALIAS: re.compile(r"^alias/(?!aws/)[A-Za-z0-9/_-]{1,250}$"),
    Kind.IAM_POLICY: re.compile(r"^[\w+=,.@-]{1,128}$"),
}


def all_names(n: Names) -> dict[str, tuple[Kind, str]]:
    return {
        "alb": (Kind.ALB, n.alb),
        "tg-blue": (Kind.TARGET_GROUP, n.target_group("blue")),
        "tg-green": (Kind.TARGET_GROUP, n.target_group("green")),
        "exec": (Kind.IAM_ROLE, n.execution_role),
        "task": (Kind.IAM_ROLE, n.task_role),
        "deploy": (Kind.IAM_ROLE, n.deploy_role),
        "hook-fn": (Kind.LAMBDA, n.hook_function),
        "cluster": (Kind.ECS, n.cluster),
        "service": (Kind.ECS, n.ecs_service),
        "family": (Kind.ECS, n.task_family),
        "bucket": (Kind.S3_BUCKET, n.artifact_bucket("123456789012")),
        "logs-bucket": (Kind.S3_BUCKET, n.access_logs_bucket("123456789012")),
        "build": (Kind.CODEBUILD_PROJECT, n.build_project("build")),
        "pipeline": (Kind.CODEPIPELINE, n.pipeline),
        "repo": (Kind.ECR_REPOSITORY, n.repository),
        "sg-alb": (Kind.SECURITY_GROUP, n.security_group("alb")),
        "sg-tasks": (Kind.SECURITY_GROUP, n.security_group("tasks")),
        "logs": (Kind.LOG_GROUP, n.log_group),
        "migrate-logs": (Kind.LOG_GROUP, n.migration_log_group),
        "alarm": (Kind.ALARM, n.alarm("target-5xx")),
        "budget": (Kind.BUDGET, n.budget),
        "kms-alias": (Kind.KMS_ALIAS, n.kms_alias("logs")),
        "policy": (Kind.IAM_POLICY, n.managed_policy("deploy-prod")),
        "migrate-exec": (Kind.IAM_ROLE, n.role("migrate-exec")),
    }


@given(service_names, environment_names)
def test_every_name_is_valid_for_its_type(service: str, environment: str) -> None:
    for label, (kind, name) in all_names(Names(service, environment)).items():
        assert len(name) <= kind.max_length, (label, name)
        assert VALID[kind].match(name), (label, name)


@given(service_names, environment_names, service_names, environment_names)
def test_distinct_inputs_never_collide(s1: str, e1: str, s2: str, e2: str) -> None:
    if (s1, e1) == (s2, e2):
        return
    a, b = all_names(Names(s1, e1)), all_names(Names(s2, e2))
    for label in a:
        if label == "repo":  # one repository per service, shared by environments
            assert (a[label] == b[label]) == (s1 == s2)
            continue
        assert a[label][1] != b[label][1], (label, a[label], b[label])


@given(st.text(min_size=1, max_size=300))
def test_fit_always_valid_and_stable(text: str) -> None:
    for kind in (Kind.ALB, Kind.IAM_ROLE, Kind.S3_BUCKET, Kind.LAMBDA):
        name = naming.fit(text, kind)
        assert len(name) <= kind.max_length
        assert not re.search(kind.invalid_chars, name)
        assert naming.fit(text, kind) == name


def test_readable_names_and_truncation_hash() -> None:
    n = Names("orders-api", "prod")
    assert n.cluster == "orders-api-prod"
    assert n.alb == "orders-api-prod-alb"
    assert n.log_group == "/ecs/prod/orders-api"
    assert naming.deploy_role_arn("orders-api", "prod", account_id="444444444444") == (
        "arn:aws:iam::444444444444:role/orders-api-prod-deploy"
    )
    long = Names("a" * 40, "production12")
    assert len(long.alb) == 32 and re.match(r"^a+-[0-9a-f]{8}$", long.alb)


def test_alb_names_never_start_with_internal() -> None:
    assert not Names("internal", "dev").alb.startswith("internal-")


@pytest.mark.parametrize("bad", ["Orders", "orders_api", "-x", "x-", "a--b", "1abc"])
def test_bad_service_names_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="service name"):
        Names(bad, "dev")


def test_standard_tags_are_the_four_and_extras_cannot_override() -> None:
    t = tags.standard_tags(
        application="orders-api",
        environment="prod",
        owner="team",
        cost_center="cc-1",
        extra={"Owner": "someone-else", "Tier": "web"},
    )
    assert t == {
        "Application": "orders-api",
        "CostCenter": "cc-1",
        "Environment": "prod",
        "Owner": "team",
        "Tier": "web",
    }
    assert tags.missing_required({"Application": "x"}) == ["Environment", "Owner", "CostCenter"]
