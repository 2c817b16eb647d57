"""The deploy step (components/runtime/deploy.py) against moto, botocore's Stubber and pure tests.

moto serves what it implements (ECS describe/register/update_service/describe_services,
CodeDeploy create/get deployment, STS); the 2025 ECS service-deployment APIs and the calls
moto lacks (StopDeployment, StopServiceDeployment) go through ``botocore.stub.Stubber``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import botocore.session
import pytest
import yaml
from botocore.stub import ANY, Stubber
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from components.runtime import deploy

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
FAMILY = "orders-api-stage"
NEW_IMAGE = (
    "111111111111.dkr.ecr.eu-west-1.amazonaws.com/dotnet-delivery/orders-api@sha256:" + "ab" * 32
)
SERVICE_DEPLOYMENT_ARN = (
    f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/stage/orders-api/dep-123"
)
SERVICE_REVISION_ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service-revision/stage/orders-api/rev-9"


def _described() -> dict[str, Any]:
    return json.loads((FIXTURES / "ecs_describe_task_definition.json").read_text())


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths at which two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}.{key}")
            else:
                out.extend(_diff(a[key], b[key], f"{path}.{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [path]
        return [
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for p in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path]


def _writable(task_def: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in task_def.items() if k not in deploy.READ_ONLY_TASK_DEFINITION_KEYS}


# ------------------------------------------------------------------------------------------
# swap_image and the read-only keys
# ------------------------------------------------------------------------------------------


def test_read_only_keys_are_exactly_what_register_does_not_accept() -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    described = set(model.shape_for("TaskDefinition").members)
    accepted = set(model.operation_model("RegisterTaskDefinition").input_shape.members)
    assert described - accepted == deploy.READ_ONLY_TASK_DEFINITION_KEYS


def test_swap_image_changes_only_that_containers_image_and_keeps_tags() -> None:
    described = _described()
    original = copy.deepcopy(described)
    request = deploy.swap_image(
        described["taskDefinition"], "app", NEW_IMAGE, tags=described["tags"]
    )

    assert described == original, "input must not be modified"
    assert not set(request) & deploy.READ_ONLY_TASK_DEFINITION_KEYS
    expected = {**_writable(described["taskDefinition"]), "tags": described["tags"]}
    assert _diff(expected, request) == [".containerDefinitions[0].image"]
    assert request["containerDefinitions"][0]["image"] == NEW_IMAGE
    assert (
        request["containerDefinitions"][1] == described["taskDefinition"]["containerDefinitions"][1]
    )


def test_swap_image_request_is_valid_register_task_definition_input() -> None:
    described = _described()
    request = deploy.swap_image(
        described["taskDefinition"], "app", NEW_IMAGE, tags=described["tags"]
    )
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "register_task_definition",
            {"taskDefinition": {**described["taskDefinition"], "revision": 8}},
            request,
        )
        client.register_task_definition(**request)  # botocore validates every key and type
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("image", "fragment"),
    [
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api:1.8.0", "pinned by digest"),
        ("111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api:latest", "pinned by digest"),
        ("orders-api@sha256:" + "A" * 64, "pinned by digest"),
        ("orders-api:1.0@sha256:" + "a" * 64, "pinned by digest"),
        ("orders-api@sha256:" + "a" * 63, "pinned by digest"),
    ],
)
def test_swap_image_refuses_images_not_pinned_by_digest(image: str, fragment: str) -> None:
    with pytest.raises(deploy.InputError, match=fragment) as err:
        deploy.swap_image(_described()["taskDefinition"], "app", image)
    assert repr(image) in str(err.value)


def test_swap_image_names_the_missing_container_and_the_ones_that_exist() -> None:
    with pytest.raises(deploy.InputError) as err:
        deploy.swap_image(_described()["taskDefinition"], "web", NEW_IMAGE)
    assert "'web'" in str(err.value)
    assert "['app', 'otel-collector']" in str(err.value)


def test_swap_image_refuses_ambiguous_container_names() -> None:
    task_def = _described()["taskDefinition"]
    task_def["containerDefinitions"][1]["name"] = "app"
    with pytest.raises(deploy.InputError, match="exactly once"):
        deploy.swap_image(task_def, "app", NEW_IMAGE)


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
_json_leaf = st.one_of(st.integers(), st.booleans(), st.text(max_size=8))
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_names, inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _task_definitions(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    containers = [
        {
            "name": n,
            "image": f"repo/{n}:old",
            **draw(
                st.dictionaries(
                    st.sampled_from(["cpu", "environment", "command", "essential"]),
                    _json,
                    max_size=3,
                )
            ),
        }
        for n in names
    ]
    extra = draw(
        st.dictionaries(
            st.sampled_from(["cpu", "memory", "volumes", "pidMode", "runtimePlatform"]),
            _json,
            max_size=4,
        )
    )
    read_only = draw(
        st.dictionaries(
            st.sampled_from(sorted(deploy.READ_ONLY_TASK_DEFINITION_KEYS)), _json, max_size=4
        )
    )
    task_def = {"family": "f", "containerDefinitions": containers, **extra, **read_only}
    return task_def, draw(st.sampled_from(names))


@settings(max_examples=40, deadline=None)
@given(_task_definitions(), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_swap_image_property_only_the_image_differs(
    case: tuple[dict[str, Any], str], hexdigest: str
) -> None:
    task_def, container = case
    before = copy.deepcopy(task_def)
    image = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:{hexdigest}"
    request = deploy.swap_image(task_def, container, image)
    index = [c["name"] for c in task_def["containerDefinitions"]].index(container)

    assert task_def == before
    assert _diff(_writable(task_def), request) == [f".containerDefinitions[{index}].image"]
    # swapping again with the same digest is a no-op; and the template differs in the same spot
    assert deploy.swap_image(request, container, image) == request
    template = deploy.task_definition_template(task_def, container)
    assert _diff(template, request) == [f".containerDefinitions[{index}].image"]
    assert template["containerDefinitions"][index]["image"] == deploy.IMAGE_PLACEHOLDER


# ------------------------------------------------------------------------------------------
# AppSpec
# ------------------------------------------------------------------------------------------

ARN8 = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:8"


def test_render_appspec_is_the_documented_ecs_shape_with_hooks_in_lifecycle_order() -> None:
    text = deploy.render_appspec(
        ARN8,
        "app",
        8080,
        {
            "AfterAllowTraffic": "arn:aws:lambda:eu-west-1:123456789012:function:post",
            "AfterAllowTestTraffic": "arn:aws:lambda:eu-west-1:123456789012:function:smoke",
        },
        platform_version="LATEST",
    )
    assert yaml.safe_load(text) == {
        "version": 0.0,
        "Resources": [
            {
                "TargetService": {
                    "Type": "AWS::ECS::Service",
                    "Properties": {
                        "TaskDefinition": ARN8,
                        "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 8080},
                        "PlatformVersion": "LATEST",
                    },
                }
            }
        ],
        "Hooks": [
            {"AfterAllowTestTraffic": "arn:aws:lambda:eu-west-1:123456789012:function:smoke"},
            {"AfterAllowTraffic": "arn:aws:lambda:eu-west-1:123456789012:function:post"},
        ],
    }
    assert text.startswith("version: 0.0\n")


def test_render_appspec_placeholder_and_no_hooks() -> None:
    parsed = yaml.safe_load(deploy.render_appspec(deploy.TASK_DEFINITION_PLACEHOLDER, "app", 8080))
    props = parsed["Resources"][0]["TargetService"]["Properties"]
    assert props["TaskDefinition"] == "<TASK_DEFINITION>"
    assert "Hooks" not in parsed and "PlatformVersion" not in props


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task_definition_arn": "orders-api-stage:8"}, "neither a task-definition ARN"),
        ({"container_port": 0}, "container_port: 0"),
        ({"container_port": 70000}, "container_port: 70000"),
        ({"container_name": ""}, "container_name"),
        ({"hooks": {"AfterInstal": "fn"}}, "['AfterInstal'] are not ECS lifecycle hooks"),
        ({"hooks": {"AfterInstall": " "}}, "hooks.AfterInstall"),
    ],
)
def test_render_appspec_rejects_bad_input(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {
        "task_definition_arn": ARN8,
        "container_name": "app",
        "container_port": 8080,
    }
    with pytest.raises(deploy.InputError, match=__import__("re").escape(fragment)):
        deploy.render_appspec(**{**args, **kwargs})


@settings(max_examples=60, deadline=None)
@given(
    st.text(min_size=1, max_size=40).filter(lambda s: s.strip() and "\x00" not in s),
    st.integers(min_value=1, max_value=65535),
)
def test_render_appspec_round_trips_any_container_name(name: str, port: int) -> None:
    parsed = yaml.safe_load(deploy.render_appspec(ARN8, name, port))
    info = parsed["Resources"][0]["TargetService"]["Properties"]["LoadBalancerInfo"]
    assert info == {"ContainerName": name, "ContainerPort": port}


def test_appspec_revision_carries_content_and_its_sha256() -> None:
    content = deploy.render_appspec(ARN8, "app", 8080)
    revision = deploy.appspec_revision(content)
    assert revision["revisionType"] == "AppSpecContent"
    assert revision["appSpecContent"]["content"] == content
    import hashlib

    assert revision["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()


def test_container_port_defaults_to_first_mapping_and_checks_explicit_ports() -> None:
    task_def = _described()["taskDefinition"]
    assert deploy.container_port_of(task_def, "app") == 8080
    assert deploy.container_port_of(task_def, "app", 8080) == 8080
    with pytest.raises(deploy.InputError, match="9090 is not mapped"):
        deploy.container_port_of(task_def, "app", 9090)
    with pytest.raises(deploy.InputError, match="no portMappings"):
        deploy.container_port_of(task_def, "otel-collector")


# ------------------------------------------------------------------------------------------
# The wait loop
# ------------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_for_returns_the_first_done_status() -> None:
    t = FakeTime()
    states = iter(["IN_PROGRESS", "IN_PROGRESS", "SUCCESSFUL"])
    seen: list[tuple[str, float]] = []

    def poll() -> deploy.Status:
        state = next(states)
        return deploy.Status(state, done=state == "SUCCESSFUL", ok=True)

    status = deploy.wait_for(
        poll,
        timeout_s=100,
        interval_s=10,
        clock=t.clock,
        sleep=t.sleep,
        on_poll=lambda st_, el: seen.append((st_.state, el)),
    )
    assert status.state == "SUCCESSFUL"
    assert t.sleeps == [10, 10]
    assert seen == [("IN_PROGRESS", 0.0), ("IN_PROGRESS", 10.0), ("SUCCESSFUL", 20.0)]


def test_wait_for_times_out_with_a_last_poll_at_the_deadline() -> None:
    t = FakeTime()
    polls: list[float] = []

    def poll() -> deploy.Status:
        polls.append(t.now - 1000.0)
        return deploy.Status("IN_PROGRESS", done=False)

    with pytest.raises(deploy.WaitTimeout) as err:
        deploy.wait_for(poll, timeout_s=25, interval_s=10, clock=t.clock, sleep=t.sleep)
    assert polls == [0, 10, 20, 25]
    assert t.sleeps == [10, 10, 5]
    assert err.value.last.state == "IN_PROGRESS"
    assert "timed out after 25s (limit 25s)" in str(err.value)


def test_wait_for_finishing_exactly_at_the_deadline_is_not_a_timeout() -> None:
    t = FakeTime()
    status = deploy.wait_for(
        lambda: deploy.Status("SUCCESSFUL", done=t.now - 1000 >= 25, ok=True),
        timeout_s=25,
        interval_s=10,
        clock=t.clock,
        sleep=t.sleep,
    )
    assert status.done and status.ok


def test_wait_for_rejects_non_positive_limits() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        deploy.wait_for(lambda: deploy.Status("x", done=True), timeout_s=0, interval_s=1)


# ------------------------------------------------------------------------------------------
# Status classification
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "done", "ok"),
    [
        ("PENDING", False, False),
        ("IN_PROGRESS", False, False),
        ("ROLLBACK_REQUESTED", False, False),
        ("ROLLBACK_IN_PROGRESS", False, False),
        ("STOP_REQUESTED", False, False),
        ("SUCCESSFUL", True, True),
        ("ROLLBACK_SUCCESSFUL", True, False),
        ("ROLLBACK_FAILED", True, False),
        ("STOPPED", True, False),
    ],
)
def test_ecs_deployment_status(state: str, done: bool, ok: bool) -> None:
    status = deploy.ecs_deployment_status({"status": state})
    assert (status.state, status.done, status.ok) == (state, done, ok)


def test_ecs_failure_reason_names_rollback_alarms_and_breaker() -> None:
    status = deploy.ecs_deployment_status(
        {
            "status": "ROLLBACK_SUCCESSFUL",
            "statusReason": "Service deployment rolled back because alarms were triggered",
            "rollback": {"reason": "ALARM", "serviceRevisionArn": "rev-old"},
            "alarms": {"status": "TRIGGERED", "triggeredAlarmNames": ["orders-api-stage-5xx"]},
            "deploymentCircuitBreaker": {"status": "TRIGGERED", "failureCount": 3, "threshold": 3},
        }
    )
    assert not status.ok
    for fragment in (
        "ROLLBACK_SUCCESSFUL",
        "alarms were triggered",
        "rollback: ALARM",
        "orders-api-stage-5xx",
        "3 failed tasks",
    ):
        assert fragment in status.reason


@pytest.mark.parametrize(
    ("state", "done", "ok"),
    [
        ("Created", False, False),
        ("Queued", False, False),
        ("InProgress", False, False),
        ("Baking", False, False),
        ("Ready", False, False),
        ("Succeeded", True, True),
        ("Failed", True, False),
        ("Stopped", True, False),
    ],
)
def test_codedeploy_status(state: str, done: bool, ok: bool) -> None:
    status = deploy.codedeploy_status({"status": state, "deploymentId": "d-1"})
    assert (status.done, status.ok) == (done, ok)


def test_missing_status_is_a_clear_error() -> None:
    with pytest.raises(deploy.DeployError, match="without a status"):
        deploy.ecs_deployment_status({})
    with pytest.raises(deploy.DeployError, match="no status"):
        deploy.codedeploy_status({})


# ------------------------------------------------------------------------------------------
# Against moto (+ Stubber for the service-deployment APIs)
# ------------------------------------------------------------------------------------------

STUBBED_ECS_OPERATIONS = {
    "list_service_deployments",
    "describe_service_revisions",
    "describe_service_deployments",
    "stop_service_deployment",
}


class SplitEcs:
    """moto's ECS for what moto implements, a stubbed client for the rest."""

    def __init__(self, moto_client: Any, stubbed: Any) -> None:
        self._moto = moto_client
        self._stubbed = stubbed
        self.meta = moto_client.meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in STUBBED_ECS_OPERATIONS else self._moto, name)


