"""Pure tests of the pipeline layout and its IAM documents."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components import naming
from components.render import deployment, iam, iam_deploy
from components.render import pipeline_stages as ps
from components.testing import phase_runner


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
            },
            {"name": "COMMIT_ID", "value": "#{SourceVariables.CommitId}", "type": "PLAINTEXT"},
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
    # the first deploy's exported release metadata (a batch build exports nothing usable)
    assert data["digest"] == "#{DeployDev.IMAGE_DIGEST}"
    assert data["version"] == "#{DeployDev.RELEASE_VERSION}"
    assert data["commit"] == "#{DeployDev.RELEASE_COMMIT}"
    assert data["tests"] == "SmokeTestDev: passed; IntegrationTestStage: passed"
    assert "BuildVariables" not in approval.configuration["CustomData"]
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


DEPLOYER_COMMON: dict[str, Any] = dict(
    region="eu-west-1",
    account_id="111111111111",
    projects=["d", "m"],
    bucket_arn="arn:aws:s3:::b",
    key_arn="arn:k",
)


def _named_env(
    name: str, *, migrate: bool = False, service: str = "orders-api"
) -> ps.EnvironmentStep:
    """An environment step as components/pipeline.py builds it (single-account)."""
    n = naming.Names(service, name)
    return ps.EnvironmentStep(
        name=name,
        account_id="111111111111",
        migrate=migrate,
        cluster=n.cluster,
        ecs_service=n.ecs_service,
        task_family=n.task_family,
        container=n.container,
        codedeploy_application=n.codedeploy_application,
        codedeploy_group=n.codedeploy_group,
        migration_family=n.migration_family,
        alb=n.alb,
    )


def _policies(
    envs: list[ps.EnvironmentStep], *, service: str = "orders-api", **kw: Any
) -> list[ps.EnvironmentPolicy]:
    return ps.single_account_deploy_policies(
        region="eu-west-1", account_id="111111111111", service=service, environments=envs, **kw
    )


def test_deployer_policy_assumes_only_deploy_roles_or_nothing() -> None:
    roles = ["arn:aws:iam::222222222222:role/orders-api-dev-deploy"]
    multi = ps.deployer_role_policy(**DEPLOYER_COMMON, deploy_role_arns=roles)
    assume = [s for s in multi["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert assume == [
        {
            "Sid": "AssumeDeployRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole"],
            "Resource": roles[0],
        }
    ]
    assert not any(a.startswith(("ecs:", "codedeploy:")) for a in _allow_actions(multi))
    # single-account: the inline policy is the base permissions only ...
    single = ps.deployer_role_policy(**DEPLOYER_COMMON, deploy_role_arns=[])
    assert [s["Sid"] for s in single["Statement"]] == [
        "Logs",
        "ArtifactsRead",
        "ArtifactBucket",
        "ArtifactKey",
    ]
    # ... and the deploy permissions live in the environment's managed policy
    (dev,) = _policies([_named_env("dev")])
    assert "sts:AssumeRole" not in _allow_actions(dev.document)
    assert {"ecs:UpdateService", "codedeploy:CreateDeployment"} <= set(_allow_actions(dev.document))
    for doc in (multi, single, dev.document):
        assert not any(iam_star(a) for a in _allow_actions(doc))


def _allows(doc: dict[str, Any], action: str, resource: str, condition: Any) -> bool:
    """Some Allow statement names ``action``, matches ``resource`` (IAM ``*`` wildcards)
    and carries exactly ``condition`` (the single-account copy never loosens one)."""
    for s in doc["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        if (
            s["Effect"] == "Allow"
            and action in actions
            and any(fnmatch.fnmatchcase(resource, r) for r in resources)
            and s.get("Condition") == condition
        ):
            return True
    return False


ENV_CONFIGS = {  # one deployment config per environment, as the environment stacks pick them
    "dev": lambda prefix: "CodeDeployDefault.ECSAllAtOnce",
    "stage": lambda prefix: (
        deployment.codedeploy_config(
            deployment.CustomTrafficRouting("TimeBasedLinear", 25, 2), name_prefix=prefix
        ).deployment_config_name
    ),
    "prod": lambda prefix: (
        deployment.codedeploy_config(
            deployment.CustomTrafficRouting("TimeBasedCanary", 5, 30), name_prefix=prefix
        ).deployment_config_name
    ),
}


MIGRATION_ROLES = ("migrate-exec", "migrate-task")


@pytest.mark.parametrize("engine", ["ecs", "codedeploy"])
def test_single_account_deployer_allows_what_each_environment_deploy_role_allows(
    engine: str,
) -> None:
    """Whatever engine and config an environment picks, the single-account deployer (the union
    of its attached environment policies) may do what that environment's own deploy role
    (render/iam_deploy.py) would allow - no conditions loosened, nothing missing - and that
    environment's own policy alone already allows it."""
    envs = [_named_env("dev"), _named_env("stage", migrate=True), _named_env("prod", migrate=True)]
    policies = _policies(envs)
    union = {"Statement": [s for p in policies for s in p.document["Statement"]]}
    checked = 0
    for env, policy in zip(envs, policies, strict=True):
        assert policy.environment == env.name
        n = naming.Names("orders-api", env.name)
        roles = [
            naming.role_arn(r, account_id="111111111111") for r in (n.execution_role, n.task_role)
        ]
        own = iam_deploy.deploy_role_policy(
            region="eu-west-1",
            account_id="111111111111",
            cluster=n.cluster,
            service=n.ecs_service,
            task_family=n.task_family,
            pass_role_arns=roles,
            engine=engine,
            codedeploy_application=n.codedeploy_application,
            codedeploy_group=n.codedeploy_group,
            codedeploy_configs=[ENV_CONFIGS[env.name](n.prefix)],
            migration_family=n.migration_family if env.migrate else None,
            # the migration task definition's own roles (components/migration.py)
            migration_pass_role_arns=(
                [naming.role_arn(n.role(p), account_id="111111111111") for p in MIGRATION_ROLES]
                if env.migrate
                else ()
            ),
        )
        for s in own["Statement"]:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            for action in actions:
                for resource in resources:
                    condition = s.get("Condition")
                    assert _allows(union, action, resource, condition), (env.name, action)
                    assert _allows(policy.document, action, resource, condition), (
                        env.name,
                        action,
                        resource,
                    )
                    checked += 1
    assert checked > 40
    by_env = {p.environment: {s["Sid"]: s for s in p.document["Statement"]} for p in policies}
    assert "RunMigrationTask" in by_env["stage"] and "RunMigrationTask" in by_env["prod"]
    assert "RunMigrationTask" not in by_env["dev"]  # dev has no migration
    # the migration family's revisions are registered too (migrate.py swaps the digest in)
    assert by_env["prod"]["RegisterFamilyRevisions"]["Resource"] == [
        "arn:aws:ecs:eu-west-1:111111111111:task-definition/orders-api-prod:*",
        "arn:aws:ecs:eu-west-1:111111111111:task-definition/orders-api-prod-migrate:*",
    ]
    # UpdateService for one environment only to that environment's family
    update = by_env["prod"]["UpdateServiceToFamilyRevisions"]
    assert update["Condition"]["ArnLike"]["ecs:task-definition"].endswith(
        "task-definition/orders-api-prod:*"
    )
    assert update["Resource"].endswith("service/orders-api-prod/orders-api-prod-svc")


