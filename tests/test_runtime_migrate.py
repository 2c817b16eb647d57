"""The EF Core migration step (components/runtime/migrate.py).

botocore's Stubber serves RunTask/DescribeTasks/StopTask: moto starts tasks but models neither
container exit codes nor stop codes, which are the whole point here. The Stubber still checks
every request against the ECS API model.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
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


@pytest.mark.parametrize(
    "script",
    [
        ["RUNNING", "RUNNING", "DONE"],
        ["RUNNING"] * 10,
        ["DONE"],
    ],
)
def test_wait_loop_matches_the_deploy_steps(script: list[str]) -> None:
    """migrate.py carries its own copy of the wait loop (one-file scripts); it must behave alike."""
    outcomes = []
    for module in (migrate, deploy):
        t = FakeTime()
        states = iter(script)
        polls: list[float] = []

        def poll(
            module: Any = module, states: Any = states, t: FakeTime = t, polls: list[float] = polls
        ) -> Any:
            polls.append(t.now)
            state = next(states)
            return module.Status(state, done=state == "DONE", ok=True)

        try:
            status = module.wait_for(
                poll, timeout_s=25, interval_s=10, clock=t.clock, sleep=t.sleep
            )
            outcomes.append(("done", status.state, polls, t.sleeps))
        except (migrate.WaitTimeout, deploy.WaitTimeout) as exc:
            outcomes.append(("timeout", exc.last.state, polls, t.sleeps))
    assert outcomes[0] == outcomes[1]


def test_cli_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client()

    class Session:
        def client(self, name: str, config: Any = None) -> Any:
            return client

    events: list[dict[str, Any]] = []
    argv = ["--cluster", CLUSTER, "--task-definition", FAMILY, "--container", "migrate"]
    argv += [
        "--security-groups",
        ",".join(GROUPS),
        "--poll-seconds",
        "0.01",
        "--timeout-seconds",
        "5",
    ]
    monkeypatch.setattr(migrate.time, "sleep", lambda s: None)
    with Stubber(client) as stub:
        _started(stub)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 0})
        )
        assert (
            migrate.main(
                [*argv, "--subnets", ",".join(SUBNETS)], session=Session(), emit=events.append
            )
            == 0
        )
    assert events[-1] == {
        "event": "result",
        "ok": True,
        "task": TASK_ARN,
        "exitCode": 0,
        "stopCode": "EssentialContainerExited",
    }
    assert migrate.main([*argv, "--subnets", "nope"], session=Session(), emit=events.append) == 2
    assert "subnets: ['nope']" in events[-1]["error"]
    with Stubber(client) as stub:
        _started(stub)
        _describe(
            stub, _task("STOPPED", stopCode="EssentialContainerExited", container={"exitCode": 3})
        )
        stub.add_client_error("describe_task_definition", "ClientException")
        assert (
            migrate.main(
                [*argv, "--subnets", ",".join(SUBNETS)], session=Session(), emit=events.append
            )
            == 1
        )
    assert "exited with code 3" in events[-1]["error"]


def test_module_is_self_contained() -> None:
    from pathlib import Path

    for module in (migrate, deploy):
        source = Path(str(module.__file__)).read_text()
        assert "from components" not in source and "import components" not in source