class FakeSession:
    region_name = REGION

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def client(self, name: str, config: Any = None) -> Any:
        return self.clients[name]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    with fresh_account():
        yield


@functools.cache
def _shared_boto3_session() -> boto3.Session:
    """One boto3 session for all moto tests: it caches service models and endpoint data, which a
    new session loads again (~50 ms a client). It holds no AWS state; moto's backends do."""
    return boto3.Session(region_name=REGION)


@contextlib.contextmanager
def fresh_account() -> Iterator[None]:
    """moto with empty backends (mock_aws resets them on start), and boto3.client() served by the
    shared session instead of the new default session mock_aws would otherwise create."""
    with mock_aws(), mock.patch("boto3.DEFAULT_SESSION", _shared_boto3_session()):
        yield


def _seed_ecs(controller: str = "ECS") -> tuple[Any, str]:
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName="stage")
    described = _described()
    seeded = ecs.register_task_definition(
        **_writable(described["taskDefinition"]), tags=described["tags"]
    )
    arn = seeded["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster="stage",
        serviceName="orders-api",
        taskDefinition=arn,
        desiredCount=2,
        launchType="FARGATE",
        deploymentController={"type": controller},
    )
    return ecs, arn


def _capture_register(client: Any) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        sent.append(copy.deepcopy(params))

    client.meta.events.register("provide-client-params.ecs.RegisterTaskDefinition", hook)
    return sent