def test_each_environment_policy_names_only_its_own_environment() -> None:
    envs = [_named_env("dev"), _named_env("stage", migrate=True), _named_env("prod", migrate=True)]
    policies = _policies(envs)
    assert [(p.environment, p.name) for p in policies] == [
        ("dev", "orders-api-tooling-deploy-dev"),
        ("stage", "orders-api-tooling-deploy-stage"),
        ("prod", "orders-api-tooling-deploy-prod"),
    ]
    for policy in policies:
        text = iam.to_json(policy.document)
        assert f"orders-api-{policy.environment}" in text
        for other in {"dev", "stage", "prod"} - {policy.environment}:
            assert f"orders-api-{other}" not in text, (policy.environment, other)
        assert "sts:AssumeRole" not in text


def test_single_account_policies_fit_iam_quotas() -> None:
    """Four migrating environments (10,522 characters as one inline policy before the split)
    fit: the inline base policy and every environment's own managed policy."""
    envs = [_named_env(f"e{i}", migrate=True) for i in range(4)]
    base = ps.deployer_role_policy(**DEPLOYER_COMMON, deploy_role_arns=[])
    policies = _policies(envs)
    assert len(policies) == 4
    assert ps.policy_size(base) <= ps.ROLE_INLINE_POLICY_LIMIT
    assert all(ps.policy_size(p.document) <= ps.MANAGED_POLICY_LIMIT for p in policies)
    # together they would not fit one role's inline policies
    assert sum(ps.policy_size(p.document) for p in policies) > ps.ROLE_INLINE_POLICY_LIMIT
    # IAM's documented quotas (IAM and AWS STS quotas page)
    assert (ps.ROLE_INLINE_POLICY_LIMIT, ps.MANAGED_POLICY_LIMIT) == (10_240, 6_144)
    assert ps.ROLE_ATTACHED_POLICIES_LIMIT == 10


