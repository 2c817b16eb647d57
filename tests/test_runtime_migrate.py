"""The EF Core migration step (components/runtime/migrate.py).

botocore's Stubber serves RunTask/DescribeTasks/StopTask: moto starts tasks but models neither
container exit codes nor stop codes, which are the whole point here. The Stubber still checks
every request against the ECS API model.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from components.runtime import deploy, migrate

REGION = "eu-west-1"
CLUSTER = "stage"
FAMILY = "orders-api-stage-migrate"
TD_ARN = f"arn:aws:ecs:{REGION}:222222222222:task-definition/{FAMILY}:3"
TASK_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TASK_ARN = f"arn:aws:ecs:{REGION}:222222222222:task/{CLUSTER}/{TASK_ID}"
SUBNETS = ["subnet-0a1b2c3d4e5f60718", "subnet-0b1c2d3e4f5a60718"]
GROUPS = ["sg-0123456789abcdef0"]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client() -> Any:
    return boto3.client("ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")


EXPECTED_RUN_TASK = {
    "cluster": CLUSTER,
    "taskDefinition": FAMILY,
    "count": 1,
    "launchType": "FARGATE",
    "networkConfiguration": {
        "awsvpcConfiguration": {
            "subnets": SUBNETS,
            "securityGroups": GROUPS,
            "assignPublicIp": "DISABLED",
        }
    },
    "startedBy": "dotnet-delivery-migrate",
    "propagateTags": "TASK_DEFINITION",
}


def _started(stub: Stubber, expected: dict[str, Any] | None = None) -> None:
    stub.add_response(
        "run_task",
        {
            "tasks": [
                {"taskArn": TASK_ARN, "taskDefinitionArn": TD_ARN, "lastStatus": "PROVISIONING"}
            ],
            "failures": [],
        },
        expected or EXPECTED_RUN_TASK,
    )


def _task(last: str, **extra: Any) -> dict[str, Any]:
    container = {"name": "migrate", "lastStatus": last, **extra.pop("container", {})}
    return {
        "tasks": [
            {
                "taskArn": TASK_ARN,
                "lastStatus": last,
                "desiredStatus": "RUNNING",
                "containers": [container],
                **extra,
            }
        ]
    }


def _describe(stub: Stubber, response: dict[str, Any]) -> None:
    stub.add_response("describe_tasks", response, {"cluster": CLUSTER, "tasks": [TASK_ARN]})


def _run(
    client: Any, t: FakeTime, events: list[dict[str, Any]] | None = None, **kw: Any
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "cluster": CLUSTER,
        "task_definition": FAMILY,
        "subnets": SUBNETS,
        "security_groups": GROUPS,
        "container": "migrate",
        "timeout_s": 600,
        "interval_s": 10,
        "clock": t.clock,
        "sleep": t.sleep,
        "emit": (events.append if events is not None else lambda e: None),
    }
    return migrate.run_migration(client, **{**args, **kw})


def test_successful_migration_runs_one_private_fargate_task_and_waits() -> None:
    client, t = _client(), FakeTime()
    events: list[dict[str, Any]] = []
    with Stubber(client) as stub:
        _started(stub)
        _describe(stub, _task("PROVISIONING"))
        _describe(stub, _task("RUNNING"))
        _describe(
            stub,
            _task(
                "STOPPED",
                stopCode="EssentialContainerExited",
                stoppedReason="Essential container in task exited",
                container={"exitCode": 0},
            ),
        )
        result = _run(client, t, events)
        stub.assert_no_pending_responses()
    assert result == {"task": TASK_ARN, "exitCode": 0, "stopCode": "EssentialContainerExited"}
    assert t.sleeps == [10, 10]
    assert [e["state"] for e in events if e["event"] == "progress"] == [
        "PROVISIONING",
        "RUNNING",
        "STOPPED",
    ]


def test_command_override_targets_the_migration_container() -> None:
    client, t = _client(), FakeTime()
    expected = {
        **EXPECTED_RUN_TASK,
        "overrides": {
            "containerOverrides": [{"name": "migrate", "command": ["./efbundle", "--verbose"]}]
        },
    }
    with Stubber(client) as stub:
        _started(stub, expected)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 0})
        )
        _run(client, t, command=["./efbundle", "--verbose"])
        stub.assert_no_pending_responses()


def test_non_zero_exit_fails_with_code_reason_and_log_location() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        _started(stub)
        _describe(
            stub,
            _task(
                "STOPPED",
                stopCode="EssentialContainerExited",
                stoppedReason="Essential container in task exited",
                container={"exitCode": 1},
            ),
        )
        stub.add_response(
            "describe_task_definition",
            {
                "taskDefinition": {
                    "family": FAMILY,
                    "containerDefinitions": [
                        {
                            "name": "migrate",
                            "image": "repo@sha256:" + "a" * 64,
                            "logConfiguration": {
                                "logDriver": "awslogs",
                                "options": {
                                    "awslogs-group": "/ecs/stage/orders-api-migrate",
                                    "awslogs-stream-prefix": "ef",
                                },
                            },
                        }
                    ],
                }
            },
            {"taskDefinition": TD_ARN},
        )
        with pytest.raises(migrate.MigrationError) as err:
            _run(client, t)
        stub.assert_no_pending_responses()
    message = str(err.value)
    assert f"migration task {TASK_ID} failed" in message
    assert "container 'migrate' exited with code 1" in message
    assert "stopCode EssentialContainerExited: Essential container in task exited" in message
    assert f"logs: /ecs/stage/orders-api-migrate ef/migrate/{TASK_ID}" in message


def test_task_that_never_ran_fails_with_the_stop_reason() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        _started(stub)
        _describe(
            stub,
            _task(
                "STOPPED",
                stopCode="TaskFailedToStart",
                stoppedReason="CannotPullContainerError: pull image manifest retried 5 time(s)",
                container={"reason": "CannotPullContainerError"},
            ),
        )
        stub.add_client_error(
            "describe_task_definition", "AccessDeniedException"
        )  # logs are best effort
        with pytest.raises(migrate.MigrationError) as err:
            _run(client, t)
    message = str(err.value)
    assert "container 'migrate' did not run to completion (no exit code)" in message
    assert "container reason: CannotPullContainerError" in message
    assert "stopCode TaskFailedToStart: CannotPullContainerError" in message
    assert "logs:" not in message


def test_zero_exit_but_other_stop_code_is_a_failure() -> None:
    status = migrate.task_outcome(
        {
            "lastStatus": "STOPPED",
            "stopCode": "SpotInterruption",
            "stoppedReason": "capacity reclaimed",
            "containers": [{"name": "migrate", "exitCode": 0}],
        },
        "migrate",
    )
    assert status.done and not status.ok
    assert "stopCode SpotInterruption: capacity reclaimed" in status.reason


def test_missing_container_is_named() -> None:
    status = migrate.task_outcome(
        {"lastStatus": "STOPPED", "containers": [{"name": "app", "exitCode": 0}]}, "migrate"
    )
    assert (
        not status.ok
        and "container 'migrate' is not in the task (containers: ['app'])" in status.reason
    )


def test_run_task_failures_are_reported() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_response(
            "run_task",
            {
                "tasks": [],
                "failures": [
                    {"arn": TD_ARN, "reason": "RESOURCE:ENI", "detail": "no free IPs in subnet"}
                ],
            },
            EXPECTED_RUN_TASK,
        )
        with pytest.raises(migrate.MigrationError) as err:
            _run(client, t)
    assert f"RunTask {FAMILY} in cluster 'stage' started 0 tasks" in str(err.value)
    assert f"{TD_ARN}: RESOURCE:ENI (no free IPs in subnet)" in str(err.value)


def test_timeout_stops_the_task_and_fails() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        _started(stub)
        for _ in range(3):  # 0, 10, 15 (deadline)
            _describe(stub, _task("RUNNING"))
        stub.add_response(
            "stop_task",
            {"task": {"taskArn": TASK_ARN}},
            {
                "cluster": CLUSTER,
                "task": TASK_ARN,
                "reason": "migration timed out after 15s (dotnet-delivery)",
            },
        )
        with pytest.raises(migrate.MigrationError) as err:
            _run(client, t, timeout_s=15)
        stub.assert_no_pending_responses()
    assert f"migration task {TASK_ID} timed out after 15s" in str(err.value)
    assert "task stopped" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"subnets": []}, "subnets: []"),
        ({"subnets": ["subnet-xyz"]}, "subnets: ['subnet-xyz']"),
        ({"security_groups": ["default"]}, "security-groups: ['default']"),
        ({"container": ""}, "must be non-empty"),
        ({"timeout_s": 0}, "must be > 0"),
    ],
)
def test_bad_input_is_refused_before_anything_starts(kwargs: dict[str, Any], fragment: str) -> None:
    client = _client()
    with Stubber(client) as stub, pytest.raises(migrate.MigrationInputError) as err:
        _run(client, FakeTime(), **kwargs)
    assert fragment in str(err.value)
    stub.assert_no_pending_responses()


IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api@sha256:" + "b" * 64
OLD_IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api@sha256:" + "a" * 64
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:222222222222:secret:db-AbCdEf"
LATEST_ARN = f"arn:aws:ecs:{REGION}:222222222222:task-definition/{FAMILY}:2"
TAGS = [
    {"key": "Application", "value": "orders-api"},
    {"key": "MigrationTimeoutSeconds", "value": "30"},
]


def _latest() -> dict[str, Any]:
    """DescribeTaskDefinition's taskDefinition of the migration family (as ECS returns it)."""
    return {
        "taskDefinitionArn": LATEST_ARN,
        "family": FAMILY,
        "revision": 2,
        "status": "ACTIVE",
        "taskRoleArn": "arn:aws:iam::222222222222:role/orders-api-stage-migrate-task",
        "executionRoleArn": "arn:aws:iam::222222222222:role/orders-api-stage-migrate-exec",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver.awslogs"}],
        "cpu": "512",
        "memory": "1024",
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "volumes": [{"name": "tmp"}],
        "containerDefinitions": [
            {
                "name": "migrate",
                "image": OLD_IMAGE,
                "essential": True,
                "command": ["./efbundle"],
                "secrets": [
                    {
                        "name": "ConnectionStrings__Orders",
                        "valueFrom": SECRET_ARN,
                    }
                ],
                "readonlyRootFilesystem": True,
                "user": "1654",
            }
        ],
    }