def _args(*extra: str) -> Any:
    return deploy.parse_args(
        [
            "--family", FAMILY, "--cluster", "stage", "--service", "orders-api",
            "--image-uri", NEW_IMAGE, "--container", "app", "--timeout-seconds", "300",
            "--poll-seconds", "10", *extra,
        ]
    )  # fmt: skip


def test_ecs_engine_registers_a_revision_differing_only_in_image_and_updates_the_service(
    aws: None,
) -> None:
    ecs, old_arn = _seed_ecs()
    latest = ecs.describe_task_definition(taskDefinition=FAMILY, include=["TAGS"])
    sent = _capture_register(ecs)
    stubbed = boto3.client("ecs", region_name=REGION)
    t = FakeTime()
    events: list[dict[str, Any]] = []
    with Stubber(stubbed) as stub:
        new_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:2"
        # first look: the deployment is not listed yet
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": []},
            {"cluster": "stage", "service": "orders-api", "createdAt": {"after": ANY}},
        )
        # then: an older deployment plus ours; only ours targets the new revision
        stub.add_response(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": "arn:old-dep",
                        "targetServiceRevisionArn": "arn:old-rev",
                        "status": "SUCCESSFUL",
                    },
                    {
                        "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                        "targetServiceRevisionArn": SERVICE_REVISION_ARN,
                        "status": "IN_PROGRESS",
                    },
                ]
            },
            {"cluster": "stage", "service": "orders-api", "createdAt": {"after": ANY}},
        )
        stub.add_response(
            "describe_service_revisions",
            {
                "serviceRevisions": [
                    {"serviceRevisionArn": "arn:old-rev", "taskDefinition": old_arn},
                    {"serviceRevisionArn": SERVICE_REVISION_ARN, "taskDefinition": new_arn},
                ]
            },
            {"serviceRevisionArns": ["arn:old-rev", SERVICE_REVISION_ARN]},
        )
        for state in ("IN_PROGRESS", "SUCCESSFUL"):
            stub.add_response(
                "describe_service_deployments",
                {
                    "serviceDeployments": [
                        {
                            "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                            "status": state,
                            "lifecycleStage": "BAKE_TIME" if state == "IN_PROGRESS" else "CLEAN_UP",
                            "targetServiceRevision": {
                                "arn": SERVICE_REVISION_ARN,
                                "runningTaskCount": 2,
                                "requestedTaskCount": 2,
                            },
                        }
                    ]
                },
                {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
            )
        result = deploy.run(
            _args("--engine", "ecs"),
            session=FakeSession(
                {"ecs": SplitEcs(ecs, stubbed), "sts": boto3.client("sts", region_name=REGION)}
            ),
            clock=t.clock,
            sleep=t.sleep,
            emit=events.append,
        )
        stub.assert_no_pending_responses()

    assert len(sent) == 1
    assert _diff({**_writable(latest["taskDefinition"]), "tags": latest["tags"]}, sent[0]) == [
        ".containerDefinitions[0].image"
    ]
    assert sent[0]["containerDefinitions"][0]["image"] == NEW_IMAGE
    assert (
        sent[0]["containerDefinitions"][0]["secrets"]
        == _described()["taskDefinition"]["containerDefinitions"][0]["secrets"]
    )

    assert (
        result["ok"] is True
        and result["taskDefinition"] == new_arn
        and result["state"] == "SUCCESSFUL"
    )
    service = ecs.describe_services(cluster="stage", services=["orders-api"])["services"][0]
    assert service["taskDefinition"] == new_arn
    latest = ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]
    assert latest["revision"] == 2 and latest["containerDefinitions"][0]["image"] == NEW_IMAGE

    progress = [e for e in events if e["event"] == "progress"]
    assert [p["state"] for p in progress] == ["LOCATING", "IN_PROGRESS", "SUCCESSFUL"]
    assert (
        progress[1]["deployment"] == SERVICE_DEPLOYMENT_ARN
        and progress[1]["lifecycleStage"] == "BAKE_TIME"
    )
    assert [e["event"] for e in events if e["event"] != "progress"] == [
        "latest-revision",
        "registered",
        "update-service",
    ]
    json.dumps(events, default=str)  # every progress line is JSON-serialisable


def _stubbed_update(stub: Stubber, arn: str) -> None:
    stub.add_response(
        "update_service",
        {"service": {"serviceName": "orders-api", "taskDefinition": arn}},
        {"cluster": "stage", "service": "orders-api", "taskDefinition": arn},
    )
    stub.add_response(
        "list_service_deployments",
        {
            "serviceDeployments": [
                {
                    "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                    "targetServiceRevisionArn": SERVICE_REVISION_ARN,
                }
            ]
        },
        {"cluster": "stage", "service": "orders-api", "createdAt": {"after": ANY}},
    )
    stub.add_response(
        "describe_service_revisions",
        {"serviceRevisions": [{"serviceRevisionArn": SERVICE_REVISION_ARN, "taskDefinition": arn}]},
        {"serviceRevisionArns": [SERVICE_REVISION_ARN]},
    )


