"""Mock-engine tests of EfMigrationTask as the environment stacks create it (stage and prod
enable ``migration``; dev does not)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components import migration
from components.render import pipeline_stages as ps
from components.runtime import migrate as migrate_script
from components.testing import Recording, cached_render

COMPONENT = "dotnet-delivery:index:EfMigrationTask"
TASK_DEF = "aws:ecs/taskDefinition:TaskDefinition"
ACCOUNTS = {"stage": "333333333333", "prod": "444444444444"}
DIGEST = re.compile(r"^\d{12}\.dkr\.ecr\.eu-west-1\.amazonaws\.com/orders-api@sha256:[0-9a-f]{64}$")


def rec(stack: str) -> Recording:
    return cached_render(stack)


def _task(r: Recording, stack: str) -> Any:
    return r.one(TASK_DEF, {"family": f"orders-api-{stack}-migrate"})


@pytest.mark.parametrize("stack", ["stage", "prod"])
def test_task_definition_runs_the_bundle_from_the_image_digest(stack: str) -> None:
    r = rec(stack)
    task = _task(r, stack)
    i = task.inputs
    assert i["requiresCompatibilities"] == ["FARGATE"] and i["networkMode"] == "awsvpc"
    service = r.one(TASK_DEF, {"family": f"orders-api-{stack}"}).inputs
    assert i["runtimePlatform"] == service["runtimePlatform"]
    (container,) = task.json_input("containerDefinitions")
    assert container["name"] == migration.CONTAINER == "migrate"
    (app,) = [c for c in service_containers(r, stack) if c["name"] == "orders-api"]
    assert DIGEST.match(container["image"]) and container["image"] == app["image"]
    assert container["command"] == ["/app/efbundle"]  # config default
    assert "portMappings" not in container and "healthCheck" not in container
    env = {e["name"] for e in container["environment"]}
    assert "ASPNETCORE_HTTP_PORTS" not in env and "ASPNETCORE_ENVIRONMENT" in env
    # the service's secrets, by reference only
    assert container["secrets"] == app["secrets"]
    assert container["secrets"][0]["valueFrom"].startswith(
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNTS[stack]}:secret:"
    )
    assert container["readonlyRootFilesystem"] is True and container["user"] == "1654"
    assert container["mountPoints"] == [
        {"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}
    ]
    assert i["volumes"] == [{"name": "tmp"}]
    logs = container["logConfiguration"]["options"]
    assert logs["awslogs-group"] == f"/ecs/{stack}/orders-api-migrate"
    assert i["tags"][migration.TIMEOUT_TAG] == "900" == str(15 * 60)
    assert migration.TIMEOUT_TAG == migrate_script.TIMEOUT_TAG


def service_containers(r: Recording, stack: str) -> list[dict[str, Any]]:
    return list(
        r.one(TASK_DEF, {"family": f"orders-api-{stack}"}).json_input("containerDefinitions")
    )


@pytest.mark.parametrize("stack", ["stage", "prod"])
def test_own_roles_read_exactly_the_referenced_secrets(stack: str) -> None:
    r = rec(stack)
    account = ACCOUNTS[stack]
    task = _task(r, stack)
    exec_name, task_name = f"orders-api-{stack}-migrate-exec", f"orders-api-{stack}-migrate-task"
    assert task.inputs["executionRoleArn"] == f"arn:aws:iam::{account}:role/{exec_name}"
    assert task.inputs["taskRoleArn"] == f"arn:aws:iam::{account}:role/{task_name}"
    exec_role = r.one("aws:iam/role:Role", {"name": exec_name})
    trust = exec_role.json_input("assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    policy = r.one("aws:iam/rolePolicy:RolePolicy", {"role": exec_name}).json_input("policy")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    (secret,) = [c["secrets"][0]["valueFrom"] for c in service_containers(r, stack)[:1]]
    assert by_sid["ReadReferencedSecrets"]["Resource"] == secret
    group = f"arn:aws:logs:eu-west-1:{account}:log-group:/ecs/{stack}/orders-api-migrate"
    assert by_sid["WriteServiceLogs"]["Resource"] == [group, f"{group}:log-stream:*"]
    assert by_sid["EcrPullServiceImage"]["Resource"].endswith(":repository/orders-api")
    for statement in policy["Statement"]:
        actions = statement["Action"]
        assert not any(a == "*" or a.endswith(":*") for a in actions)
    # the task role has no permissions at all
    r.one("aws:iam/role:Role", {"name": task_name})
    assert r.count("aws:iam/rolePolicy:RolePolicy", {"role": task_name}) == 0
    assert r.count("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": task_name}) == 0


@pytest.mark.parametrize("stack", ["stage", "prod"])
def test_log_group_retention_and_kms_key_for_logs(stack: str) -> None:
    r = rec(stack)
    group = r.one("aws:cloudwatch/logGroup:LogGroup", {"name": f"/ecs/{stack}/orders-api-migrate"})
    service_group = r.one("aws:cloudwatch/logGroup:LogGroup", {"name": f"/ecs/{stack}/orders-api"})
    assert group.inputs["retentionInDays"] == service_group.inputs["retentionInDays"]
    key = r.one("aws:kms/key:Key", name=f"orders-api-{stack}-migration-logs-key")
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    services = next(
        s for s in key.json_input("policy")["Statement"] if s["Sid"] == "ServicesUseKey"
    )
    assert services["Principal"] == {"Service": ["logs.eu-west-1.amazonaws.com"]}
    assert services["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == (
        f"arn:aws:logs:eu-west-1:{ACCOUNTS[stack]}:log-group:/ecs/{stack}/orders-api-migrate"
    )


@pytest.mark.parametrize("stack", ["stage", "prod"])
def test_every_child_is_parented_and_tagged(stack: str) -> None:
    r = rec(stack)
    component = r.one(COMPONENT)
    children = r.children(component, recursive=True)
    assert sorted(c.type for c in children) == sorted(
        [
            "aws:cloudwatch/logGroup:LogGroup",
            "aws:ecs/taskDefinition:TaskDefinition",
            "aws:iam/role:Role",
            "aws:iam/role:Role",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:kms/alias:Alias",
            "aws:kms/key:Key",
        ]
    )
    taggable = [c for c in children if c.type not in ("aws:iam/rolePolicy:RolePolicy",)]
    for child in taggable:
        if child.type == "aws:kms/alias:Alias":
            continue
        assert child.inputs["tags"]["Environment"] == stack, child.name
        assert child.inputs["tags"]["Application"] == "orders-api", child.name
    assert r.exports["migrationFamily"] == f"orders-api-{stack}-migrate"


def test_dev_has_no_migration() -> None:
    r = rec("dev")
    assert r.count(COMPONENT) == 0
    assert r.count(TASK_DEF, {"family": "orders-api-dev-migrate"}) == 0
    assert "migrationFamily" not in r.exports
    doc = r.one("aws:iam/rolePolicy:RolePolicy", name="deploy-role-policy").json_input("policy")
    assert not any("Migration" in s["Sid"] for s in doc["Statement"])
    passrole = next(s for s in doc["Statement"] if s["Sid"] == "PassTaskRoles")
    assert not any("migrate" in arn for arn in passrole["Resource"])


@pytest.mark.parametrize("stack", ["stage", "prod"])
def test_deploy_role_passes_exactly_the_migration_roles_and_runs_the_family(stack: str) -> None:
    r = rec(stack)
    account = ACCOUNTS[stack]
    doc = r.one("aws:iam/rolePolicy:RolePolicy", name="deploy-role-policy").json_input("policy")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    passed = set(by_sid["PassTaskRoles"]["Resource"])
    assert passed == {
        f"arn:aws:iam::{account}:role/orders-api-{stack}-{suffix}"
        for suffix in ("exec", "task", "migrate-exec", "migrate-task")
    }
    task = _task(r, stack)
    assert {task.inputs["executionRoleArn"], task.inputs["taskRoleArn"]} <= passed
    assert by_sid["RunMigrationTask"]["Resource"] == (
        f"arn:aws:ecs:eu-west-1:{account}:task-definition/orders-api-{stack}-migrate:*"
    )


def test_single_account_deployer_passes_the_migration_roles() -> None:
    from components import naming

    n = naming.Names("orders-api", "stage")
    step = ps.EnvironmentStep(
        name="stage",
        account_id="111111111111",
        migrate=True,
        cluster=n.cluster,
        ecs_service=n.ecs_service,
        task_family=n.task_family,
        container=n.container,
        codedeploy_application=n.codedeploy_application,
        codedeploy_group=n.codedeploy_group,
        migration_family=n.migration_family,
    )
    (policy,) = ps.single_account_deploy_policies(
        region="eu-west-1", account_id="111111111111", service="orders-api", environments=[step]
    )
    doc = policy.document
    passrole = next(s for s in doc["Statement"] if s["Sid"] == "PassTaskRoles")
    assert set(passrole["Resource"]) == {
        f"arn:aws:iam::111111111111:role/{name}"
        for name in (
            n.execution_role,
            n.task_role,
            *migration.role_arns(n, account_id="111111111111"),
        )
        if not name.startswith("arn:")
    } | set(migration.role_arns(n, account_id="111111111111"))
