"""Mock-engine tests of the tooling stack's PromotionPipeline."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

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
        else:
            assert "deployer" in str(role), (a["name"], role)
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
            assert f"arn:aws:iam::{account}:role/orders-api-" in around and "-deploy" in around, (
                around
            )


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
    assert sorted(decrypt[0]["Principal"]["AWS"]) == sorted(assumes[0]["Resource"])


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


def test_single_account_deployer_can_deploy_either_engine_into_every_environment() -> None:
    from components.render.pipeline_stages import ROLE_INLINE_POLICY_LIMIT

    policy = next(
        r.inputs["policy"]
        for r in single().find("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("deployer-policy")
    )
    assert len(policy) <= ROLE_INLINE_POLICY_LIMIT  # IAM's limit for a role's inline policies
    statements = {s["Sid"]: s for s in json.loads(policy)["Statement"]}
    arn = "arn:aws:{}:eu-west-1:111111111111:{}"
    for env in ("dev", "stage", "prod"):
        suffix = env.capitalize()
        update = statements[f"{suffix}UpdateServiceToFamilyRevisions"]
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
    # the multi-account deployer has none of it: it assumes the deploy roles instead
    multi_policy = next(
        r.inputs["policy"]
        for r in multi().find("aws:iam/rolePolicy:RolePolicy")
        if r.name.endswith("deployer-policy")
    )
    assert "ecs:UpdateService" not in multi_policy and "codedeploy:" not in multi_policy