def _deployment(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "serviceDeployments": [
            {"serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN, "status": state, **extra}
        ]
    }


def test_ecs_engine_rollback_fails_the_step_with_the_reason() -> None:
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    t = FakeTime()
    with Stubber(client) as stub:
        _stubbed_update(stub, ARN8)
        for state in ("IN_PROGRESS", "ROLLBACK_IN_PROGRESS"):
            stub.add_response(
                "describe_service_deployments",
                _deployment(state),
                {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
            )
        stub.add_response(
            "describe_service_deployments",
            _deployment(
                "ROLLBACK_SUCCESSFUL",
                statusReason="alarm orders-api-stage-p99 went into ALARM",
                rollback={"reason": "Alarm triggered", "serviceRevisionArn": "rev-old"},
                alarms={"status": "TRIGGERED", "triggeredAlarmNames": ["orders-api-stage-p99"]},
            ),
            {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
        )
        with pytest.raises(deploy.DeployError) as err:
            deploy.deploy_ecs(
                client, cluster="stage", service="orders-api", task_definition_arn=ARN8,
                timeout_s=600, interval_s=15, clock=t.clock, sleep=t.sleep, emit=lambda e: None,
            )  # fmt: skip
        stub.assert_no_pending_responses()
    assert "ROLLBACK_SUCCESSFUL" in str(err.value)
    assert "orders-api-stage-p99" in str(err.value)
    assert "rollback: Alarm triggered" in str(err.value)


def test_ecs_engine_timeout_stops_the_deployment_with_rollback() -> None:
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    t = FakeTime()
    with Stubber(client) as stub:
        _stubbed_update(stub, ARN8)
        for _ in range(4):  # polls at 0, 10, 20, 30 (= deadline)
            stub.add_response(
                "describe_service_deployments",
                _deployment("IN_PROGRESS"),
                {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
            )
        stub.add_response(
            "stop_service_deployment",
            {"serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN},
            {"serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN, "stopType": "ROLLBACK"},
        )
        with pytest.raises(deploy.DeployError) as err:
            deploy.deploy_ecs(
                client, cluster="stage", service="orders-api", task_definition_arn=ARN8,
                timeout_s=30, interval_s=10, clock=t.clock, sleep=t.sleep, emit=lambda e: None,
            )  # fmt: skip
        stub.assert_no_pending_responses()
    assert "timed out after 30s" in str(err.value)
    assert f"stopped {SERVICE_DEPLOYMENT_ARN} with rollback" in str(err.value)


def test_ecs_engine_refuses_an_update_service_that_did_not_take() -> None:
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_response("update_service", {"service": {"taskDefinition": "arn:other"}}, None)
        with pytest.raises(deploy.DeployError, match="did not take"):
            deploy.deploy_ecs(
                client, cluster="stage", service="orders-api", task_definition_arn=ARN8,
                timeout_s=30, interval_s=10, emit=lambda e: None,
            )  # fmt: skip


def _seed_codedeploy() -> Any:
    cd = boto3.client("codedeploy", region_name=REGION)
    cd.create_application(applicationName="orders-api-stage", computePlatform="ECS")
    cd.create_deployment_group(
        applicationName="orders-api-stage",
        deploymentGroupName="orders-api-stage",
        serviceRoleArn=f"arn:aws:iam::{ACCOUNT}:role/codedeploy",
        deploymentConfigName="CodeDeployDefault.ECSCanary10Percent5Minutes",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
    )
    return cd


def test_codedeploy_create_deployment_sends_the_right_appspec_and_waits(aws: None) -> None:
    from moto.codedeploy.models import codedeploy_backends

    ecs, _ = _seed_ecs("CODE_DEPLOY")
    cd = _seed_codedeploy()
    backend = codedeploy_backends[ACCOUNT][REGION]
    t = FakeTime()
    script = iter(["InProgress", "Baking", "Succeeded"])

    def sleep(seconds: float) -> None:  # the deployment advances while we wait
        t.sleep(seconds)
        for deployment in backend.deployments.values():
            deployment.status = next(script)

    events: list[dict[str, Any]] = []
    hook = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api-stage-smoke"
    result = deploy.run(
        _args(
            "--engine",
            "codedeploy",
            "--mode",
            "create-deployment",
            "--codedeploy-app",
            "orders-api-stage",
            "--codedeploy-group",
            "orders-api-stage",
            "--hook",
            f"AfterAllowTestTraffic={hook}",
        ),
        session=FakeSession(
            {"ecs": ecs, "codedeploy": cd, "sts": boto3.client("sts", region_name=REGION)}
        ),
        clock=t.clock,
        sleep=sleep,
        emit=events.append,
    )
    new_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:2"
    assert result["ok"] and result["state"] == "Succeeded" and result["taskDefinition"] == new_arn

    info = cd.get_deployment(deploymentId=result["deployment"])["deploymentInfo"]
    assert info["applicationName"] == "orders-api-stage"
    assert info["deploymentGroupName"] == "orders-api-stage"
    assert info["revision"]["revisionType"] == "AppSpecContent"
    content = info["revision"]["appSpecContent"]["content"]
    import hashlib

    assert (
        info["revision"]["appSpecContent"]["sha256"] == hashlib.sha256(content.encode()).hexdigest()
    )
    appspec = yaml.safe_load(content)
    props = appspec["Resources"][0]["TargetService"]["Properties"]
    assert props == {
        "TaskDefinition": new_arn,
        "LoadBalancerInfo": {"ContainerName": "app", "ContainerPort": 8080},
    }
    assert appspec["Hooks"] == [{"AfterAllowTestTraffic": hook}]
    # the service itself is left to CodeDeploy: no UpdateService
    service = ecs.describe_services(cluster="stage", services=["orders-api"])["services"][0]
    assert service["taskDefinition"].endswith(f"{FAMILY}:1")
    assert [e["state"] for e in events if e["event"] == "progress"] == [
        "Created",
        "InProgress",
        "Baking",
        "Succeeded",
    ]


def test_codedeploy_failure_with_auto_rollback_reports_error_information() -> None:
    client = boto3.client(
        "codedeploy", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    t = FakeTime()
    with Stubber(client) as stub:
        stub.add_response("create_deployment", {"deploymentId": "d-ABCDEF123"}, ANY_CREATE)
        stub.add_response(
            "get_deployment",
            {"deploymentInfo": {"deploymentId": "d-ABCDEF123", "status": "InProgress"}},
            {"deploymentId": "d-ABCDEF123"},
        )
        stub.add_response(
            "get_deployment",
            {
                "deploymentInfo": {
                    "deploymentId": "d-ABCDEF123",
                    "status": "Stopped",
                    "errorInformation": {
                        "code": "ALARM_ACTIVE",
                        "message": "One or more alarms have been activated",
                    },
                    "rollbackInfo": {
                        "rollbackDeploymentId": "d-ROLLBACK1",
                        "rollbackMessage": "Deployment rolled back",
                    },
                }
            },
            {"deploymentId": "d-ABCDEF123"},
        )
        with pytest.raises(deploy.DeployError) as err:
            deploy.deploy_codedeploy(
                client,
                application="a",
                deployment_group="g",
                appspec=deploy.render_appspec(ARN8, "app", 8080),
                description="d",
                timeout_s=600,
                interval_s=15,
                clock=t.clock,
                sleep=t.sleep,
                emit=lambda e: None,
            )
        stub.assert_no_pending_responses()
    message = str(err.value)
    assert "d-ABCDEF123 ended Stopped" in message
    assert "ALARM_ACTIVE: One or more alarms have been activated" in message
    assert "rollback d-ROLLBACK1: Deployment rolled back" in message


ANY_CREATE = {
    "applicationName": "a",
    "deploymentGroupName": "g",
    "revision": ANY,
    "description": "d",
}


def test_codedeploy_timeout_stops_the_deployment_with_auto_rollback() -> None:
    client = boto3.client(
        "codedeploy", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    t = FakeTime()
    with Stubber(client) as stub:
        stub.add_response("create_deployment", {"deploymentId": "d-SLOW"}, ANY_CREATE)
        for _ in range(3):  # 0, 15, 20 (deadline)
            stub.add_response(
                "get_deployment",
                {"deploymentInfo": {"status": "Ready"}},
                {"deploymentId": "d-SLOW"},
            )
        stub.add_response(
            "stop_deployment",
            {"status": "Pending", "statusMessage": "Stop is pending"},
            {"deploymentId": "d-SLOW", "autoRollbackEnabled": True},
        )
        with pytest.raises(deploy.DeployError) as err:
            deploy.deploy_codedeploy(
                client,
                application="a",
                deployment_group="g",
                appspec=deploy.render_appspec(ARN8, "app", 8080),
                description="d",
                timeout_s=20,
                interval_s=15,
                clock=t.clock,
                sleep=t.sleep,
                emit=lambda e: None,
            )
        stub.assert_no_pending_responses()
    assert "d-SLOW timed out after 20s" in str(err.value)
    assert "stop requested with rollback (Pending: Stop is pending)" in str(err.value)


def test_codedeploy_artifacts_mode_writes_codedeploytoecs_inputs_and_registers_nothing(
    aws: None, tmp_path: Path
) -> None:
    ecs, _ = _seed_ecs("CODE_DEPLOY")
    latest = ecs.describe_task_definition(taskDefinition=FAMILY, include=["TAGS"])
    sent = _capture_register(ecs)
    result = deploy.run(
        _args(
            "--engine",
            "codedeploy",
            "--output-dir",
            str(tmp_path),
            "--hook",
            "AfterAllowTestTraffic=smoke",
        ),
        session=FakeSession({"ecs": ecs, "sts": boto3.client("sts", region_name=REGION)}),
        emit=lambda e: None,
    )
    assert result["ok"] and sent == []
    assert len(ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]) == 1

    taskdef = json.loads((tmp_path / "taskdef.json").read_text())
    assert _diff({**_writable(latest["taskDefinition"]), "tags": latest["tags"]}, taskdef) == [
        ".containerDefinitions[0].image"
    ]
    assert taskdef["containerDefinitions"][0]["image"] == "<IMAGE1_NAME>"
    appspec = yaml.safe_load((tmp_path / "appspec.yaml").read_text())
    assert (
        appspec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"]
        == "<TASK_DEFINITION>"
    )
    assert appspec["Hooks"] == [{"AfterAllowTestTraffic": "smoke"}]
    assert json.loads((tmp_path / "imageDetail.json").read_text()) == {"ImageURI": NEW_IMAGE}


def test_image_detail_file_is_accepted_instead_of_image_uri(aws: None, tmp_path: Path) -> None:
    ecs, _ = _seed_ecs("CODE_DEPLOY")
    detail = tmp_path / "in" / "imageDetail.json"
    detail.parent.mkdir()
    detail.write_text(json.dumps({"ImageURI": NEW_IMAGE}))
    argv = ["--engine", "codedeploy", "--family", FAMILY, "--cluster", "stage"]
    argv += ["--service", "orders-api", "--image-detail-file", str(detail), "--container", "app"]
    args = deploy.parse_args([*argv, "--output-dir", str(tmp_path / "out")])
    deploy.run(
        args, session=FakeSession({"ecs": ecs, "sts": boto3.client("sts")}), emit=lambda e: None
    )
    assert json.loads((tmp_path / "out" / "imageDetail.json").read_text()) == {
        "ImageURI": NEW_IMAGE
    }


# ------------------------------------------------------------------------------------------
# Clear errors through main() (exit status 2 = bad input, nothing changed)
# ------------------------------------------------------------------------------------------


def _main(
    monkeypatch: pytest.MonkeyPatch, ecs: Any, argv: list[str]
) -> tuple[int, list[dict[str, Any]]]:
    session = FakeSession({"ecs": ecs, "sts": boto3.client("sts", region_name=REGION)})
    monkeypatch.setattr(deploy, "session_for", lambda *a, **k: session)
    events: list[dict[str, Any]] = []
    return deploy.main(argv, emit=events.append), events


BASE = [
    "--cluster",
    "stage",
    "--service",
    "orders-api",
    "--image-uri",
    NEW_IMAGE,
    "--container",
    "app",
]


BAD_INPUT_CASES: list[tuple[list[str], str]] = [
    (
        ["--engine", "ecs", "--family", "nope", *BASE],
        "family: service 'orders-api' runs task definition family 'orders-api-stage', not 'nope'",
    ),
    (
        ["--engine", "ecs", "--family", FAMILY, *BASE[:2], "--service", "ghost", *BASE[4:]],
        "service 'ghost' not found in cluster 'stage' in account 123456789012 / region eu-west-1",
    ),
    (
        ["--engine", "codedeploy", "--family", FAMILY, "--output-dir", "OUTPUT_DIR", *BASE],
        "uses the ECS deployment controller, not CODE_DEPLOY; deploy it with --engine ecs",
    ),
    (
        [
            "--engine",
            "ecs",
            "--family",
            FAMILY,
            *BASE[:4],
            "--image-uri",
            "repo/orders-api:latest",
            *BASE[6:],
        ],
        "not pinned by digest",
    ),
    (
        ["--engine", "ecs", "--family", FAMILY, *BASE[:6], "--container", "web"],
        "container: 'web' not found",
    ),
    (
        ["--engine", "ecs", "--mode", "artifacts", "--family", FAMILY, *BASE],
        "mode: 'artifacts' is not valid with --engine ecs",
    ),
    (["--engine", "codedeploy", "--family", FAMILY, *BASE], "output-dir is required"),
]


def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ecs, _ = _seed_ecs()
    for argv, fragment in BAD_INPUT_CASES:
        argv = [str(tmp_path) if a == "OUTPUT_DIR" else a for a in argv]
        code, events = _main(monkeypatch, ecs, argv)
        assert code == 2, argv
        assert events[-1]["ok"] is False
        assert fragment in events[-1]["error"], (argv, events[-1]["error"])
    assert len(ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]) == 1
    service = ecs.describe_services(cluster="stage", services=["orders-api"])["services"][0]
    assert service["taskDefinition"].endswith(f"{FAMILY}:1")


def test_family_not_found_names_family_account_and_region(aws: None) -> None:
    ecs = boto3.client("ecs", region_name=REGION)
    with pytest.raises(deploy.InputError) as err:
        deploy.latest_task_definition(
            ecs, "missing-family", where=f"account {ACCOUNT} / region {REGION}"
        )
    assert (
        f"task definition family 'missing-family' not found in account {ACCOUNT} / region {REGION}"
        in str(err.value)
    )


def test_failed_deploy_exits_1_and_writes_the_result(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ecs, _ = _seed_ecs()
    stubbed = boto3.client("ecs", region_name=REGION)
    monkeypatch.setattr(deploy.time, "sleep", lambda s: None)
    with Stubber(stubbed) as stub:
        stub.add_response(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                        "targetServiceRevisionArn": SERVICE_REVISION_ARN,
                    }
                ]
            },
            None,
        )
        stub.add_response(
            "describe_service_revisions",
            {
                "serviceRevisions": [
                    {
                        "serviceRevisionArn": SERVICE_REVISION_ARN,
                        "taskDefinition": f"{ARN8[:-2]}:2",
                    }
                ]
            },
            None,
        )
        stub.add_response(
            "describe_service_deployments",
            _deployment("ROLLBACK_FAILED", statusReason="tasks failed to start"),
            None,
        )
        code, events = _main(
            monkeypatch,
            SplitEcs(ecs, stubbed),
            ["--engine", "ecs", "--family", FAMILY, *BASE, "--output-dir", str(tmp_path)],
        )
    assert code == 1
    assert "ROLLBACK_FAILED; tasks failed to start" in events[-1]["error"]
    assert json.loads((tmp_path / "deploy-result.json").read_text())["ok"] is False


# ------------------------------------------------------------------------------------------
# Assuming the environment's deploy role
# ------------------------------------------------------------------------------------------


def test_session_for_assumes_the_deploy_role_and_refreshes(aws: None) -> None:
    role_arn = "arn:aws:iam::222222222222:role/orders-api-stage-deploy"
    session = deploy.session_for(role_arn, region=REGION, session_name="deploy-orders-api-stage")
    creds = session.get_credentials()
    assert creds.method == "assume-deploy-role"
    assert creds.access_key != os.environ["AWS_ACCESS_KEY_ID"]
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"].startswith(
        "arn:aws:sts::222222222222:assumed-role/orders-api-stage-deploy/deploy-orders-api-stage"
    )


def test_session_for_without_role_uses_the_current_account(aws: None) -> None:
    session = deploy.session_for(None, region=REGION, session_name="x")
    assert session.get_credentials().access_key == os.environ["AWS_ACCESS_KEY_ID"]


def test_session_for_rejects_a_non_role_arn() -> None:
    with pytest.raises(deploy.InputError, match="role-arn: 'arn:aws:iam::222222222222:user/bob'"):
        deploy.session_for("arn:aws:iam::222222222222:user/bob", region=REGION, session_name="x")


def test_where_uses_the_role_account(aws: None) -> None:
    session = boto3.Session(region_name=REGION)
    assert (
        deploy._where(session, "arn:aws:iam::222222222222:role/r")
        == "account 222222222222 / region eu-west-1"
    )
    assert deploy._where(session, None) == f"account {ACCOUNT} / region eu-west-1"


def test_created_after_filter_is_a_utc_datetime() -> None:
    seen: dict[str, Any] = {}

    class Ecs:
        def update_service(self, **kw: Any) -> dict[str, Any]:
            return {"service": {"taskDefinition": kw["taskDefinition"]}}

        def list_service_deployments(self, **kw: Any) -> dict[str, Any]:
            seen.update(kw)
            raise RuntimeError("stop here")

    fixed = dt.datetime(2025, 6, 2, 12, 0, tzinfo=dt.UTC)
    with pytest.raises(RuntimeError):
        deploy.deploy_ecs(
            Ecs(), cluster="c", service="s", task_definition_arn=ARN8, timeout_s=1, interval_s=1,
            now=lambda: fixed, emit=lambda e: None,
        )  # fmt: skip
    assert seen["createdAt"] == {"after": fixed - dt.timedelta(minutes=15)}


# ------------------------------------------------------------------------------------------
# The deploy role's IAM documents (components/render/iam_deploy.py)
# ------------------------------------------------------------------------------------------

ENV_ACCOUNT = "222222222222"
EXEC_ROLE = f"arn:aws:iam::{ENV_ACCOUNT}:role/orders-api-stage-execution"
TASK_ROLE = f"arn:aws:iam::{ENV_ACCOUNT}:role/orders-api-stage-task"
MIGRATE_ROLE = f"arn:aws:iam::{ENV_ACCOUNT}:role/orders-api-stage-migrate-task"


def _policy(engine: str, **extra: Any) -> dict[str, Any]:
    from components.render import iam_deploy

    kwargs: dict[str, Any] = {
        "region": REGION,
        "account_id": ENV_ACCOUNT,
        "cluster": "stage",
        "service": "orders-api",
        "task_family": FAMILY,
        "pass_role_arns": [EXEC_ROLE, TASK_ROLE],
        "engine": engine,
    }
    if engine in ("codedeploy", "any"):
        kwargs.update(
            codedeploy_application="orders-api-stage",
            codedeploy_group="orders-api-stage",
            codedeploy_configs=["CodeDeployDefault.ECSCanary10Percent5Minutes"],
        )
    return iam_deploy.deploy_role_policy(**{**kwargs, **extra})


def _by_sid(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in document["Statement"]}


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize("engine", ["ecs", "codedeploy", "any"])
def test_deploy_role_policy_has_no_star_action_and_star_resource_only_where_aws_has_none(
    engine: str,
) -> None:
    from components.render.iam import actions_of

    document = _policy(
        engine,
        migration_family=f"{FAMILY}-migrate",
        migration_pass_role_arns=[EXEC_ROLE, MIGRATE_ROLE],
    )
    for action in actions_of(document):
        assert action != "*" and not action.endswith(":*") and "*" not in action
    star = {s["Sid"] for s in document["Statement"] if "*" in _as_list(s["Resource"])}
    assert star == (
        {"DescribeTaskDefinitions", "DescribeLoadBalancers"}
        | ({"StopTimedOutDeployments"} if engine != "ecs" else set())
    )


def test_ecs_engine_policy_scopes_every_statement_to_the_environment() -> None:
    statements = _by_sid(_policy("ecs"))
    arn = f"arn:aws:ecs:{REGION}:{ENV_ACCOUNT}"
    assert statements["RegisterFamilyRevisions"]["Resource"] == f"{arn}:task-definition/{FAMILY}:*"
    assert statements["TagFamilyRevisionsOnCreate"]["Condition"] == {
        "StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}
    }
    update = statements["UpdateServiceToFamilyRevisions"]
    assert update["Resource"] == f"{arn}:service/stage/orders-api"
    assert update["Condition"] == {
        "ArnLike": {"ecs:task-definition": f"{arn}:task-definition/{FAMILY}:*"}
    }
    assert set(_as_list(statements["WatchServiceDeployments"]["Resource"])) == {
        f"{arn}:service/stage/orders-api",
        f"{arn}:service-deployment/stage/orders-api/*",
        f"{arn}:service-revision/stage/orders-api/*",
    }
    passrole = statements["PassTaskRoles"]
    assert sorted(_as_list(passrole["Resource"])) == sorted([EXEC_ROLE, TASK_ROLE])
    assert passrole["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert not any(a.startswith("codedeploy:") for s in statements.values() for a in s["Action"])
    assert "RunMigrationTask" not in statements


def test_codedeploy_engine_policy_never_updates_the_service_itself() -> None:
    statements = _by_sid(_policy("codedeploy"))
    cd = f"arn:aws:codedeploy:{REGION}:{ENV_ACCOUNT}"
    assert (
        statements["CodeDeployDeployments"]["Resource"]
        == f"{cd}:deploymentgroup:orders-api-stage/orders-api-stage"
    )
    assert statements["CodeDeployApplication"]["Resource"] == f"{cd}:application:orders-api-stage"
    assert statements["CodeDeployConfigs"]["Resource"] == (
        f"{cd}:deploymentconfig:CodeDeployDefault.ECSCanary10Percent5Minutes"
    )
    actions = {a for s in statements.values() for a in s["Action"]}
    assert "ecs:UpdateService" not in actions and "ecs:ListServiceDeployments" not in actions


def test_migration_statements_run_only_the_migration_family_in_the_cluster() -> None:
    statements = _by_sid(
        _policy(
            "ecs",
            migration_family=f"{FAMILY}-migrate",
            migration_pass_role_arns=[EXEC_ROLE, MIGRATE_ROLE],
        )
    )
    arn = f"arn:aws:ecs:{REGION}:{ENV_ACCOUNT}"
    run = statements["RunMigrationTask"]
    assert run["Resource"] == f"{arn}:task-definition/{FAMILY}-migrate:*"
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": f"{arn}:cluster/stage"}}
    assert statements["WatchMigrationTask"]["Resource"] == f"{arn}:task/stage/*"
    assert sorted(_as_list(statements["PassTaskRoles"]["Resource"])) == sorted(
        [EXEC_ROLE, TASK_ROLE, MIGRATE_ROLE]
    )
    # migrate.py registers a revision of the migration family with the promoted digest.
    families = [f"{arn}:task-definition/{FAMILY}:*", f"{arn}:task-definition/{FAMILY}-migrate:*"]
    assert _as_list(statements["RegisterFamilyRevisions"]["Resource"]) == families
    assert _as_list(statements["TagFamilyRevisionsOnCreate"]["Resource"]) == families
    without = _by_sid(_policy("ecs"))
    assert without["RegisterFamilyRevisions"]["Resource"] == f"{arn}:task-definition/{FAMILY}:*"


def test_artifact_access_is_optional_and_exact() -> None:
    key = f"arn:aws:kms:{REGION}:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    statements = _by_sid(
        _policy(
            "codedeploy",
            artifact_bucket_arn="arn:aws:s3:::orders-api-artifacts",
            artifact_key_arn=key,
        )
    )
    assert statements["ReadPipelineArtifacts"]["Resource"] == "arn:aws:s3:::orders-api-artifacts/*"
    assert statements["DecryptPipelineArtifacts"]["Resource"] == key
    assert "ReadPipelineArtifacts" not in _by_sid(_policy("codedeploy"))


def test_every_call_the_scripts_make_is_granted() -> None:
    """Each boto3 client call in deploy.py/migrate.py maps to an action the policy allows."""
    import re

    from components.render.iam import actions_of
    from components.runtime import migrate

    granted = set(
        actions_of(_policy("ecs", migration_family="m", migration_pass_role_arns=[EXEC_ROLE]))
    )
    granted |= set(actions_of(_policy("codedeploy")))
    session = botocore.session.get_session()
    operations: dict[str, dict[str, str]] = {}
    for service in ("ecs", "codedeploy"):
        model = session.get_service_model(service)
        operations[service] = {botocore.xform_name(name): name for name in model.operation_names}
    called: set[str] = set()
    for module in (deploy, migrate):
        source = Path(str(module.__file__)).read_text()
        for client, method in re.findall(r"\b(ecs|codedeploy)\.([a-z_]+)\(", source):
            assert method in operations[client], f"{client}.{method} is not a {client} operation"
            called.add(f"{client}:{operations[client][method]}")
    assert {
        "ecs:RegisterTaskDefinition",
        "ecs:UpdateService",
        "codedeploy:CreateDeployment",
        "ecs:RunTask",
    } <= called
    assert called - granted == set()


def test_deploy_role_policy_input_errors_name_the_field() -> None:
    from components.render.iam import PolicyError

    cases: list[tuple[dict[str, Any], str, str]] = [
        ({}, "argo", "engine: 'argo' is not one of ['codedeploy', 'ecs', 'any']"),
        ({"task_family": "orders-*"}, "ecs", "task_family: 'orders-*' is not an ECS name"),
        ({"account_id": "2222"}, "ecs", "account_id: '2222' is not a 12-digit AWS account id"),
        ({"pass_role_arns": []}, "ecs", "pass_role_arns: at least one IAM role ARN is required"),
        ({"pass_role_arns": ["arn:aws:iam::222222222222:role/*"]}, "ecs", "is not an IAM role ARN"),
        (
            {"pass_role_arns": ["arn:aws:iam::333333333333:role/x"]},
            "ecs",
            "is in account 333333333333, not the environment account 222222222222",
        ),
        ({"codedeploy_application": None}, "codedeploy", "codedeploy_application: None is not"),
        (
            {"codedeploy_configs": []},
            "codedeploy",
            "codedeploy_configs: name the deployment configs",
        ),
        ({"migration_pass_role_arns": [EXEC_ROLE]}, "ecs", "given without migration_family"),
    ]
    for extra, engine, fragment in cases:
        with pytest.raises(PolicyError) as err:
            _policy(engine, **extra)
        assert fragment in str(err.value), (extra, str(err.value))


def test_deploy_role_trust_policy_trusts_exactly_the_tooling_roles() -> None:
    from components.render.iam import PolicyError
    from components.render.iam_deploy import deploy_role_trust_policy

    pipeline = "arn:aws:iam::111111111111:role/orders-api-pipeline"
    build = "arn:aws:iam::111111111111:role/orders-api-deploy-build"
    document = deploy_role_trust_policy([pipeline, build, pipeline])
    (statement,) = document["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Principal": {"AWS": sorted([build, pipeline])},
        "Action": "sts:AssumeRole",
    }
    for bad in ([], ["111111111111"], ["arn:aws:iam::111111111111:root"], ["*"]):
        with pytest.raises(PolicyError, match="trusted_role_arns"):
            deploy_role_trust_policy(bad)


def test_locating_the_deployment_follows_list_pages() -> None:
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    after = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
    base = {"cluster": "stage", "service": "orders-api", "createdAt": {"after": after}}
    with Stubber(client) as stub:
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": [], "nextToken": "page-2"},
            base,
        )
        stub.add_response(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                        "targetServiceRevisionArn": SERVICE_REVISION_ARN,
                    }
                ]
            },
            {**base, "nextToken": "page-2"},
        )
        stub.add_response(
            "describe_service_revisions",
            {
                "serviceRevisions": [
                    {"serviceRevisionArn": SERVICE_REVISION_ARN, "taskDefinition": ARN8}
                ]
            },
            {"serviceRevisionArns": [SERVICE_REVISION_ARN]},
        )
        stub.add_response(
            "describe_service_deployments",
            _deployment("SUCCESSFUL"),
            {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
        )
        watch = deploy._EcsWatch(client, "stage", "orders-api", ARN8, after)
        assert watch.poll().ok
        assert watch.deployment_arn == SERVICE_DEPLOYMENT_ARN
        stub.assert_no_pending_responses()


def test_registration_that_did_not_keep_the_image_is_an_error() -> None:
    described = _described()
    request = deploy.swap_image(described["taskDefinition"], "app", NEW_IMAGE)
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "register_task_definition",
            {"taskDefinition": {**described["taskDefinition"], "revision": 8}},  # old image
            request,
        )
        with pytest.raises(deploy.DeployError, match=r"stored image .* for 'app', not"):
            deploy.register_task_definition(client, request, "app", NEW_IMAGE)


