"""The digest admission hook Lambda (ECS PRE_SCALE_UP): the handler against a stubbed ECS
client, the pure ``is_digest_pinned`` rule, ALLOWED_REGISTRIES, and its IAM policy."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render import iam_hooks
from components.render.iam import PolicyError, actions_of
from components.runtime import admission_hook as ah
from policy.guardrails.images import pinning_problem as policy_pinning_problem

ACCOUNT = "333333333333"
REGION = "eu-west-1"
CLUSTER = "orders-api-stage"
SERVICE = "orders-api-stage-svc"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{CLUSTER}/{SERVICE}"
REVISION = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{CLUSTER}/{SERVICE}/4087352748375"
TASKDEF = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/orders-api-stage:7"
DIGEST = "sha256:" + "ab12" * 16
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api"
PINNED = f"{REPO}@{DIGEST}"
ADOT = f"public.ecr.aws/aws-observability/aws-otel-collector:v0.43.1@{DIGEST}"


def event(stage: str = "PRE_SCALE_UP", **details: Any) -> dict[str, Any]:
    return {
        "executionId": "exec-1",
        "lifecycleStage": stage,
        "resourceArn": SERVICE_ARN,
        "executionDetails": {
            "serviceArn": SERVICE_ARN,
            "targetServiceRevisionArn": REVISION,
            **details,
        },
    }


_SESSION = boto3.session.Session(
    region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
)


def ecs_client() -> Any:
    return _SESSION.client("ecs")


def stubbed(containers: list[dict[str, Any]] | None) -> tuple[Any, Stubber]:
    client = ecs_client()
    stub = Stubber(client)
    stub.add_response(
        "describe_service_revisions",
        {
            "serviceRevisions": [
                {
                    "serviceRevisionArn": REVISION,
                    "serviceArn": SERVICE_ARN,
                    "taskDefinition": TASKDEF,
                }
            ],
            "failures": [],
        },
        {"serviceRevisionArns": [REVISION]},
    )
    if containers is not None:
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": {"taskDefinitionArn": TASKDEF, "containerDefinitions": containers}},
            {"taskDefinition": TASKDEF},
        )
    stub.activate()
    return client, stub


def run(ev: Any, client: Any, env: dict[str, str] | None = None) -> tuple[dict, list[dict]]:
    logs: list[dict[str, Any]] = []
    answer = ah.handle(ev, env=env or {}, ecs_client=lambda: client, log=logs.append)
    return answer, logs


# --------------------------------------------------------------------------- handler


def test_all_containers_pinned_succeeds() -> None:
    client, stub = stubbed([{"name": "app", "image": PINNED}, {"name": "adot", "image": ADOT}])
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "SUCCEEDED"}
    stub.assert_no_pending_responses()
    decision = logs[-1]
    assert decision["event"] == "admission.decision"
    assert decision["task_definition"] == TASKDEF
    assert decision["service_revision"] == REVISION
    assert not [r for r in logs if r["event"] == "admission.refused"]


def test_container_by_tag_fails_naming_it() -> None:
    client, stub = stubbed(
        [{"name": "app", "image": PINNED}, {"name": "sidecar", "image": f"{REPO}:1.4.2"}]
    )
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "FAILED"}
    stub.assert_no_pending_responses()
    refused = [r for r in logs if r["event"] == "admission.refused"]
    assert [(r["container"], r["image"]) for r in refused] == [("sidecar", f"{REPO}:1.4.2")]
    assert "not pinned by digest" in refused[0]["reason"]
    assert logs[-1]["hook_status"] == "FAILED"
    assert logs[-1]["refused_containers"] == ["sidecar"]


def test_every_offending_container_is_named() -> None:
    client, _ = stubbed(
        [
            {"name": "app", "image": "orders-api"},
            {"name": "adot", "image": f"{REPO}@sha256:{'AB' * 32}"},
            {"name": "ok", "image": PINNED},
        ]
    )
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "FAILED"}
    assert logs[-1]["refused_containers"] == ["app", "adot"]


def test_describe_error_fails_closed() -> None:
    client = ecs_client()
    stub = Stubber(client)
    stub.add_client_error(
        "describe_service_revisions", "AccessDeniedException", "not authorized", 400
    )
    stub.activate()
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "FAILED"}
    assert "AccessDeniedException" in logs[-1]["error"]


def test_describe_failures_entry_fails_closed() -> None:
    client = ecs_client()
    stub = Stubber(client)
    stub.add_response(
        "describe_service_revisions",
        {"serviceRevisions": [], "failures": [{"arn": REVISION, "reason": "MISSING"}]},
        {"serviceRevisionArns": [REVISION]},
    )
    stub.activate()
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "FAILED"}
    assert "MISSING" in logs[-1]["error"]


def test_task_definition_without_containers_fails() -> None:
    client, _ = stubbed([])
    answer, logs = run(event(), client)
    assert answer == {"hookStatus": "FAILED"}
    assert "no containers" in logs[-1]["error"]


def test_client_factory_error_fails_closed() -> None:
    def broken() -> Any:
        raise RuntimeError("no credentials")

    logs: list[dict[str, Any]] = []
    answer = ah.handle(event(), env={}, ecs_client=broken, log=logs.append)
    assert answer == {"hookStatus": "FAILED"}
    assert "no credentials" in logs[-1]["error"]


@pytest.mark.parametrize("stage", ["POST_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT", "RECONCILE_SERVICE"])
def test_other_stage_is_miswired_and_fails_without_calling_ecs(stage: str) -> None:
    def never() -> Any:
        raise AssertionError("ECS must not be called")

    logs: list[dict[str, Any]] = []
    answer = ah.handle(event(stage), env={}, ecs_client=never, log=logs.append)
    assert answer == {"hookStatus": "FAILED"}
    assert "mis-wired" in logs[-1]["reason"] and "PRE_SCALE_UP" in logs[-1]["reason"]


def test_rollback_of_a_traffic_shift_is_never_blocked() -> None:
    ev = event("PRODUCTION_TRAFFIC_SHIFT", productionTrafficWeights={REVISION: 0, "blue": 100})
    answer, logs = run(ev, None)
    assert answer == {"hookStatus": "SUCCEEDED"}
    assert "rollback" in logs[-1]["reason"]


@pytest.mark.parametrize(
    "ev",
    [
        {"DeploymentId": "d-1", "LifecycleEventHookExecutionId": "h-1"},
        "not an event",
        {"executionId": "e", "lifecycleStage": "PRE_SCALE_UP", "executionDetails": {}},
        event(targetServiceRevisionArn=TASKDEF),
    ],
)
def test_unusable_event_fails_closed(ev: Any) -> None:
    answer, logs = run(ev, None)
    assert answer == {"hookStatus": "FAILED"}
    assert logs[-1]["hook_status"] == "FAILED" and logs[-1]["error"]


def test_allowed_registries_refuses_a_pinned_image_from_elsewhere() -> None:
    client, _ = stubbed(
        [{"name": "app", "image": PINNED}, {"name": "adot", "image": ADOT}],
    )
    env = {"ALLOWED_REGISTRIES": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"}
    answer, logs = run(event(), client, env)
    assert answer == {"hookStatus": "FAILED"}
    refused = [r for r in logs if r["event"] == "admission.refused"]
    assert [r["container"] for r in refused] == ["adot"]
    assert "ALLOWED_REGISTRIES" in refused[0]["reason"]


def test_allowed_registries_with_a_repository_prefix_admits() -> None:
    client, _ = stubbed([{"name": "app", "image": PINNED}, {"name": "adot", "image": ADOT}])
    env = {
        "ALLOWED_REGISTRIES": f" {ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/orders-api , "
        "public.ecr.aws/aws-observability/"
    }
    answer, _ = run(event(), client, env)
    assert answer == {"hookStatus": "SUCCEEDED"}


def test_bad_allowed_registries_fails_closed_naming_the_variable() -> None:
    answer, logs = run(event(), None, {"ALLOWED_REGISTRIES": "*.amazonaws.com"})
    assert answer == {"hookStatus": "FAILED"}
    assert "ALLOWED_REGISTRIES" in logs[-1]["error"] and "*.amazonaws.com" in logs[-1]["error"]


@pytest.mark.parametrize(
    ("image", "allowed", "ok"),
    [
        ("reg.example.com/team/app@x", ("reg.example.com",), True),
        ("reg.example.com/team/app@x", ("reg.example.com/team",), True),
        ("reg.example.com/teamx/app@x", ("reg.example.com/team",), False),
        ("reg.example.com.evil.io/app@x", ("reg.example.com",), False),
        ("reg.example.com:5000/app:1@x", ("reg.example.com:5000",), True),
        ("app@x", ("reg.example.com",), False),
    ],
)
def test_registry_allowed_is_a_path_prefix_not_a_string_prefix(
    image: str, allowed: tuple[str, ...], ok: bool
) -> None:
    assert ah.registry_allowed(image, allowed) is ok


def test_module_is_self_contained() -> None:
    tree = ast.parse(Path(ah.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not [m for m in imported if m.startswith("components")]
    assert ah.handler.__module__ == "components.runtime.admission_hook"


# --------------------------------------------------------------------------- is_digest_pinned


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        (f"app@{DIGEST}", True),
        (f"app:1.2.3@{DIGEST}", True),
        (f"registry:5000/team/app@{DIGEST}", True),
        (f"registry:5000/team/app:v1@{DIGEST}", True),
        (PINNED, True),
        ("registry:5000/team/app", False),  # a port is not a tag, and there is no digest
        ("app:1.2.3", False),
        ("app", False),
        ("app:latest", False),
        (f"app:@{DIGEST}", False),  # empty tag
        (f"@{DIGEST}", False),  # no repository
        ("app@sha256:" + "ab" * 31, False),  # 62 hex: short
        ("app@sha256:" + "ab" * 33, False),  # 66 hex: long
        ("app@sha256:" + "AB" * 32, False),  # upper case
        ("app@sha512:" + "ab" * 64, False),  # not sha256
        ("app@" + "ab" * 32, False),  # no algorithm
        (f"app@{DIGEST}\n", False),  # trailing newline
        (f" app@{DIGEST}", False),
        (f"app@{DIGEST}@{DIGEST}", False),
        ("", False),
    ],
)
def test_is_digest_pinned_cases(image: str, pinned: bool) -> None:
    assert ah.is_digest_pinned(image) is pinned


@pytest.mark.parametrize("value", [None, 42, [PINNED]])
def test_is_digest_pinned_rejects_non_strings(value: object) -> None:
    assert ah.is_digest_pinned(value) is False


HEX = "0123456789abcdef"
_component = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
_names = (
    st.builds(
        lambda host, port, path: f"{host}.io" + (f":{port}" if port else "") + "/" + "/".join(path),
        _component,
        st.one_of(st.none(), st.integers(1, 65535)),
        st.lists(_component, min_size=1, max_size=3),
    )
    | _component
)
_tags = st.one_of(
    st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=20)
)
_digests = st.text(alphabet=HEX, min_size=64, max_size=64).map(lambda h: f"sha256:{h}")


@settings(max_examples=80, deadline=None)
@given(name=_names, tag=_tags, digest=_digests)
def test_well_formed_digest_references_are_pinned(name: str, tag: str | None, digest: str) -> None:
    image = name + (f":{tag}" if tag else "") + "@" + digest
    assert ah.is_digest_pinned(image)
    assert ah.parse_image(image).digest == digest
    assert ah.parse_image(image).name == name  # a registry port never becomes the tag


@settings(max_examples=80, deadline=None)
@given(name=_names, tag=_tags)
def test_tag_only_references_are_never_pinned(name: str, tag: str | None) -> None:
    image = name + (f":{tag}" if tag else "")
    assert not ah.is_digest_pinned(image)


@settings(max_examples=80, deadline=None)
@given(
    name=_names,
    hexdigits=st.text(alphabet=HEX + "ABCDEFG", min_size=0, max_size=70).filter(
        lambda h: not (len(h) == 64 and all(c in HEX for c in h))
    ),
)
def test_malformed_digests_are_never_pinned(name: str, hexdigits: str) -> None:
    assert not ah.is_digest_pinned(f"{name}@sha256:{hexdigits}")


@settings(max_examples=100, deadline=None)
@given(
    image=st.text(alphabet="ab1:/@.-_sha256" + HEX, min_size=0, max_size=90)
    | st.builds(lambda n, d: f"{n}@{d}", _names, _digests)
)
def test_agrees_with_the_policy_pack_rule(image: str) -> None:
    """Same rule as ``ecs-image-digest-pinned`` (on references without whitespace, which the
    policy strips first)."""
    assert ah.is_digest_pinned(image) == (policy_pinning_problem(image) is None)


# --------------------------------------------------------------------------- IAM


def policy() -> dict[str, Any]:
    return iam_hooks.admission_hook_policy(
        partition="aws",
        region=REGION,
        account_id=ACCOUNT,
        log_group_name="/aws/lambda/orders-api-stage-admission-hook",
        cluster_name=CLUSTER,
        service_name=SERVICE,
    )


def test_admission_policy_statements() -> None:
    statements = {s["Sid"]: s for s in policy()["Statement"]}
    assert set(statements) == {"WriteOwnLogs", "DescribeServiceRevisions", "DescribeTaskDefinition"}
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/orders-api-stage-admission-hook"
    assert statements["WriteOwnLogs"]["Resource"] == [group, f"{group}:*"]
    assert statements["DescribeServiceRevisions"]["Action"] == ["ecs:DescribeServiceRevisions"]
    assert statements["DescribeServiceRevisions"]["Resource"] == [
        SERVICE_ARN,
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/{CLUSTER}/{SERVICE}/*",
    ]
    assert statements["DescribeTaskDefinition"]["Action"] == ["ecs:DescribeTaskDefinition"]
    assert statements["DescribeTaskDefinition"]["Resource"] == "*"
    assert sorted(actions_of(policy())) == [
        "ecs:DescribeServiceRevisions",
        "ecs:DescribeTaskDefinition",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    for s in statements.values():
        assert "*" not in s["Action"] and not any(a.endswith(":*") for a in s["Action"])
    assert "no resource-level" in iam_hooks.DESCRIBE_TASK_DEFINITION_STAR_REASON


def test_the_stubbed_revision_arn_is_covered_by_the_policy_pattern() -> None:
    pattern = policy()["Statement"][1]["Resource"][1]
    assert REVISION.startswith(pattern.removesuffix("*"))


@pytest.mark.parametrize(
    ("key", "value"),
    [("cluster_name", "orders-*"), ("service_name", ""), ("account_id", "12345")],
)
def test_admission_policy_rejects_bad_names(key: str, value: str) -> None:
    kwargs: dict[str, Any] = {
        "partition": "aws",
        "region": REGION,
        "account_id": ACCOUNT,
        "log_group_name": "/aws/lambda/x",
        "cluster_name": CLUSTER,
        "service_name": SERVICE,
        key: value,
    }
    with pytest.raises(PolicyError, match=key):
        iam_hooks.admission_hook_policy(**kwargs)