def _expected_register() -> dict[str, Any]:
    """The latest revision minus read-only keys, the new image in `migrate`, its tags."""
    latest = _latest()
    for key in ("taskDefinitionArn", "revision", "status", "compatibilities", "requiresAttributes"):
        del latest[key]
    latest["containerDefinitions"][0]["image"] = IMAGE
    latest["tags"] = TAGS
    return latest


def _registered(stub: Stubber, expected: dict[str, Any] | None = None) -> None:
    stub.add_response(
        "describe_task_definition",
        {"taskDefinition": _latest(), "tags": TAGS},
        {"taskDefinition": FAMILY, "include": ["TAGS"]},
    )
    new = {**_expected_register(), "taskDefinitionArn": TD_ARN, "revision": 3}
    new.pop("tags")
    stub.add_response(
        "register_task_definition", {"taskDefinition": new}, expected or _expected_register()
    )


RUN_NEW_REVISION = {**EXPECTED_RUN_TASK, "taskDefinition": TD_ARN}


def _release(client: Any, t: FakeTime, events: list[dict[str, Any]], **kw: Any) -> Any:
    args: dict[str, Any] = {
        "cluster": CLUSTER,
        "family": FAMILY,
        "image_uri": IMAGE,
        "subnets": SUBNETS,
        "security_groups": GROUPS,
        "container": "migrate",
        "interval_s": 10,
        "clock": t.clock,
        "sleep": t.sleep,
        "emit": events.append,
    }
    return migrate.migrate_release(client, **{**args, **kw})