# ------------------------------------------------------------------------------------------
# --engine auto: the engine follows the service's deployment controller
# ------------------------------------------------------------------------------------------


def _record_calls(*clients: Any) -> list[str]:
    """``service:Operation`` of every API call the clients make (moto'd or stubbed)."""
    calls: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.endpoint_prefix}:{model.name}")

    for client in clients:
        client.meta.events.register("provide-client-params", hook)
    return calls


@pytest.mark.parametrize(
    ("svc", "controller", "engine"),
    [
        ({"deploymentController": {"type": "CODE_DEPLOY"}}, "CODE_DEPLOY", "codedeploy"),
        ({"deploymentController": {"type": "ECS"}}, "ECS", "ecs"),
        ({"deploymentController": {}}, "ECS", "ecs"),
        ({}, "ECS", "ecs"),  # DescribeServices omits the controller: the default, ECS
    ],
)
def test_controller_to_engine(svc: dict[str, Any], controller: str, engine: str) -> None:
    assert deploy.controller_of(svc) == controller
    assert deploy.engine_for_controller(controller, service="s", cluster="c") == engine


def test_external_controller_is_refused_with_the_reason() -> None:
    with pytest.raises(deploy.InputError) as err:
        deploy.engine_for_controller("EXTERNAL", service="orders-api", cluster="stage")
    assert err.value.exit_code == 2
    assert (
        "service 'orders-api' in cluster 'stage' uses the EXTERNAL deployment controller; "
        "deploy.py deploys only services on ['CODE_DEPLOY', 'ECS']"
    ) in str(err.value)


