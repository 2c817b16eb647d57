"""Pure tests of the pipeline layout and its IAM documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render import iam
from components.render import pipeline_stages as ps


def _env(name: str, **kw: object) -> ps.EnvironmentStep:
    return ps.EnvironmentStep(name=name, account_id="222222222222", **kw)  # type: ignore[arg-type]


def _spec(envs: list[ps.EnvironmentStep]) -> ps.LayoutInput:
    return ps.LayoutInput(
        service="orders-api",
        region="eu-west-1",
        repository="org/orders-api",
        branch="main",
        full_clone=True,
        connection_arn="arn:aws:codeconnections:eu-west-1:111111111111:connection/x",
        build_project="b",
        build_batch=False,
        deploy_project="d",
        migrate_project="m",
        test_project="t",
        environments=envs,
        approval_topic_arn="arn:aws:sns:eu-west-1:111111111111:approval",
    )


DEFAULT = [
    _env("dev", test_command="./smoke.sh"),
    _env("stage", test_command="./int.sh", migrate=True),
    _env("prod", test_command="./pdv.sh", migrate=True, approval_before=True),
]


def test_stage_order_for_the_documented_flow() -> None:
    names = [s.name for s in ps.layout(_spec(DEFAULT))]
    assert names == [
        "Source",
        "BuildAndScan",
        "DeployDev",
        "SmokeTestDev",
        "MigrateStage",
        "DeployStage",
        "IntegrationTestStage",
        "ApprovalProd",
        "MigrateProd",
        "DeployProd",
        "PostDeployValidationProd",
    ]


def test_build_outputs_are_exactly_the_deploy_inputs() -> None:
    stages = ps.layout(_spec(DEFAULT))
    build = next(a for a in ps.actions(stages) if a.name == "BuildAndScan")
    assert build.output_artifacts == (ps.BUILD_OUTPUT,)
    assert build.configuration["EnvironmentVariables"] == json.dumps(
        [
            {
                "name": "PIPELINE_EXECUTION_ID",
                "value": "#{codepipeline.PipelineExecutionId}",
                "type": "PLAINTEXT",
            }
        ],
        separators=(",", ":"),
    )
    for action in ps.actions(stages):
        if action.name.startswith(("Deploy", "Migrate")):
            assert action.input_artifacts == build.output_artifacts, action.name
            assert action.runs_as == ps.RUNS_AS_DEPLOYER
    # every consumed artifact is produced earlier, and names are unique
    produced: list[str] = []
    for stage in stages:
        for action in stage.actions:
            assert set(action.input_artifacts) <= set(produced), action.name
            produced.extend(action.output_artifacts)
    assert len(produced) == len(set(produced)) == 2


def test_source_full_clone_and_approval_custom_data() -> None:
    stages = ps.layout(_spec(DEFAULT))
    src = stages[0].actions[0]
    assert src.provider == "CodeStarSourceConnection"
    assert src.configuration["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
    approval = next(a for a in ps.actions(stages) if a.category == "Approval")
    data = json.loads(approval.configuration["CustomData"])
    assert data["environment"] == "prod" and data["release"] == 1
    assert data["digest"] == "#{BuildVariables.IMAGE_DIGEST}"
    assert approval.configuration["NotificationArn"].endswith(":approval")


def test_dropping_and_adding_environments() -> None:
    two = [s.name for s in ps.layout(_spec([DEFAULT[0], DEFAULT[2]]))]
    assert "DeployStage" not in two and "IntegrationTestStage" not in two
    assert two[-1] == "PostDeployValidationProd"
    four = [*DEFAULT[:2], _env("qa", test_command="./qa.sh"), DEFAULT[2]]
    names = [s.name for s in ps.layout(_spec(four))]
    assert names.index("DeployQa") < names.index("IntegrationTestQa") < names.index("DeployProd")


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"pipeline\.environments"):
        ps.layout(_spec([DEFAULT[0], DEFAULT[0]]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=5))
def test_every_environment_gets_its_deploy_in_order(flags: list[tuple[bool, bool, bool]]) -> None:
    envs = [
        _env(f"e{i}", migrate=m, approval_before=a, test_command="x" if t else None)
        for i, (m, a, t) in enumerate(flags)
    ]
    names = [s.name for s in ps.layout(_spec(envs))]
    deploys = [n for n in names if n.startswith("Deploy")]
    assert deploys == [f"DeployE{i}" for i in range(len(flags))]
    for i, (m, a, t) in enumerate(flags):
        d = names.index(f"DeployE{i}")
        if m:
            assert names.index(f"MigrateE{i}") == d - 1
        if a:
            assert names.index(f"ApprovalE{i}") == d - (2 if m else 1)
        assert any(n.endswith(f"TestE{i}") or n == f"PostDeployValidationE{i}" for n in names) == t


def _allow_actions(doc: dict) -> list[str]:
    return [
        a
        for s in doc["Statement"]
        if s["Effect"] == "Allow"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


def test_deployer_policy_assumes_only_deploy_roles_or_nothing() -> None:
    common = dict(
        region="eu-west-1",
        account_id="111111111111",
        service="orders-api",
        projects=["d", "t"],
        connection_arn="arn:c",
        bucket_arn="arn:aws:s3:::b",
        key_arn="arn:k",
        report_group_arn="arn:r",
    )
    roles = ["arn:aws:iam::222222222222:role/orders-api-dev-deploy"]
    multi = ps.deployer_role_policy(**common, deploy_role_arns=roles)  # type: ignore[arg-type]
    assume = [s for s in multi["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert assume == [
        {
            "Sid": "AssumeDeployRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": roles[0],
        }
    ]
    assert not any(a.startswith("ecs:") for a in _allow_actions(multi))
    single = ps.deployer_role_policy(
        **common,
        deploy_role_arns=[],
        direct=[_env("dev", cluster="c", ecs_service="s")],  # type: ignore[arg-type]
    )
    assert "sts:AssumeRole" not in _allow_actions(single)
    assert "ecs:UpdateService" in _allow_actions(single)
    for doc in (multi, single):
        assert not any(iam_star(a) for a in _allow_actions(doc))


def iam_star(action: str) -> bool:
    return action == "*" or action.endswith(":*")


def test_bucket_policy_tls_only_and_readers() -> None:
    doc = ps.bucket_policy(bucket_arn="arn:aws:s3:::b", reader_role_arns=["arn:r2", "arn:r1"])
    tls = doc["Statement"][0]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    others = doc["Statement"][1]
    assert others["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == ["arn:r1", "arn:r2"]
    assert iam.to_json(doc)  # serialisable


# --------------------------------------------------------------------------------------
# Inline buildspecs of the deploy / migrate / test projects
# --------------------------------------------------------------------------------------
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def _commands(buildspec: str) -> list[str]:
    return list(json.loads(buildspec)["phases"]["build"]["commands"])


def _script(commands: list[str]) -> str:
    # CodeBuild runs a phase's commands in one bash session (as_deploy_role stays defined).
    return "#!/bin/bash\n" + "\n".join(commands) + "\n"


BUILDSPECS = {
    "deploy": ps.deploy_buildspec(bucket="artifacts-bucket", script_key="tools/deploy.py"),
    "migrate": ps.migrate_buildspec(bucket="artifacts-bucket", script_key="tools/migrate.py"),
    "test": ps.test_buildspec(report_group_arn="arn:aws:codebuild:eu-west-1:1:report-group/r"),
}


@pytest.mark.parametrize("name", sorted(BUILDSPECS))
def test_buildspec_commands_pass_shellcheck(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.sh"
    path.write_text(_script(_commands(BUILDSPECS[name])), encoding="utf-8")
    result = subprocess.run(
        [str(SHELLCHECK), "--shell=bash", "--severity=style", "--format=gcc", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _deploy_argv(env: dict[str, str], tmp_path: Path) -> list[str]:
    """The argv deploy.py receives when the deploy command runs with the action's variables
    (bash expands it; python3 is a function that prints its arguments)."""
    (command,) = [c for c in _commands(BUILDSPECS["deploy"]) if c.startswith("python3 ")]
    script = tmp_path / "run.sh"
    script.write_text(
        "python3() { printf '%s\\0' \"$@\"; }\n" + f"DETAIL=./imageDetail.json\n{command}\n",
        encoding="utf-8",
    )
    out = subprocess.run(
        ["bash", str(script)],
        env={"PATH": os.environ["PATH"], "AWS_REGION": "eu-west-1", **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split("\0")[:-1]


@pytest.mark.parametrize("single", [False, True])
def test_deploy_step_runs_deploy_py_with_engine_auto_and_the_deterministic_names(
    single: bool, tmp_path: Path
) -> None:
    from components import naming
    from components.runtime import deploy

    role = None if single else "arn:aws:iam::222222222222:role/orders-api-stage-deploy"
    n = naming.Names("orders-api", "stage")
    env = _env(
        "stage",
        deploy_role_arn=role,
        cluster=n.cluster,
        ecs_service=n.ecs_service,
        task_family=n.task_family,
        container=n.container,
        codedeploy_application=n.codedeploy_application,
        codedeploy_group=n.codedeploy_group,
    )
    action = next(a for a in ps.actions(ps.layout(_spec([env]))) if a.name == "DeployStage")
    variables = {
        v["name"]: v["value"] for v in json.loads(action.configuration["EnvironmentVariables"])
    }
    argv = _deploy_argv(variables, tmp_path)
    assert argv[0] == "/tmp/deploy.py"
    args = deploy.parse_args(argv[1:])
    assert args.engine == "auto" and args.mode is None
    assert (args.cluster, args.service, args.family, args.container) == (
        n.cluster,
        n.ecs_service,
        n.task_family,
        n.container,
    )
    # auto + CODE_DEPLOY defaults to create-deployment, which needs exactly these names
    assert (args.codedeploy_app, args.codedeploy_group) == (
        n.codedeploy_application,
        n.codedeploy_group,
    )
    assert deploy.resolve_mode(args, "codedeploy", detected_from="CODE_DEPLOY") == (
        "create-deployment"
    )
    assert deploy.resolve_mode(args, "ecs", detected_from="ECS") == "update-service"
    assert args.role_arn == role and args.region == "eu-west-1"
    assert str(args.image_detail_file) == "imageDetail.json"
    # the engine is no longer picked in shell
    assert "describe-services" not in BUILDSPECS["deploy"]