def test_release_registers_the_latest_revision_with_the_digest_and_runs_that_revision() -> None:
    client, t = _client(), FakeTime()
    events: list[dict[str, Any]] = []
    with Stubber(client) as stub:
        _registered(stub)  # the Stubber checks the request equals exactly _expected_register()
        _started(stub, RUN_NEW_REVISION)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 0})
        )
        result = _release(client, t, events)
        stub.assert_no_pending_responses()
    assert result == {
        "taskDefinition": TD_ARN,
        "image": IMAGE,
        "task": TASK_ARN,
        "exitCode": 0,
        "stopCode": "EssentialContainerExited",
    }
    assert [e["event"] for e in events][:3] == ["latest-revision", "registered", "run-task"]
    assert events[1]["taskDefinition"] == TD_ARN


def test_registered_revision_differs_from_the_latest_only_in_the_migrate_image() -> None:
    latest = _latest()
    request = migrate.swap_image(latest, "migrate", IMAGE, tags=TAGS)
    assert latest["containerDefinitions"][0]["image"] == OLD_IMAGE  # input untouched
    assert request["containerDefinitions"][0].pop("image") == IMAGE
    original = copy.deepcopy(latest)
    original["containerDefinitions"][0].pop("image")
    kept = {k: v for k, v in original.items() if k not in migrate.READ_ONLY_TASK_DEFINITION_KEYS}
    assert {k: v for k, v in request.items() if k != "tags"} == kept
    assert request["tags"] == TAGS