def test_auto_on_a_code_deploy_service_creates_a_codedeploy_deployment(aws: None) -> None:
    from moto.codedeploy.models import codedeploy_backends

    from components.render.iam import actions_of

    ecs, old_arn = _seed_ecs("CODE_DEPLOY")
    cd = _seed_codedeploy()
    calls = _record_calls(ecs, cd)
    backend = codedeploy_backends[ACCOUNT][REGION]
    t = FakeTime()

    def sleep(seconds: float) -> None:
        t.sleep(seconds)
        for deployment in backend.deployments.values():
            deployment.status = "Succeeded"

    events: list[dict[str, Any]] = []
    result = deploy.run(
        _args(
            "--engine", "auto",
            "--codedeploy-app", "orders-api-stage", "--codedeploy-group", "orders-api-stage",
        ),
        session=FakeSession({"ecs": ecs, "codedeploy": cd, "sts": boto3.client("sts")}),
        clock=t.clock,
        sleep=sleep,
        emit=events.append,
    )  # fmt: skip
    new_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:2"
    assert result["ok"] and result["engine"] == "codedeploy"
    assert result["mode"] == "create-deployment" and result["state"] == "Succeeded"
    assert events[0] == {
        "event": "engine",
        "controller": "CODE_DEPLOY",
        "engine": "codedeploy",
        "mode": "create-deployment",
    }
    info = cd.get_deployment(deploymentId=result["deployment"])["deploymentInfo"]
    assert (info["applicationName"], info["deploymentGroupName"]) == ("orders-api-stage",) * 2
    appspec = yaml.safe_load(info["revision"]["appSpecContent"]["content"])
    assert appspec["Resources"][0]["TargetService"]["Properties"]["TaskDefinition"] == new_arn
    # CodeDeploy shifts the traffic: the service itself is not updated
    service = ecs.describe_services(cluster="stage", services=["orders-api"])["services"][0]
    assert service["taskDefinition"] == old_arn
    assert "ecs:UpdateService" not in calls and "codedeploy:CreateDeployment" in calls
    # a CODE_DEPLOY environment's deploy role allows every call auto made
    assert set(calls) - set(actions_of(_policy("codedeploy"))) == set()


