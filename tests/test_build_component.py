"""DevSecOpsBuildProject rendered through the real program (offline engine)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components import build as build_mod
from components import config as config_mod
from components.render import buildspec as bs
from components.testing import cached_render
from components.testing.engine import PROJECT_ROOT, parse_stack_file
from components.testing.engine import render as engine_render
from components.testing.queries import RecordedResource, Recording

PROJECT = "aws:codebuild/project:Project"
REPORT_GROUP = "aws:codebuild/reportGroup:ReportGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
COMPONENT = build_mod.TYPE_TOKEN
OUTPUTS = (
    "project_name",
    "project_arn",
    "role_arn",
    "test_report_group_arn",
    "coverage_report_group_arn",
    "log_group_name",
)
SONAR_ARN = "arn:aws:secretsmanager:eu-west-1:111111111111:secret:orders-api/sonar-AbCdEf"


@functools.cache
def _base() -> Recording:
    return cached_render("tooling")  # shared with other modules


@functools.cache
def _variant(patch_json: str) -> Recording:
    """Pulumi.tooling.yaml with ``dotnet-delivery:<key>`` values merged in."""
    text = (Path(PROJECT_ROOT) / "Pulumi.tooling.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    for key, value in json.loads(patch_json).items():
        section = doc["config"].setdefault(f"dotnet-delivery:{key}", {})
        section.update(value)
    return engine_render("tooling", stack_file=parse_stack_file(yaml.safe_dump(doc)))


def variant(**sections: dict[str, Any]) -> Recording:
    return _variant(json.dumps(sections, sort_keys=True))


def _ours(rec: Recording, type_: str) -> list[RecordedResource]:
    component = [r for r in rec.resources if r.type == COMPONENT]
    assert len(component) == 1, "exactly one DevSecOpsBuildProject"
    return [r for r in rec.resources if r.type == type_ and r.parent == component[0].urn]


def _project(rec: Recording) -> RecordedResource:
    projects = _ours(rec, PROJECT)
    assert len(projects) == 1
    return projects[0]


def _spec(project: RecordedResource) -> dict[str, Any]:
    spec = yaml.safe_load(project.inputs["source"]["buildspec"])
    assert isinstance(spec, dict)
    return spec


def _policy(rec: Recording, name: str) -> dict[str, Any]:
    [policy] = [p for p in _ours(rec, ROLE_POLICY) if p.inputs["name"] == name]
    doc = json.loads(policy.inputs["policy"])
    assert isinstance(doc, dict)
    return doc


_SONAR_AND_VPC = {
    "sonar": {
        "hostUrl": "https://sonarcloud.io",
        "projectKey": "example-org_orders-api",
        "tokenSecretArn": SONAR_ARN,
    },
    "vpcId": "vpc-0abc12345",
    "subnetIds": ["subnet-0abc1234"],
}
_CHANGED_BUILD = {"timeoutMinutes": 45, "concurrentBuildLimit": 4, "logRetentionDays": 90}


# --- the project ------------------------------------------------------------------------
def test_one_privileged_project_whose_buildspec_builds_images() -> None:
    project = _project(_base())
    assert project.inputs["name"] == "orders-api-tooling-build"
    assert project.inputs["environment"]["privilegedMode"] is True
    assert "docker buildx build" in project.inputs["source"]["buildspec"]
    assert project.inputs["source"]["type"] == "CODEPIPELINE"
    assert project.inputs["artifacts"]["type"] == "CODEPIPELINE"


def test_native_fan_out_batch_graph_per_platform() -> None:
    project = _project(_base())
    spec = _spec(project)
    tasks = {t["identifier"]: t for t in spec["batch"]["build-graph"]}
    assert tasks["build_amd64"]["env"]["type"] == "LINUX_CONTAINER"
    assert tasks["build_amd64"]["env"]["image"] == bs.X86_STANDARD_IMAGE
    assert tasks["build_arm64"]["env"]["type"] == "ARM_CONTAINER"
    assert tasks["build_arm64"]["env"]["image"] == bs.ARM_STANDARD_IMAGE
    assert tasks["build_amd64"]["env"]["compute-type"] == "BUILD_GENERAL1_MEDIUM"
    assert set(tasks[bs.JOIN_IDENTIFIER]["depend-on"]) == {"build_amd64", "build_arm64"}
    batch = project.inputs["buildBatchConfig"]
    [batch_role] = [r for r in _ours(_base(), ROLE) if r.inputs["name"].endswith("build-batch")]
    assert batch["serviceRole"] == batch_role.outputs["arn"]
    assert batch["combineArtifacts"] is False
    assert batch["restrictions"]["maximumBuildsAllowed"] == 3
    assert set(batch["restrictions"]["computeTypesAlloweds"]) == {
        t["env"]["compute-type"] for t in tasks.values()
    }
    assert batch["timeoutInMins"] == 60
    # the project's own environment (overridden per task) is the native x86 image
    assert project.inputs["environment"]["type"] == "LINUX_CONTAINER"
    assert project.inputs["environment"]["image"] == bs.X86_STANDARD_IMAGE


def test_batch_role_may_only_run_builds_of_this_project() -> None:
    doc = _policy(_base(), "batch")
    [statement] = doc["Statement"]
    assert sorted(statement["Action"]) == [
        "codebuild:RetryBuild",
        "codebuild:StartBuild",
        "codebuild:StopBuild",
    ]
    assert statement["Resource"] == (
        "arn:aws:codebuild:eu-west-1:111111111111:project/orders-api-tooling-build"
    )


def test_qemu_fallback_is_one_x86_build_without_batch() -> None:
    rec = variant(build={"qemuFallback": True})
    project = _project(rec)
    assert project.inputs.get("buildBatchConfig") is None
    spec = _spec(project)
    assert "batch" not in spec
    assert spec["env"]["variables"]["BUILD_ROLE"] == "single-with-qemu"
    assert project.inputs["environment"]["type"] == "LINUX_CONTAINER"
    assert project.inputs["environment"]["privilegedMode"] is True
    assert build_mod.BINFMT_IMAGE in project.inputs["source"]["buildspec"]
    assert not [r for r in _ours(rec, ROLE) if r.inputs["name"].endswith("build-batch")]


def test_single_arm_platform_runs_natively_on_arm() -> None:
    project = _project(variant(image={"platforms": ["linux/arm64"]}))
    assert project.inputs["environment"]["type"] == "ARM_CONTAINER"
    assert project.inputs["environment"]["image"] == bs.ARM_STANDARD_IMAGE
    # ARM has no MEDIUM everywhere: it runs on LARGE
    assert project.inputs["environment"]["computeType"] == "BUILD_GENERAL1_LARGE"
    assert _spec(project)["env"]["variables"]["BUILD_ROLE"] == "single"


def test_timeouts_concurrency_cache_and_encryption() -> None:
    rec = _base()
    project = _project(rec)
    assert project.inputs["buildTimeout"] == 30
    assert project.inputs["concurrentBuildLimit"] == 2
    assert project.inputs["cache"] == {
        "type": "LOCAL",
        "modes": list(build_mod.LOCAL_CACHE_MODES),
    }
    [artifact_key] = [r for r in rec.resources if r.name == "artifact-key"]
    assert project.inputs["encryptionKey"] == artifact_key.outputs["arn"]
    assert "vpcConfig" not in project.inputs or project.inputs["vpcConfig"] is None


def test_config_changes_reach_the_project() -> None:
    project = _project(variant(build=_CHANGED_BUILD))
    assert project.inputs["buildTimeout"] == 45
    assert project.inputs["concurrentBuildLimit"] == 4
    assert project.inputs["buildBatchConfig"]["timeoutInMins"] == 90


# --- logs -------------------------------------------------------------------------------
def test_log_group_has_retention_and_its_own_logs_key() -> None:
    rec = _base()
    [log_group] = _ours(rec, LOG_GROUP)
    assert log_group.inputs["name"] == "/aws/codebuild/orders-api-tooling-build"
    assert log_group.inputs["retentionInDays"] == 30
    [key] = [k for k in _ours(rec, "aws:kms/key:Key")]
    assert log_group.inputs["kmsKeyId"] == key.outputs["arn"]
    policy = json.loads(key.inputs["policy"])
    [service] = [s for s in policy["Statement"] if s.get("Sid") == "ServicesUseKey"]
    assert service["Principal"]["Service"] == ["logs.eu-west-1.amazonaws.com"]
    assert service["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/codebuild/orders-api-tooling-build"
    )
    project = _project(rec)
    logs = project.inputs["logsConfig"]["cloudwatchLogs"]
    assert logs == {"status": "ENABLED", "groupName": log_group.outputs["name"]}
    [retained] = _ours(variant(build=_CHANGED_BUILD), LOG_GROUP)
    assert retained.inputs["retentionInDays"] == 90


# --- reports ----------------------------------------------------------------------------
def test_report_groups_are_named_used_by_the_buildspec_and_encrypted() -> None:
    rec = _base()
    groups = {g.inputs["type"]: g for g in _ours(rec, REPORT_GROUP)}
    assert set(groups) == {"TEST", "CODE_COVERAGE"}
    assert groups["TEST"].inputs["name"] == "orders-api-tooling-unit-tests"
    assert groups["CODE_COVERAGE"].inputs["name"] == "orders-api-tooling-coverage"
    [artifact_key] = [r for r in rec.resources if r.name == "artifact-key"]
    for group in groups.values():
        destination = group.inputs["exportConfig"]["s3Destination"]
        assert group.inputs["exportConfig"]["type"] == "S3"
        assert destination["bucket"] == "orders-api-tooling-artifacts-111111111111"
        assert destination["encryptionKey"] == artifact_key.outputs["arn"]
    reports = _spec(_project(rec))["reports"]
    prefix = "arn:aws:codebuild:eu-west-1:111111111111:report-group/"
    assert reports[prefix + "orders-api-tooling-unit-tests"]["file-format"] == "VISUALSTUDIOTRX"
    assert reports[prefix + "orders-api-tooling-coverage"]["file-format"] == "COBERTURAXML"


# --- IAM --------------------------------------------------------------------------------
def _statements(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in doc["Statement"]}


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def test_role_policy_has_no_star_action_and_names_its_resources() -> None:
    doc = _policy(_base(), "build")
    for statement in doc["Statement"]:
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement
        if statement["Sid"] != "EcrAuthorizationToken":  # no resource-level permission
            assert statement["Resource"] != "*", statement
    by_sid = _statements(doc)
    assert by_sid["EcrPushToServiceRepository"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:111111111111:repository/orders-api"
    )
    assert by_sid["ArtifactBucket"]["Resource"] == (
        "arn:aws:s3:::orders-api-tooling-artifacts-111111111111"
    )
    assert _as_list(by_sid["BuildLogs"]["Resource"])[0] == (
        "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/codebuild/orders-api-tooling-build"
    )
    assert sorted(_as_list(by_sid["TestAndCoverageReports"]["Resource"])) == [
        "arn:aws:codebuild:eu-west-1:111111111111:report-group/orders-api-tooling-coverage",
        "arn:aws:codebuild:eu-west-1:111111111111:report-group/orders-api-tooling-unit-tests",
    ]
    [artifact_key] = [r for r in _base().resources if r.name == "artifact-key"]
    assert by_sid["ArtifactKey"]["Resource"] == artifact_key.outputs["arn"]
    assert "NamedSecrets" not in by_sid  # no sonar configured


def test_role_trusts_codebuild_of_this_account_only() -> None:
    [role] = [r for r in _ours(_base(), ROLE) if r.inputs["name"] == "orders-api-tooling-build"]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


# --- secrets ----------------------------------------------------------------------------
def test_sonar_token_only_by_reference() -> None:
    rec = variant(build=_SONAR_AND_VPC)
    project = _project(rec)
    variables = {v["name"]: v for v in project.inputs["environment"]["environmentVariables"]}
    assert variables["SONAR_TOKEN"] == {
        "name": "SONAR_TOKEN",
        "value": SONAR_ARN,
        "type": "SECRETS_MANAGER",
    }
    assert all(
        v["type"] == "SECRETS_MANAGER" for v in variables.values() if SONAR_ARN in v["value"]
    )
    spec = _spec(project)
    assert spec["env"]["secrets-manager"] == {"SONAR_TOKEN": SONAR_ARN}
    assert "SONAR_TOKEN" not in spec["env"]["variables"]
    assert _statements(_policy(rec, "build"))["NamedSecrets"]["Resource"] == SONAR_ARN


def test_branch_reaches_the_trivy_policy_as_plain_variable() -> None:
    variables = _project(_base()).inputs["environment"]["environmentVariables"]
    assert {"name": "BRANCH_NAME", "value": "main", "type": "PLAINTEXT"} in variables


# --- VPC --------------------------------------------------------------------------------
def test_optional_vpc_config_with_https_only_group_and_scoped_eni_permissions() -> None:
    rec = variant(build=_SONAR_AND_VPC)
    project = _project(rec)
    [group] = _ours(rec, "aws:ec2/securityGroup:SecurityGroup")
    vpc = project.inputs["vpcConfig"]
    assert vpc["vpcId"] == "vpc-0abc12345"
    assert vpc["subnets"] == ["subnet-0abc1234"]
    assert vpc["securityGroupIds"] == [group.id]
    assert [(e["fromPort"], e["toPort"]) for e in group.inputs["egress"]] == [(443, 443)]
    assert not group.inputs.get("ingress")
    by_sid = _statements(_policy(rec, "build"))
    assert "VpcCreateInterfaceInProjectSubnets" in by_sid


# --- children and outputs ---------------------------------------------------------------
def test_every_resource_is_a_child_of_the_component() -> None:
    rec = _base()
    [component] = [r for r in rec.resources if r.type == COMPONENT]
    children = [r for r in rec.resources if r.parent == component.urn]
    assert {r.type for r in children} >= {PROJECT, REPORT_GROUP, LOG_GROUP, ROLE, ROLE_POLICY}


def test_component_outputs() -> None:
    def program() -> None:
        cfg = config_mod.load_from_pulumi()
        assert isinstance(cfg, config_mod.ToolingConfig)
        key = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-0000-0000-000000000000"
        component = build_mod.DevSecOpsBuildProject(
            "build", build_mod.args_from_config(cfg, kms_key_arn=key, tags={"Owner": "t"})
        )
        for name in OUTPUTS:
            pulumi.export(name, getattr(component, name))

    exports = engine_render("tooling", program=program).exports
    assert exports["project_name"] == "orders-api-tooling-build"
    assert exports["log_group_name"] == "/aws/codebuild/orders-api-tooling-build"
    assert exports["role_arn"] == "arn:aws:iam::111111111111:role/orders-api-tooling-build"
    assert exports["project_arn"].startswith("arn:aws:codebuild:eu-west-1:111111111111:")
    assert exports["test_report_group_arn"].endswith("orders-api-tooling-unit-tests")
    assert exports["coverage_report_group_arn"].endswith("orders-api-tooling-coverage")


# --- argument validation ----------------------------------------------------------------
def test_bad_arguments_name_the_field() -> None:
    settings = bs.BuildSpecSettings(
        service_name="orders-api",
        solution="OrdersApi.slnx",
        test_projects=("**/*Tests.csproj",),
        gitleaks=build_mod.GITLEAKS,
        trivy=build_mod.TRIVY,
    )
    common: dict[str, Any] = {
        "service_name": "orders-api",
        "account_id": "111111111111",
        "region": "eu-west-1",
        "project_name": "p",
        "role_name": "r",
        "batch_role_name": "b",
        "repository_name": "orders-api",
        "artifact_bucket_name": "bucket-name",
        "kms_key_arn": "arn",
        "settings": settings,
    }
    with pytest.raises(build_mod.BuildProjectError, match="platforms: 'linux/s390x'"):
        build_mod.BuildProjectArgs(**common, platforms=("linux/s390x",))
    with pytest.raises(build_mod.BuildProjectError, match="vpc_id/subnet_ids"):
        build_mod.BuildProjectArgs(**common, vpc_id="vpc-0abc12345")


def test_solution_is_found_at_the_source_root(tmp_path: Path) -> None:
    assert build_mod.find_solution(tmp_path, "src/A/A.csproj") == "src/A/A.csproj"
    (tmp_path / "Orders.slnx").write_text("<Solution />", encoding="utf-8")
    assert build_mod.find_solution(tmp_path, "src/A/A.csproj") == "Orders.slnx"