def test_release_failure_is_reported_with_the_new_revision() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        _registered(stub)
        _started(stub, RUN_NEW_REVISION)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 1})
        )
        stub.add_client_error("describe_task_definition", "AccessDeniedException")
        with pytest.raises(migrate.MigrationError) as err:
            _release(client, t, [])
        stub.assert_no_pending_responses()
    assert f"migration task {TASK_ID} failed: container 'migrate' exited with code 1" in str(
        err.value
    )


def test_release_timeout_defaults_to_the_revision_tag_and_stops_the_task() -> None:
    client, t = _client(), FakeTime()
    with Stubber(client) as stub:
        _registered(stub)
        _started(stub, RUN_NEW_REVISION)
        for _ in range(4):  # 0, 10, 20, 30 (the tag's 30 s deadline)
            _describe(stub, _task("RUNNING"))
        stub.add_response(
            "stop_task",
            {"task": {"taskArn": TASK_ARN}},
            {
                "cluster": CLUSTER,
                "task": TASK_ARN,
                "reason": "migration timed out after 30s (dotnet-delivery)",
            },
        )
        with pytest.raises(migrate.MigrationError) as err:
            _release(client, t, [])
        stub.assert_no_pending_responses()
    assert "timed out after 30s (limit 30s)" in str(err.value) and "task stopped" in str(err.value)


def test_timeout_tag_parsing() -> None:
    assert migrate.timeout_from_tags(TAGS) == 30
    assert migrate.timeout_from_tags([{"key": "MigrationTimeoutSeconds", "value": "x"}]) is None
    assert migrate.timeout_from_tags([{"key": "MigrationTimeoutSeconds", "value": "0"}]) is None
    assert migrate.timeout_from_tags([]) is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (
            {"image_uri": "orders-api:1.2.3"},
            "image-uri: 'orders-api:1.2.3' is not pinned by digest",
        ),
        ({"family": f"{FAMILY}:3"}, f"family: '{FAMILY}:3' is not a task definition family"),
        ({"subnets": ["nope"]}, "subnets: ['nope']"),
        ({"container": "app"}, "container: 'app' not found exactly once"),
    ],
)
def test_release_bad_input_registers_nothing(kwargs: dict[str, Any], fragment: str) -> None:
    client = _client()
    with Stubber(client) as stub:
        if "container" in kwargs:  # found out only once the revision is described
            stub.add_response(
                "describe_task_definition",
                {"taskDefinition": _latest(), "tags": TAGS},
                {"taskDefinition": FAMILY, "include": ["TAGS"]},
            )
        with pytest.raises(migrate.MigrationInputError) as err:
            _release(client, FakeTime(), [], **kwargs)
        stub.assert_no_pending_responses()
    assert fragment in str(err.value)


def test_missing_family_says_to_enable_migration() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_task_definition", "ClientException", "Unable to describe task definition."
        )
        with pytest.raises(migrate.MigrationInputError) as err:
            _release(client, FakeTime(), [])
    assert f"migration task definition family {FAMILY!r} not found" in str(err.value)
    assert "migration.enabled" in str(err.value)