def test_auto_on_an_ecs_service_updates_the_service(aws: None) -> None:
    from components.render.iam import actions_of

    ecs, old_arn = _seed_ecs("ECS")
    stubbed = boto3.client("ecs", region_name=REGION)
    calls = _record_calls(ecs, stubbed)
    new_arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{FAMILY}:2"
    events: list[dict[str, Any]] = []
    t = FakeTime()
    with Stubber(stubbed) as stub:
        stub.add_response(
            "list_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SERVICE_DEPLOYMENT_ARN,
                        "targetServiceRevisionArn": SERVICE_REVISION_ARN,
                    }
                ]
            },
            {"cluster": "stage", "service": "orders-api", "createdAt": {"after": ANY}},
        )
        stub.add_response(
            "describe_service_revisions",
            {
                "serviceRevisions": [
                    {"serviceRevisionArn": SERVICE_REVISION_ARN, "taskDefinition": new_arn}
                ]
            },
            {"serviceRevisionArns": [SERVICE_REVISION_ARN]},
        )
        stub.add_response(
            "describe_service_deployments",
            _deployment("SUCCESSFUL"),
            {"serviceDeploymentArns": [SERVICE_DEPLOYMENT_ARN]},
        )
        # the pipeline passes the CodeDeploy names for every environment; ecs ignores them
        result = deploy.run(
            _args(
                "--engine", "auto",
                "--codedeploy-app", "orders-api-stage", "--codedeploy-group", "orders-api-stage",
            ),
            session=FakeSession({"ecs": SplitEcs(ecs, stubbed), "sts": boto3.client("sts")}),
            clock=t.clock,
            sleep=t.sleep,
            emit=events.append,
        )  # fmt: skip
        stub.assert_no_pending_responses()
    assert result["ok"] and result["engine"] == "ecs" and result["mode"] == "update-service"
    assert result["taskDefinition"] == new_arn != old_arn
    assert events[0]["event"] == "engine" and events[0]["controller"] == "ECS"
    service = ecs.describe_services(cluster="stage", services=["orders-api"])["services"][0]
    assert service["taskDefinition"] == new_arn
    assert not [c for c in calls if c.startswith("codedeploy:")]
    # an ECS environment's deploy role allows every call auto made
    assert set(calls) - set(actions_of(_policy("ecs"))) == set()