def test_policy_size_does_not_count_whitespace() -> None:
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "A B"}]}
    assert ps.policy_size(doc) == len(iam.to_json(doc)) - 1


@settings(max_examples=40, deadline=None)
@given(
    service=st.sampled_from(["a", "orders-api", "x" * 40, "a-very-long-service-name-for-tests"]),
    env_names=st.lists(
        st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True), min_size=1, max_size=10, unique=True
    ),
    migrate=st.booleans(),
)
def test_any_valid_names_fit_the_quotas_up_to_ten_environments(
    service: str, env_names: list[str], migrate: bool
) -> None:
    envs = [_named_env(e, migrate=migrate, service=service) for e in env_names]
    policies = _policies(envs, service=service)
    assert [p.environment for p in policies] == env_names
    assert len({p.name for p in policies}) == len(policies)  # unique policy names
    for p in policies:
        assert p.name == naming.fit(p.name, naming.Kind.IAM_POLICY)  # a valid IAM name
        assert ps.policy_size(p.document) <= ps.MANAGED_POLICY_LIMIT


def test_more_environments_than_attachable_policies_names_the_key() -> None:
    ok = _policies([_named_env(f"e{i}") for i in range(10)])
    assert len(ok) == 10
    with pytest.raises(ps.DeployerPolicyError) as err:
        _policies([_named_env(f"e{i}") for i in range(11)])
    assert err.value.problems == [
        "dotnet-delivery:pipeline.environments: 11 environments in single-account mode need 11 "
        "managed policies on the deployer role orders-api-tooling-deployer; IAM attaches at "
        "most 10 managed policies to a role (default quota); use at most 10 environments or "
        "separate accounts (deploy roles)"
    ]
    # a raised quota is a parameter
    assert len(_policies([_named_env(f"e{i}") for i in range(11)], attached_limit=20)) == 11


def test_oversized_environment_policy_names_the_key_and_the_environment() -> None:
    long = "c" * 255  # ECS allows 255-character cluster/service/family names
    huge = dataclasses.replace(
        _named_env("huge", migrate=True), cluster=long, ecs_service=long, task_family=long
    )
    with pytest.raises(ps.DeployerPolicyError) as err:
        _policies([_named_env("dev"), huge, *[_named_env(f"e{i}") for i in range(9)]])
    problems = err.value.problems
    assert len(problems) == 2  # every problem at once: the count and the size
    assert problems[0].startswith("dotnet-delivery:pipeline.environments: 11 environments")
    assert problems[1].startswith(
        "dotnet-delivery:pipeline.environments: environment 1 ('huge'): its deploy policy for "
        "the single-account deployer role is "
    )
    assert "characters; IAM allows 6144 for a managed policy" in problems[1]
    size = int(problems[1].split(" is ")[1].split(" ")[0])
    assert size > ps.MANAGED_POLICY_LIMIT
    assert str(err.value) == "\n".join(problems)


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
    # Every object but the step scripts (which Pulumi itself reads back after uploading).
    assert others["NotResource"] == "arn:aws:s3:::b/tools/*" and "Resource" not in others
    # no principal Allow (S3 rejects principals that do not exist yet): Denies only
    assert [s["Effect"] for s in doc["Statement"]] == ["Deny", "Deny"]
    assert "arn:r1" not in json.dumps([s["Principal"] for s in doc["Statement"]])
    assert iam.to_json(doc)  # serialisable