def test_deploy_helpers_raise_migration_errors_with_deploy_messages() -> None:
    """migrate.py reuses deploy.py's helpers; their refusals are this module's errors (exit 2 /
    exit 1) with deploy.py's messages."""
    with pytest.raises(migrate.MigrationInputError) as err:
        migrate.parse_image_uri("orders-api:1.2.3")
    assert err.value.exit_code == migrate.EXIT_INPUT == 2
    assert str(err.value) == (
        "image-uri: 'orders-api:1.2.3' is not pinned by digest; "
        "expected REPOSITORY@sha256:<64 lowercase hex> (no tag)"
    )
    with pytest.raises(migrate.MigrationInputError, match="container: 'nope' not found exactly"):
        migrate.swap_image(_latest(), "nope", IMAGE)
    with pytest.raises(migrate.MigrationInputError, match="role-arn: 'admin' is not an IAM role"):
        migrate.session_for("admin", region=REGION, session_name="migrate-stage")
    client = _client()
    registered = {**_expected_register(), "taskDefinitionArn": "not-an-arn"}
    registered.pop("tags")
    with Stubber(client) as stub:
        stub.add_response(
            "register_task_definition", {"taskDefinition": registered}, _expected_register()
        )
        with pytest.raises(migrate.MigrationError) as failed:
            migrate.register_revision(client, _expected_register(), "migrate", IMAGE)
    assert not isinstance(failed.value, migrate.MigrationInputError)
    assert failed.value.exit_code == migrate.EXIT_FAILED == 1
    assert "RegisterTaskDefinition returned no task-definition ARN: 'not-an-arn'" in str(
        failed.value
    )


class _Session:
    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, name: str, config: Any = None) -> Any:
        return self._client


def test_cli_exit_codes(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    client = _client()
    session = _Session(client)
    detail = tmp_path / "imageDetail.json"
    detail.write_text(json.dumps({"ImageURI": IMAGE}), encoding="utf-8")
    events: list[dict[str, Any]] = []
    argv = ["--cluster", CLUSTER, "--family", FAMILY, "--container", "migrate"]
    argv += ["--security-groups", ",".join(GROUPS), "--poll-seconds", "0.01"]
    argv += ["--timeout-seconds", "5"]
    good = [*argv, "--subnets", ",".join(SUBNETS)]
    monkeypatch.setattr(migrate.time, "sleep", lambda s: None)
    with Stubber(client) as stub:
        _registered(stub)
        _started(stub, RUN_NEW_REVISION)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 0})
        )
        code = migrate.main(
            [*good, "--image-detail-file", str(detail)], session=session, emit=events.append
        )
        stub.assert_no_pending_responses()
    assert code == 0
    assert events[-1] == {
        "event": "result",
        "ok": True,
        "taskDefinition": TD_ARN,
        "image": IMAGE,
        "task": TASK_ARN,
        "exitCode": 0,
        "stopCode": "EssentialContainerExited",
    }
    # bad input: exit 2, nothing called
    bad = [*argv, "--subnets", "nope", "--image-uri", IMAGE]
    assert migrate.main(bad, session=session, emit=events.append) == 2
    assert "subnets: ['nope']" in events[-1]["error"]
    tag = [*good, "--image-uri", "orders-api:latest"]
    assert migrate.main(tag, session=session, emit=events.append) == 2
    assert "is not pinned by digest" in events[-1]["error"]
    missing = [*good, "--image-detail-file", str(tmp_path / "none.json")]
    assert migrate.main(missing, session=session, emit=events.append) == 2
    assert "image-detail-file: cannot read" in events[-1]["error"]
    # migration fails: exit 1
    with Stubber(client) as stub:
        _registered(stub)
        _started(stub, RUN_NEW_REVISION)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 3})
        )
        stub.add_client_error("describe_task_definition", "ClientException")
        code = migrate.main([*good, "--image-uri", IMAGE], session=session, emit=events.append)
    assert code == 1
    assert "exited with code 3" in events[-1]["error"]
    # AWS refuses a call (e.g. the deploy role may not register): exit 1, named
    with Stubber(client) as stub:
        stub.add_response(
            "describe_task_definition",
            {"taskDefinition": _latest(), "tags": TAGS},
            {"taskDefinition": FAMILY, "include": ["TAGS"]},
        )
        stub.add_client_error("register_task_definition", "AccessDeniedException", "not allowed")
        code = migrate.main([*good, "--image-uri", IMAGE], session=session, emit=events.append)
    assert code == 1
    assert events[-1]["error"] == "AccessDeniedException: not allowed"
    # exactly one image source
    with pytest.raises(SystemExit):
        migrate.parse_args(good)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or "").split(".")[0])
    return names


