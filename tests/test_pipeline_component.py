"""Mock-engine tests of the tooling stack's PromotionPipeline."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config as config_mod
from components.stacks import InvalidConfiguration
from components.testing import Recording, engine, render

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
ENV_ACCOUNTS = ("222222222222", "333333333333", "444444444444")


@functools.cache
def multi() -> Recording:
    return render("tooling")


@functools.cache
def single() -> Recording:
    text = (ROOT / "Pulumi.tooling.yaml").read_text(encoding="utf-8")
    for account in ENV_ACCOUNTS:
        text = text.replace(f'"{account}"', '"111111111111"')
    return engine.render("tooling", stack_file=engine.parse_stack_file(text))


def _stages(rec: Recording) -> list[dict[str, Any]]:
    return list(rec.one(PIPELINE).inputs["stages"])


def _documents(rec: Recording) -> list[dict[str, Any]]:
    docs = []
    for r in rec:
        for key in ("policy", "assumeRolePolicy"):
            raw = r.inputs.get(key)
            if isinstance(raw, str) and raw.startswith("{"):
                docs.append(json.loads(raw))
    return docs


def test_stage_and_action_order() -> None:
    names = [s["name"] for s in _stages(multi())]
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
    pipe = multi().one(PIPELINE).inputs
    assert pipe["pipelineType"] == "V2"
    trigger = pipe["triggers"][0]
    assert trigger["gitConfiguration"]["pushes"][0]["branches"]["includes"] == ["main"]
    source = _stages(multi())[0]["actions"][0]
    assert source["configuration"]["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
    assert pipe["artifactStores"][0]["encryptionKey"]["type"] == "KMS"


def test_artifacts_consistent_end_to_end() -> None:
    actions = [a for s in _stages(multi()) for a in s["actions"]]
    build = next(a for a in actions if a["name"] == "BuildAndScan")
    assert build["outputArtifacts"] == ["BuildOutput"]
    deploys = [a for a in actions if a["name"].startswith(("Deploy", "Migrate"))]
    assert len(deploys) == 5
    assert all(a["inputArtifacts"] == build["outputArtifacts"] for a in deploys)
    produced: set[str] = set()
    for a in actions:
        assert set(a.get("inputArtifacts") or []) <= produced, a["name"]
        produced |= set(a.get("outputArtifacts") or [])


def test_role_each_action_runs_under() -> None:
    rec = multi()
    projects = {
        r.inputs["name"]: r.inputs["serviceRole"] for r in rec.find("aws:codebuild/project:Project")
    }
    actions = [a for s in _stages(rec) for a in s["actions"]]
    for a in actions:
        if a["provider"] != "CodeBuild":
            continue
        if a["name"] == "BuildAndScan":
            # the DevSecOpsBuildProject's deterministic name (components/build.py)
            assert a["configuration"]["ProjectName"] == "orders-api-tooling-build"
            if a["configuration"]["ProjectName"] not in projects:
                continue
        role = projects[a["configuration"]["ProjectName"]]
        if a["name"] == "BuildAndScan":
            assert "build" in str(role) and "deployer" not in str(role)
        elif a["category"] == "Test":
            assert str(role).endswith(":role/orders-api-tooling-tester"), (a["name"], role)
        else:
            assert str(role).endswith(":role/orders-api-tooling-deployer"), (a["name"], role)
    assert rec.one(PIPELINE).inputs["roleArn"]  # the pipeline role runs source and approval


def test_tooling_touches_no_environment_account_or_stack() -> None:
    rec = multi()
    assert rec.count("pulumi:pulumi:StackReference") == 0
    for r in rec:
        assert r.provider is None or "assumeRole" not in json.dumps(r.inputs)
    # the pipeline's resources (the image's ECR policy lets env execution roles pull: not ours)
    mine = [r for r in rec if "PromotionPipeline" in r.urn]
    assert len(mine) > 20
    text = json.dumps([r.to_dict() for r in mine], default=str)
    for account in ENV_ACCOUNTS:
        for m in re.finditer(account, text):
            around = text[max(0, m.start() - 30) : m.end() + 40]
            # a deploy role ARN, or (artifact key policy) the account root that principal
            # conditions narrow to the deploy role
            assert (
                f"arn:aws:iam::{account}:role/orders-api-" in around and "-deploy" in around
            ) or f"arn:aws:iam::{account}:root" in around, around


def test_multi_account_assume_and_key_policy() -> None:
    docs = _documents(multi())
    assumes = [
        s
        for d in docs
        for s in d.get("Statement", [])
        if s.get("Effect") == "Allow"
        and "sts:AssumeRole" in s.get("Action", [])
        and "Principal" not in s
    ]
    assert len(assumes) == 1
    assert sorted(assumes[0]["Resource"]) == [
        f"arn:aws:iam::{a}:role/orders-api-{e}-deploy"
        for a, e in zip(ENV_ACCOUNTS, ("dev", "stage", "prod"), strict=True)
    ]
    key_policy = json.loads(multi().one("aws:kms/keyPolicy:KeyPolicy").inputs["policy"])
    decrypt = [s for s in key_policy["Statement"] if s["Sid"] == "DeployRolesDecrypt"]
    # the deploy roles as a condition on their account roots (components/render/kms.py)
    principal_arns = decrypt[0]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert sorted(principal_arns) == sorted(assumes[0]["Resource"])


def test_single_account_mode_assumes_nothing() -> None:
    docs = _documents(single())
    for d in docs:
        for s in d.get("Statement", []):
            if "Principal" not in s:
                assert "sts:AssumeRole" not in s.get("Action", []), s
    key_policy = json.loads(single().one("aws:kms/keyPolicy:KeyPolicy").inputs["policy"])
    assert not [s for s in key_policy["Statement"] if s["Sid"] == "DeployRolesDecrypt"]
    deploy = next(a for s in _stages(single()) for a in s["actions"] if a["name"] == "DeployDev")
    env = {
        v["name"]: v["value"] for v in json.loads(deploy["configuration"]["EnvironmentVariables"])
    }
    assert env["DEPLOY_ROLE_ARN"] == ""


def test_no_star_action_in_allow_statements() -> None:
    for rec in (multi(), single()):
        for d in _documents(rec):
            for s in d.get("Statement", []):
                if s.get("Effect") != "Allow":
                    continue
                acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                assert not [a for a in acts if a == "*" or a.endswith(":*")], s


def test_approval_and_failure_notifications() -> None:
    rec = multi()
    fn = rec.one("aws:lambda/function:Function").inputs
    assert fn["runtime"] == "python3.12"
    assert fn["environment"]["variables"]["FORMAT"] == "slack"
    assert rec.count("aws:secretsmanager/secretVersion:SecretVersion") == 1
    rule = rec.one("aws:codestarnotifications/notificationRule:NotificationRule").inputs
    assert rule["eventTypeIds"] == ["codepipeline-pipeline-pipeline-execution-failed"]
    assert rec.count("aws:sns/topicSubscription:TopicSubscription", {"protocol": "email"}) == 1


ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED = "aws:iam/policy:Policy"
ENVS = ("dev", "stage", "prod")


def _deployer_inline_policy(rec: Recording) -> str:
    (policy,) = [
        r.inputs["policy"]
        for r in rec.find("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("deployer-policy")
    ]
    return str(policy)


def _deployer_managed(rec: Recording) -> dict[str, dict[str, Any]]:
    """The managed policies attached to the deployer role, by their policy name."""
    role = rec.one("aws:iam/role:Role", {"name": "orders-api-tooling-deployer"}).inputs["name"]
    policies = {r.outputs["arn"]: r.inputs for r in rec.find(MANAGED)}
    attached = [r.inputs for r in rec.find(ATTACHMENT) if r.inputs["role"] == role]
    return {policies[a["policyArn"]]["name"]: policies[a["policyArn"]] for a in attached}


def test_single_account_deployer_gets_one_managed_policy_per_environment() -> None:
    from components.render.pipeline_stages import MANAGED_POLICY_LIMIT, ROLE_INLINE_POLICY_LIMIT

    rec = single()
    managed = _deployer_managed(rec)
    assert sorted(managed) == sorted(f"orders-api-tooling-deploy-{e}" for e in ENVS)
    # every attachment points at one of those policies, and nothing else is attached
    assert rec.count(ATTACHMENT) == len(ENVS)
    assert rec.count(MANAGED) == len(ENVS)
    for r in [*rec.find(ATTACHMENT), *rec.find(MANAGED)]:
        assert "PromotionPipeline" in r.urn
    inline = _deployer_inline_policy(rec)
    assert len(inline) <= ROLE_INLINE_POLICY_LIMIT
    assert "ecs:" not in inline and "codedeploy:" not in inline and "sts:AssumeRole" not in inline
    arn = "arn:aws:{}:eu-west-1:111111111111:{}"
    for env in ENVS:
        text = managed[f"orders-api-tooling-deploy-{env}"]["policy"]
        assert len(text) <= MANAGED_POLICY_LIMIT
        for other in set(ENVS) - {env}:
            assert f"orders-api-{other}" not in text, (env, other)
        assert "sts:AssumeRole" not in text
        statements = {s["Sid"]: s for s in json.loads(text)["Statement"]}
        update = statements["UpdateServiceToFamilyRevisions"]
        assert update["Resource"] == arn.format(
            "ecs", f"service/orders-api-{env}/orders-api-{env}-svc"
        )
        assert update["Condition"] == {
            "ArnLike": {
                "ecs:task-definition": arn.format("ecs", f"task-definition/orders-api-{env}:*")
            }
        }
        group = arn.format("codedeploy", f"deploymentgroup:orders-api-{env}/orders-api-{env}-bg")
        assert group in statements["CodeDeployDeployments"]["Resource"]
        configs = statements["CodeDeployConfigs"]["Resource"]
        assert arn.format("codedeploy", f"deploymentconfig:orders-api-{env}-canary-*") in configs
        assert "ecs:StopServiceDeployment" in statements["WatchServiceDeployments"]["Action"]
        # stage and prod migrate (Pulumi.tooling.yaml): they may run the migration family
        assert ("RunMigrationTask" in statements) == (env != "dev")


def test_deployer_projects_wait_for_the_attached_policies() -> None:
    rec = single()
    attachments = {r.urn for r in rec.find(ATTACHMENT)}
    for project in rec.find("aws:codebuild/project:Project"):
        if "deployer" not in str(project.inputs["serviceRole"]):
            continue
        assert attachments <= set(project.options["dependsOn"]), project.name


def test_multi_account_deployer_has_no_environment_policies() -> None:
    rec = multi()
    assert _deployer_managed(rec) == {}
    assert rec.count(MANAGED) == 0
    assert not [r for r in rec.find(ATTACHMENT) if "PromotionPipeline" in r.urn]
    # it assumes the deploy roles instead
    inline = _deployer_inline_policy(rec)
    assert "ecs:UpdateService" not in inline and "codedeploy:" not in inline
    assert "sts:AssumeRole" in inline


def _single_account_stack(environments: int) -> str:
    data = yaml.safe_load((ROOT / "Pulumi.tooling.yaml").read_text(encoding="utf-8"))
    config = data["config"]
    names = [f"e{i}" for i in range(environments)]
    config["dotnet-delivery:accounts"]["environments"] = dict.fromkeys(names, "111111111111")
    config["dotnet-delivery:pipeline"]["environments"] = [{"name": n} for n in names]
    return str(yaml.safe_dump(data, sort_keys=False))


def test_preview_exits_2_when_single_account_environments_exceed_iam_quotas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from components import preview

    stack_file = tmp_path / "Pulumi.tooling.yaml"
    stack_file.write_text(_single_account_stack(11), encoding="utf-8")
    code = preview.main(["--stack", "tooling", "--config", str(stack_file), "--quiet"])
    err = capsys.readouterr().err
    assert code == preview.EXIT_CONFIG == 2
    assert err.splitlines()[0] == (
        "dotnet-delivery:pipeline.environments: 11 environments in single-account mode need 11 "
        "managed policies on the deployer role orders-api-tooling-deployer; IAM attaches at most "
        "10 managed policies to a role (default quota); use at most 10 environments or separate "
        "accounts (deploy roles)"
    )
    assert "invalid configuration for stack 'tooling': 1 problem(s)" in err
    assert "Traceback" not in err


def test_program_raises_config_error_naming_the_key() -> None:
    text = _single_account_stack(11)
    with pytest.raises((config_mod.ConfigError, InvalidConfiguration)) as err:
        engine.render("tooling", stack_file=engine.parse_stack_file(text))
    problems = err.value.problems
    assert len(problems) == 1 and problems[0].startswith("dotnet-delivery:pipeline.environments:")
    # ten environments are within the default quota
    rec = engine.render("tooling", stack_file=engine.parse_stack_file(_single_account_stack(10)))
    assert rec.count(ATTACHMENT) == 10


# --------------------------------------------------------------------------------------
# Review fixes
# --------------------------------------------------------------------------------------
def _inline(rec: Recording, suffix: str) -> dict[str, Any]:
    (policy,) = [
        r.inputs["policy"]
        for r in rec.find("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith(suffix)
    ]
    return dict(json.loads(policy))


def _actions(rec: Recording) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for s in _stages(rec) for a in s["actions"]}


def _vars(action: dict[str, Any]) -> dict[str, str]:
    return {
        v["name"]: v["value"] for v in json.loads(action["configuration"]["EnvironmentVariables"])
    }


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_test_project_has_its_own_role_without_deploy_rights(mode: str) -> None:
    rec = multi() if mode == "multi" else single()
    tester = _inline(rec, "tester-policy")
    text = json.dumps(tester)
    for forbidden in ("sts:", "ecs:", "codedeploy:", "iam:PassRole", "elasticloadbalancing:"):
        assert forbidden not in text, forbidden
    assert {s["Sid"] for s in tester["Statement"]} == {
        "Logs",
        "ArtifactsRead",
        "ArtifactBucket",
        "ArtifactKey",
        "Reports",
        "Connection",
    }
    # no managed policy is attached to the tester role
    assert not [r for r in rec.find(ATTACHMENT) if r.inputs["role"] == "orders-api-tooling-tester"]
    actions = _actions(rec)
    for name in ("SmokeTestDev", "IntegrationTestStage", "PostDeployValidationProd"):
        env_name = name.split("Test")[-1].split("Validation")[-1]
        variables = _vars(actions[name])
        assert variables["ENDPOINT"] == f"#{{Deploy{env_name}.ENDPOINT}}"
        assert "DEPLOY_ROLE_ARN" not in variables and "ALB_NAME" not in variables
        assert actions[f"Deploy{env_name}"]["namespace"] == f"Deploy{env_name}"
    # the tester project's buildspec assumes nothing
    project = rec.one("aws:codebuild/project:Project", {"name": "orders-api-tooling-test"})
    assert "sts " not in project.inputs["source"]["buildspec"]
    assert "as_deploy_role" not in project.inputs["source"]["buildspec"]


def test_build_role_may_use_the_connection_for_the_full_clone() -> None:
    rec = multi()
    (policy,) = [
        r
        for r in rec.find("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("build-connection-policy")
    ]
    assert policy.inputs["role"] == "orders-api-tooling-build"  # components/build.py's role
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == [
        "codeconnections:UseConnection",
        "codestar-connections:UseConnection",
    ]
    connection = rec.one("aws:codestarconnections/connection:Connection").outputs["arn"]
    assert statement["Resource"] == connection
    source = _actions(rec)["Source"]
    assert source["configuration"]["OutputArtifactFormat"] == "CODEBUILD_CLONE_REF"
    assert source["namespace"] == "SourceVariables"
    assert _vars(_actions(rec)["BuildAndScan"])["COMMIT_ID"] == "#{SourceVariables.CommitId}"


def test_bucket_policy_names_no_role_as_principal_and_lets_deploy_roles_read() -> None:
    rec = multi()
    doc = json.loads(rec.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert [s["Effect"] for s in doc["Statement"]] == ["Deny", "Deny", "Allow"]
    deploy_roles = [
        f"arn:aws:iam::{a}:role/orders-api-{e}-deploy"
        for e, a in zip(("dev", "stage", "prod"), ENV_ACCOUNTS, strict=True)
    ]
    readers = doc["Statement"][1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert readers == sorted(
        [
            *(
                f"arn:aws:iam::111111111111:role/orders-api-tooling-{r}"
                for r in ("pipeline", "build", "deployer", "tester")
            ),
            *deploy_roles,
        ]
    )
    allow = doc["Statement"][2]
    # Account roots as principals (valid before the environment stacks exist) ...
    assert allow["Principal"] == {"AWS": sorted(f"arn:aws:iam::{a}:root" for a in ENV_ACCOUNTS)}
    # ... narrowed to exactly the deploy roles.
    assert allow["Condition"] == {"ArnEquals": {"aws:PrincipalArn": sorted(deploy_roles)}}


def test_mixed_accounts_decide_per_environment() -> None:
    """dev in the tooling account (no deploy role: direct permissions), stage/prod elsewhere."""
    text = (ROOT / "Pulumi.tooling.yaml").read_text(encoding="utf-8")
    text = text.replace(f'"{ENV_ACCOUNTS[0]}"', '"111111111111"')
    rec = engine.render("tooling", stack_file=engine.parse_stack_file(text))
    variables = {n: _vars(a) for n, a in _actions(rec).items() if n.startswith("Deploy")}
    assert variables["DeployDev"]["DEPLOY_ROLE_ARN"] == ""
    assert variables["DeployStage"]["DEPLOY_ROLE_ARN"] == (
        f"arn:aws:iam::{ENV_ACCOUNTS[1]}:role/orders-api-stage-deploy"
    )
    assert variables["DeployProd"]["DEPLOY_ROLE_ARN"] == (
        f"arn:aws:iam::{ENV_ACCOUNTS[2]}:role/orders-api-prod-deploy"
    )
    assert sorted(_deployer_managed(rec)) == ["orders-api-tooling-deploy-dev"]
    deployer = _inline(rec, "deployer-policy")
    (assume,) = [s for s in deployer["Statement"] if s["Sid"] == "AssumeDeployRoles"]
    assert assume["Resource"] == [
        f"arn:aws:iam::{ENV_ACCOUNTS[1]}:role/orders-api-stage-deploy",
        f"arn:aws:iam::{ENV_ACCOUNTS[2]}:role/orders-api-prod-deploy",
    ]


def test_notifier_timeout_exceeds_its_worst_case_retry_time() -> None:
    fn = multi().one("aws:lambda/function:Function").inputs
    # 5 attempts x 5 s + 4 x 20 s backoff + 5 s margin (approval_notifier defaults) = 110 s
    assert fn["timeout"] >= 120


def test_deploy_step_times_out_before_its_project() -> None:
    import yaml as yaml_mod

    rec = multi()
    project = rec.one("aws:codebuild/project:Project", {"name": "orders-api-tooling-deploy"})
    spec = yaml_mod.safe_load(project.inputs["source"]["buildspec"])
    (command,) = spec["phases"]["build"]["commands"]
    seconds = int(command.split("--timeout-seconds ")[1].split()[0])
    assert seconds == (project.inputs["buildTimeout"] - 5) * 60


def test_approval_reads_the_first_deploy_and_names_the_passed_tests() -> None:
    approval = _actions(multi())["ApproveProd"]
    data = json.loads(approval["configuration"]["CustomData"])
    assert data["version"] == "#{DeployDev.RELEASE_VERSION}"
    assert data["commit"] == "#{DeployDev.RELEASE_COMMIT}"
    assert data["digest"] == "#{DeployDev.IMAGE_DIGEST}"
    assert data["tests"] == "SmokeTestDev: passed; IntegrationTestStage: passed"
    build = _actions(multi())["BuildAndScan"]
    assert build["configuration"]["CombineArtifacts"] == "true"


def test_build_role_connection_grant_waits_for_the_build_role() -> None:
    rec = multi()
    grant = rec.one("aws:iam/rolePolicy:RolePolicy", name="pipeline-build-connection-policy")
    build_role = rec.one("aws:iam/role:Role", {"name": grant.inputs["role"]})
    assert build_role.urn in grant.options["dependsOn"]
    statement = json.loads(grant.inputs["policy"])["Statement"]
    actions = {
        a
        for s in statement
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {"codestar-connections:UseConnection", "codeconnections:UseConnection"}


def test_every_tooling_log_group_is_kms_encrypted_with_a_key_scoped_to_its_groups() -> None:
    rec = multi()
    keys = {k.outputs["arn"]: k for k in rec.find("aws:kms/key:Key")}
    for group in rec.find("aws:cloudwatch/logGroup:LogGroup"):
        key = keys[group.inputs["kmsKeyId"]]
        [logs] = [s for s in key.json_input("policy")["Statement"] if s["Sid"] == "ServicesUseKey"]
        scope = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]
        scope = [scope] if isinstance(scope, str) else scope
        assert f"arn:aws:logs:eu-west-1:111111111111:log-group:{group.inputs['name']}" in scope