def test_auto_treats_a_service_without_a_controller_as_ecs() -> None:
    client = boto3.client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y"
    )
    events: list[dict[str, Any]] = []
    with Stubber(client) as stub:
        stub.add_response(
            "describe_services",
            {"services": [{"status": "ACTIVE", "taskDefinition": ARN8}], "failures": []},
            {"cluster": "stage", "services": ["orders-api"]},
        )
        stub.add_client_error(
            "describe_task_definition", "ClientException", "Unable to describe task definition."
        )
        with pytest.raises(deploy.InputError, match="task definition family 'orders-api-stage'"):
            deploy.run(
                _args("--engine", "auto"),
                session=FakeSession({"ecs": client}),
                emit=events.append,
            )
    assert events == [
        {"event": "engine", "controller": "ECS", "engine": "ecs", "mode": "update-service"}
    ]


def test_auto_refuses_external_and_codedeploy_without_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    cases = [
        (
            "EXTERNAL",
            ["--engine", "auto"],
            "uses the EXTERNAL deployment controller; deploy.py deploys only services on",
        ),
        (  # an explicit engine gets the same reason, not a wrong "use --engine ecs" hint
            "EXTERNAL",
            ["--engine", "ecs"],
            "uses the EXTERNAL deployment controller; deploy.py deploys only services on",
        ),
        (
            "CODE_DEPLOY",
            ["--engine", "auto"],
            "codedeploy-app and codedeploy-group are required with --mode create-deployment "
            "(with --engine auto (service 'orders-api' uses the CODE_DEPLOY deployment "
            "controller, so the engine is codedeploy))",
        ),
        (
            "ECS",
            ["--engine", "auto", "--mode", "artifacts"],
            "mode: 'artifacts' is not valid with --engine auto (service 'orders-api' uses the "
            "ECS deployment controller, so the engine is ecs); use one of ['update-service']",
        ),
    ]
    for controller, engine_args, fragment in cases:
        with fresh_account():  # a fresh account per case
            ecs, arn = _seed_ecs(controller)
            code, events = _main(monkeypatch, ecs, [*engine_args, "--family", FAMILY, *BASE])
            assert code == 2, (controller, engine_args)
            assert events[-1]["ok"] is False
            assert fragment in events[-1]["error"], (controller, events[-1]["error"])
            assert ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"] == [arn]


# ------------------------------------------------------------------------------------------
# engine="any" (the single-account tooling deployer) and the deployment-config patterns
# ------------------------------------------------------------------------------------------


def test_any_engine_is_exactly_both_engines() -> None:
    both = _by_sid(_policy("ecs")) | _by_sid(_policy("codedeploy"))
    assert _by_sid(_policy("any")) == both


def test_deploy_role_statements_are_the_policy_statements() -> None:
    from components.render import iam_deploy
    from components.render.iam import policy_document

    kwargs: dict[str, Any] = {
        "region": REGION,
        "account_id": ENV_ACCOUNT,
        "cluster": "stage",
        "service": "orders-api",
        "task_family": FAMILY,
        "pass_role_arns": [EXEC_ROLE, TASK_ROLE],
        "engine": "ecs",
    }
    assert policy_document(iam_deploy.deploy_role_statements(**kwargs)) == _policy("ecs")


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(["TimeBasedCanary", "TimeBasedLinear"]),
    percentage=st.integers(1, 99),
    minutes=st.integers(1, 2880),
    environment=st.sampled_from(["dev", "stage", "prod", "qa2"]),
)
def test_config_patterns_cover_every_config_an_environment_can_use(
    kind: str, percentage: int, minutes: int, environment: str
) -> None:
    import fnmatch

    from components import naming
    from components.render import deployment, iam_deploy

    prefix = naming.Names("orders-api", environment).prefix
    patterns = iam_deploy.codedeploy_config_patterns(prefix)
    routing = deployment.CustomTrafficRouting(kind, percentage, minutes)  # type: ignore[arg-type]
    custom = deployment.codedeploy_config(routing, name_prefix=prefix).deployment_config_name
    for name in (custom, *deployment.PREDEFINED_ECS_CONFIGS):
        assert [p for p in patterns if fnmatch.fnmatchcase(name, p)], (name, patterns)
    # ... and no other environment's custom configs
    other = naming.Names("orders-api", environment + "x").prefix
    foreign = deployment.codedeploy_config(routing, name_prefix=other).deployment_config_name
    assert not [p for p in patterns if fnmatch.fnmatchcase(foreign, p)]


def test_config_patterns_land_in_the_policy_and_only_a_trailing_star_is_accepted() -> None:
    from components.render import iam_deploy
    from components.render.iam import PolicyError

    patterns = iam_deploy.codedeploy_config_patterns("orders-api-stage")
    configs = _by_sid(_policy("any", codedeploy_configs=patterns))["CodeDeployConfigs"]
    cd = f"arn:aws:codedeploy:{REGION}:{ENV_ACCOUNT}:deploymentconfig"
    assert configs["Resource"] == [f"{cd}:{p}" for p in patterns]
    assert f"{cd}:orders-api-stage-canary-*" in configs["Resource"]
    for bad in ("*", "orders-*-canary", "orders**"):
        with pytest.raises(PolicyError, match=rf"codedeploy_configs: '{re.escape(bad)}' is not"):
            _policy("codedeploy", codedeploy_configs=[bad])