def test_deploy_is_self_contained_and_migrate_imports_only_deploy_beside_it() -> None:
    allowed = set(sys.stdlib_module_names) | {"boto3", "botocore"}
    deploy_imports = _imported_modules(Path(str(deploy.__file__)))
    assert deploy_imports - allowed == set()
    migrate_imports = _imported_modules(Path(str(migrate.__file__)))
    assert migrate_imports - allowed == {"."}  # `from . import deploy`, nothing from components
    # the helpers are deploy.py's own, not copies
    assert migrate.wait_for is deploy.wait_for and migrate.Status is deploy.Status
    assert migrate.swap_image.__wrapped__ is deploy.swap_image  # type: ignore[attr-defined]


def _ship_like_the_migrate_step(root: Path) -> Path:
    """Run the migrate buildspec's ``aws s3 cp`` commands against a local bucket holding the
    objects components/pipeline.py uploads; return where the buildspec runs migrate.py from."""
    from components.pipeline import DEPLOY_SCRIPT_KEY, MIGRATE_SCRIPT_KEY, RUNTIME_DIR
    from components.render import pipeline_stages as ps

    bucket = root / "bucket"
    for key, name in ((DEPLOY_SCRIPT_KEY, "deploy.py"), (MIGRATE_SCRIPT_KEY, "migrate.py")):
        (bucket / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RUNTIME_DIR / name, bucket / key)
    spec = yaml.safe_load(
        ps.migrate_buildspec(
            bucket="artifacts",
            script_key=MIGRATE_SCRIPT_KEY,
            deploy_script_key=DEPLOY_SCRIPT_KEY,
        )
    )
    # The step is one block command (functions and `set -e` must live in one shell).
    (block,) = spec["phases"]["build"]["commands"]
    lines = [line.strip() for line in block.splitlines()]
    copies = [line for line in lines if line.startswith("aws s3 cp ")]
    (run,) = [line for line in lines if line.startswith("python3 ")]
    assert len(copies) == 2
    # `aws s3 cp "s3://artifacts/KEY" DEST` copies bucket/KEY to fs/DEST under root
    fake_aws = (
        'aws() { mkdir -p "$ROOT/fs$(dirname "$4")"; '
        'cp "$ROOT/bucket/${3#s3://artifacts/}" "$ROOT/fs$4"; }'
    )
    subprocess.run(
        ["bash", "-euc", "\n".join([fake_aws, *copies])],
        env={"PATH": os.environ["PATH"], "ROOT": str(root)},
        check=True,
    )
    return root / "fs" / run.split()[1].lstrip("/")


def test_shipped_layout_runs_isolated_from_the_repository(tmp_path: Path) -> None:
    """What the migrate step ships - only migrate.py and deploy.py, side by side - runs with
    no repository on sys.path (``-I``: no script dir, no PYTHONPATH, no user site)."""
    script = _ship_like_the_migrate_step(tmp_path)
    assert sorted(p.name for p in script.parent.iterdir()) == ["deploy.py", "migrate.py"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-I", str(script), *args],
            cwd=script.parent,
            env={"PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            check=False,
        )

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "--image-detail-file" in helped.stdout and "--family" in helped.stdout
    # deploy.py's digest check, raised as this module's input error: exit 2, one JSON result
    bad = run(
        *("--cluster", CLUSTER, "--family", FAMILY, "--container", "migrate"),
        *("--subnets", SUBNETS[0], "--security-groups", GROUPS[0]),
        *("--image-uri", "orders-api:latest"),
    )
    assert bad.returncode == 2, bad.stderr
    result = json.loads(bad.stdout.splitlines()[-1])
    assert result["ok"] is False and "is not pinned by digest" in result["error"]
    assert "migration failed: image-uri: 'orders-api:latest'" in bad.stderr
    # without deploy.py beside it, it refuses to start and says why
    (script.parent / "deploy.py").unlink()
    missing = run("--help")
    assert missing.returncode != 0
    assert "migrate.py needs deploy.py beside it" in missing.stderr