# --------------------------------------------------------------------------------------
# Inline buildspecs of the deploy / migrate / test projects
# --------------------------------------------------------------------------------------
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
BUILD_TIMEOUT = 60


def _spec_of(buildspec: str) -> dict[str, Any]:
    return dict(yaml.safe_load(buildspec))


def _commands(buildspec: str) -> list[str]:
    return list(_spec_of(buildspec)["phases"]["build"]["commands"])


BUILDSPECS = {
    "deploy": ps.deploy_buildspec(
        bucket="artifacts-bucket", script_key="tools/deploy.py", build_timeout_minutes=BUILD_TIMEOUT
    ),
    "migrate": ps.migrate_buildspec(
        bucket="artifacts-bucket",
        script_key="tools/migrate.py",
        deploy_script_key="tools/deploy.py",
    ),
    "test": ps.test_buildspec(report_group_arn="arn:aws:codebuild:eu-west-1:1:report-group/r"),
}


@pytest.mark.parametrize("name", sorted(BUILDSPECS))
def test_each_command_stands_alone(name: str, tmp_path: Path) -> None:
    """Every command is self-contained (a fresh shell per command or one shell for all):
    strict mode first, and whatever calls as_deploy_role defines it in the same command."""
    text = BUILDSPECS[name]
    assert "- |\n" in text  # a YAML block scalar command
    for index, command in enumerate(_commands(text)):
        assert command.startswith("set -euo pipefail\n"), command[:40]
        if "as_deploy_role " in command:
            assert "as_deploy_role() {" in command
        path = tmp_path / f"{name}-{index}.sh"
        path.write_text("#!/bin/bash\n" + command, encoding="utf-8")
        result = subprocess.run(
            [str(SHELLCHECK), "--shell=bash", "--severity=style", "--format=gcc", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


FAKE_AWS = r"""#!/bin/bash
# fake aws: records argv (one line, NUL-separated) and the access key it ran with
{ printf '%s\0' "${AWS_ACCESS_KEY_ID:-none}" "$@"; printf '\n'; } >> "$FAKE_LOG"
case "$1 $2" in
  "sts assume-role") printf 'AKIAFAKE\tsecret\ttoken\n' ;;
  "elbv2 describe-load-balancers") echo "orders-alb-123.eu-west-1.elb.amazonaws.com" ;;
  "ecs describe-services")
    case "$*" in *subnets*) echo "subnet-0a,subnet-0b" ;; *) echo "sg-0a" ;; esac ;;
  "s3 cp") ;;
  *) echo "fake aws: unsupported $*" >&2; exit 2 ;;
esac
"""
FAKE_PYTHON = r"""#!/bin/bash
# fake python3: records the runtime scripts' argv; anything else runs the real interpreter
case "${1:-}" in
  /tmp/deploy.py|/tmp/migrate.py)
    { printf '%s\0' python3 "$@"; printf '\n'; } >> "$FAKE_LOG"
    exit "${FAKE_SCRIPT_RC:-0}" ;;
esac
exec "$REAL_PYTHON" "$@"
"""
IMAGE_URI = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api@sha256:" + "ab" * 32
RELEASE = {
    "service": "orders-api",
    "version": "1.8.0-build.247-git.a1b2c3d4e5f6",
    "tag": "1.8.0-build.247-git.a1b2c3d4e5f6",
    "commit": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
    "digest": "sha256:" + "ab" * 32,
    "imageUri": IMAGE_URI,
}


def _build_output(tmp_path: Path, *, release: dict[str, Any] | None = None) -> Path:
    """BuildOutput as the batch's combined artifact lays it out (one directory per build)."""
    src = tmp_path / "src"
    (src / "publish").mkdir(parents=True)
    (src / "publish" / "imageDetail.json").write_text(json.dumps({"ImageURI": IMAGE_URI}))
    (src / "publish" / "release.json").write_text(json.dumps(release or RELEASE))
    return src


def _run_step(
    name: str, variables: dict[str, str], src: Path, tmp_path: Path, **extra: str
) -> tuple[phase_runner.BuildResult, list[list[str]]]:
    """Run a step buildspec through the phase runner (one fresh shell per command) with fake
    aws / python3; returns the result and the recorded calls (argv, aws: key id first)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool, text in (("aws", FAKE_AWS), ("python3", FAKE_PYTHON)):
        (bin_dir / tool).write_text(text, encoding="utf-8")
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
        "REAL_PYTHON": sys.executable,
        "AWS_REGION": "eu-west-1",
        **variables,
        **extra,
    }
    result = phase_runner.run_buildspec(_spec_of(BUILDSPECS[name]), src, env=env)
    calls = [line.split("\0")[:-1] for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def _variables(action: ps.Action) -> dict[str, str]:
    return {v["name"]: v["value"] for v in json.loads(action.configuration["EnvironmentVariables"])}


def _stage_env(single: bool, **kw: Any) -> ps.EnvironmentStep:
    n = naming.Names("orders-api", "stage")
    role = None if single else "arn:aws:iam::222222222222:role/orders-api-stage-deploy"
    return _env(
        "stage",
        deploy_role_arn=role,
        cluster=n.cluster,
        ecs_service=n.ecs_service,
        task_family=n.task_family,
        container=n.container,
        codedeploy_application=n.codedeploy_application,
        codedeploy_group=n.codedeploy_group,
        hook_function=n.hook_function,
        migration_family=n.migration_family,
        alb=n.alb,
        **kw,
    )


@pytest.mark.parametrize("single", [False, True])
def test_deploy_step_runs_deploy_py_and_exports_endpoint_and_release(
    single: bool, tmp_path: Path
) -> None:
    from components.runtime import deploy

    n = naming.Names("orders-api", "stage")
    env = _stage_env(single)
    action = next(a for a in ps.actions(ps.layout(_spec([env]))) if a.name == "DeployStage")
    assert action.namespace == "DeployStage"
    result, calls = _run_step("deploy", _variables(action), _build_output(tmp_path), tmp_path)
    assert result.status == "SUCCEEDED", result.output
    (script,) = [c for c in calls if c[0] == "python3"]
    argv = script[1:]
    assert argv[0] == "/tmp/deploy.py"
    args = deploy.parse_args(argv[1:])
    assert args.engine == "auto" and args.mode is None
    assert (args.cluster, args.service, args.family, args.container) == (
        n.cluster,
        n.ecs_service,
        n.task_family,
        n.container,
    )
    assert (args.codedeploy_app, args.codedeploy_group) == (
        n.codedeploy_application,
        n.codedeploy_group,
    )
    assert deploy.resolve_mode(args, "codedeploy", detected_from="CODE_DEPLOY") == (
        "create-deployment"
    )
    assert args.role_arn == env.deploy_role_arn and args.region == "eu-west-1"
    assert deploy._parse_hooks(args.hook) == {
        "AfterAllowTestTraffic": "orders-api-stage-smoke-hook"
    }
    assert str(args.image_detail_file) == "publish/imageDetail.json"
    # deploy.py stops (and rolls back) 5 minutes before CodeBuild's build timeout
    assert args.timeout_seconds == (BUILD_TIMEOUT - 5) * 60
    # the endpoint lookup runs as the deploy role (or, same account, as the deployer)
    (lookup,) = [c for c in calls if c[1:3] == ["elbv2", "describe-load-balancers"]]
    assert lookup[lookup.index("--names") + 1] == n.alb
    assert lookup[0] == ("none" if single else "AKIAFAKE")
    assert bool([c for c in calls if c[1:3] == ["sts", "assume-role"]]) == (not single)
    assert dict(result.exported_variables) == {
        "ENDPOINT": "https://orders-alb-123.eu-west-1.elb.amazonaws.com",
        "RELEASE_VERSION": RELEASE["version"],
        "RELEASE_COMMIT": RELEASE["commit"],
        "IMAGE_DIGEST": RELEASE["digest"],
        "IMAGE_URI": IMAGE_URI,
    }
    assert tuple(_spec_of(BUILDSPECS["deploy"])["env"]["exported-variables"]) == ps.DEPLOY_EXPORTS


def test_deploy_step_refuses_a_release_json_of_another_image(tmp_path: Path) -> None:
    other = {**RELEASE, "imageUri": IMAGE_URI.replace("ab", "cd")}
    action = next(
        a for a in ps.actions(ps.layout(_spec([_stage_env(False)]))) if a.name == "DeployStage"
    )
    result, calls = _run_step(
        "deploy", _variables(action), _build_output(tmp_path, release=other), tmp_path
    )
    assert result.status == "FAILED"
    assert "release.json names" in result.output
    assert not [c for c in calls if c[0] == "python3"]  # nothing deployed


def test_deploy_step_fails_when_deploy_py_fails(tmp_path: Path) -> None:
    action = next(
        a for a in ps.actions(ps.layout(_spec([_stage_env(False)]))) if a.name == "DeployStage"
    )
    result, calls = _run_step(
        "deploy", _variables(action), _build_output(tmp_path), tmp_path, FAKE_SCRIPT_RC="1"
    )
    assert result.status == "FAILED"
    assert not [c for c in calls if c[1:2] == ["elbv2"]]


def test_deploy_timeout_must_exceed_the_margin() -> None:
    with pytest.raises(ValueError, match="build_timeout_minutes: 5;"):
        ps.deploy_buildspec(bucket="b", script_key="k", build_timeout_minutes=5)


def test_migration_role_purposes_match_the_component() -> None:
    from components import migration

    assert (migration.EXECUTION_ROLE_PURPOSE, migration.TASK_ROLE_PURPOSE) == MIGRATION_ROLES


@pytest.mark.parametrize("single", [False, True])
def test_migrate_step_runs_migrate_py_with_the_promoted_image(single: bool, tmp_path: Path) -> None:
    """The Migrate<Env> action's variables + the migrate buildspec give migrate.py the family,
    the migrate container, BuildOutput's imageDetail.json and the service's network, read as
    the deploy role; run through the phase runner (a fresh shell per command)."""
    from components.runtime import migrate

    n = naming.Names("orders-api", "stage")
    env = _stage_env(single, migrate=True)
    stages = ps.layout(_spec([env]))
    names = [s.name for s in stages]
    assert names.index("MigrateStage") == names.index("DeployStage") - 1
    action = next(a for a in ps.actions(stages) if a.name == "MigrateStage")
    assert action.input_artifacts == (ps.BUILD_OUTPUT,)
    result, calls = _run_step("migrate", _variables(action), _build_output(tmp_path), tmp_path)
    assert result.status == "SUCCEEDED", result.output
    copies = [c[3:] for c in calls if c[1:3] == ["s3", "cp"]]
    assert copies == [
        ["s3://artifacts-bucket/tools/deploy.py", "/tmp/deploy.py"],
        ["s3://artifacts-bucket/tools/migrate.py", "/tmp/migrate.py"],
    ]
    describes = [c for c in calls if c[1:3] == ["ecs", "describe-services"]]
    assert len(describes) == 2
    assert {c[0] for c in describes} == {"none" if single else "AKIAFAKE"}
    (script,) = [c for c in calls if c[0] == "python3"]
    argv = script[1:]
    assert argv[0] == "/tmp/migrate.py"
    args = migrate.parse_args(argv[1:])
    assert (args.cluster, args.family, args.container) == (
        n.cluster,
        n.migration_family,
        "migrate",
    )
    assert str(args.image_detail_file) == "publish/imageDetail.json" and args.image_uri is None
    assert args.subnets == ["subnet-0a", "subnet-0b"] and args.security_groups == ["sg-0a"]
    assert args.role_arn == env.deploy_role_arn and args.region == "eu-west-1"


def test_test_step_runs_the_command_against_the_exported_endpoint(tmp_path: Path) -> None:
    env = _stage_env(False, test_command='echo "$BASE_URL" > reports/url.txt; ./smoke.sh')
    action = next(a for a in ps.actions(ps.layout(_spec([env]))) if a.name == "SmokeTestStage")
    assert action.runs_as == ps.RUNS_AS_TESTER
    variables = _variables(action)
    assert variables["ENDPOINT"] == "#{DeployStage.ENDPOINT}"
    assert "DEPLOY_ROLE_ARN" not in variables
    # CodePipeline resolves the reference before CodeBuild runs
    variables["ENDPOINT"] = "https://orders-alb-123.eu-west-1.elb.amazonaws.com"
    src = tmp_path / "src"
    src.mkdir()
    (src / "smoke.sh").write_text(
        '#!/bin/bash\necho \'<testsuite name="s" tests="1"/>\' > reports/junit.xml\n'
    )
    (src / "smoke.sh").chmod(0o755)
    result, calls = _run_step("test", variables, src, tmp_path)
    assert result.status == "SUCCEEDED", result.output
    assert calls == []  # no aws call at all: nothing assumed, nothing looked up
    assert (src / "reports" / "url.txt").read_text().strip() == variables["ENDPOINT"]
    assert list(result.reports.values()) == [("junit.xml",)]
    # an unresolved (empty) endpoint fails the action
    variables["ENDPOINT"] = ""
    failed, _ = _run_step("test", variables, src, tmp_path)
    assert failed.status == "FAILED" and "ENDPOINT is empty" in failed.output


def test_every_deploy_exports_and_tests_read_their_own_deploy() -> None:
    stages = ps.layout(_spec(DEFAULT))
    by_name = {a.name: a for a in ps.actions(stages)}
    namespaces = [a.namespace for a in by_name.values() if a.namespace]
    assert namespaces == [
        "SourceVariables",
        "BuildVariables",
        "DeployDev",
        "DeployStage",
        "DeployProd",
    ]
    for test, deploy_ns in (
        ("SmokeTestDev", "DeployDev"),
        ("IntegrationTestStage", "DeployStage"),
        ("PostDeployValidationProd", "DeployProd"),
    ):
        assert _variables(by_name[test])["ENDPOINT"] == f"#{{{deploy_ns}.ENDPOINT}}"
        assert by_name[test].runs_as == ps.RUNS_AS_TESTER
    assert _variables(by_name["BuildAndScan"])["COMMIT_ID"] == "#{SourceVariables.CommitId}"


def test_approval_custom_data_lists_passed_tests_within_the_limit() -> None:
    from components.runtime import approval_notifier as notifier

    # approval before the first environment: nothing deployed, only the commit is known
    first = [_env("dev", approval_before=True, test_command="x")]
    (approval,) = [a for a in ps.actions(ps.layout(_spec(first))) if a.category == "Approval"]
    data = json.loads(approval.configuration["CustomData"])
    assert data["commit"] == "#{SourceVariables.CommitId}" and data["tests"] == "no earlier tests"
    # many long environment names: the list is summarised, the text stays under the limit
    envs = [_env(f"environment{i:02d}" + "x" * 40, test_command="x") for i in range(12)]
    envs.append(_env("prod", approval_before=True))
    (approval,) = [a for a in ps.actions(ps.layout(_spec(envs))) if a.category == "Approval"]
    text = approval.configuration["CustomData"]
    assert len(text) <= notifier.CUSTOM_DATA_MAX_CHARS - ps.CUSTOM_DATA_RESOLVE_MARGIN
    assert json.loads(text)["tests"] == "all 12 earlier test actions passed"
    release = notifier.parse_custom_data(text)
    assert release.environment == "prod"


def test_tester_and_build_connection_policies() -> None:
    tester = ps.tester_role_policy(
        region="eu-west-1",
        account_id="111111111111",
        project="t",
        connection_arn="arn:aws:codeconnections:eu-west-1:111111111111:connection/x",
        bucket_arn="arn:aws:s3:::b",
        key_arn="arn:k",
        report_group_arn="arn:r",
    )
    actions = set(_allow_actions(tester))
    assert not {a for a in actions if a.split(":")[0] in ("sts", "ecs", "codedeploy", "iam")}
    assert {"codeconnections:UseConnection", "codestar-connections:UseConnection"} <= actions
    build = ps.build_connection_policy(connection_arn="arn:c")
    assert build["Statement"] == [
        {
            "Sid": "SourceConnection",
            "Effect": "Allow",
            "Action": ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
            "Resource": "arn:c",
        }
    ]
