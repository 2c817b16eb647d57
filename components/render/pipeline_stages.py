"""The promotion pipeline's stage/action layout as plain data (pure; no Pulumi).

:func:`layout` turns the tooling config's ``pipeline.environments`` into the ordered stages::

    Source → BuildAndScan → for each environment, in promotion order:
        [Approval<Env> if approvalBefore] → [Migrate<Env> if migrate] → Deploy<Env>
        → [<Test><Env> if testCommand]

The test stage's kind follows the environment's position: the first environment gets a
``SmokeTest``, the last (of two or more) a ``PostDeployValidation``, the ones between an
``IntegrationTest``. Adding or dropping an environment in config adds or drops its stages.

Artifacts: ``SourceArtifact`` (source; input of the build and of the test actions, which run
the repository's test scripts) and ``BuildOutput`` (the build's only output; the input of every
deploy and migrate action), so one digest (``imageDetail.json``) reaches every environment.

Every action says which role it runs under (:attr:`Action.runs_as`): ``pipeline`` (source,
approval: the pipeline role itself), ``build`` (the DevSecOps build project's service role),
``deployer`` (the deploy/migrate projects' service role, which alone may assume the environment
deploy roles) or ``tester`` (the test project's own role: it runs code from the commit, so it has
no deploy rights and assumes nothing). ARNs that only exist at deploy time (connection, topic)
are passed through opaquely, so the Pulumi component can hand in ``Output`` values.

Variables between actions: the source action's namespace is ``SourceVariables`` (``CommitId``
reaches the build as ``COMMIT_ID``). Each ``Deploy<Env>`` action has the namespace
``Deploy<Env>`` and exports :data:`DEPLOY_EXPORTS`: the environment's ``ENDPOINT`` (the test
action's only way to its environment) and the release metadata it read from ``BuildOutput``'s
``release.json`` (the approval's ``CustomData`` reads the first environment's; a CodeBuild
*batch* action's exported variables do not reach CodePipeline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from components.render.buildspec import buildspec_yaml
from components.runtime.approval_notifier import CUSTOM_DATA_MAX_CHARS, render_custom_data

SOURCE_ARTIFACT = "SourceArtifact"
BUILD_OUTPUT = "BuildOutput"
SOURCE_ACTION = "Source"
SOURCE_NAMESPACE = "SourceVariables"
BUILD_NAMESPACE = "BuildVariables"

RUNS_AS_PIPELINE = "pipeline"
RUNS_AS_BUILD = "build"
RUNS_AS_DEPLOYER = "deployer"
RUNS_AS_TESTER = "tester"

#: What the deploy buildspec exports (``env.exported-variables``): the environment's endpoint
#: and the release metadata of BuildOutput's release.json (its keys in parentheses).
DEPLOY_EXPORTS = ("ENDPOINT", "RELEASE_VERSION", "RELEASE_COMMIT", "IMAGE_DIGEST", "IMAGE_URI")
RELEASE_KEYS = {
    "RELEASE_VERSION": "version",
    "RELEASE_COMMIT": "commit",
    "IMAGE_DIGEST": "digest",
    "IMAGE_URI": "imageUri",
}

TEST_KINDS = ("SmokeTest", "IntegrationTest", "PostDeployValidation")
#: Characters kept free in CustomData for references resolving to longer values.
CUSTOM_DATA_RESOLVE_MARGIN = 200
#: The deploy step stops (and rolls back) this long before CodeBuild's build timeout.
DEPLOY_TIMEOUT_MARGIN_MINUTES = 5


@dataclass(frozen=True)
class EnvironmentStep:
    """One environment's promotion step (from ``pipeline.environments[]``)."""

    name: str
    account_id: str
    test_command: str | None = None
    migrate: bool = False
    approval_before: bool = False
    deploy_role_arn: str | None = None
    """The environment's deploy role (``None`` in single-account mode: nothing is assumed)."""
    cluster: str = ""
    ecs_service: str = ""
    task_family: str = ""
    container: str = ""
    codedeploy_application: str = ""
    codedeploy_group: str = ""
    migration_family: str = ""
    alb: str = ""
    hook_function: str = ""
    """The environment's smoke-test hook Lambda (CodeDeploy's AfterAllowTestTraffic)."""


@dataclass(frozen=True)
class LayoutInput:
    service: str
    region: str
    repository: str
    branch: str
    full_clone: bool
    connection_arn: Any
    build_project: str
    build_batch: bool
    deploy_project: str
    migrate_project: str
    test_project: str
    environments: Sequence[EnvironmentStep]
    approval_topic_arn: Any = None
    approval_timeout_minutes: int = 1440


@dataclass(frozen=True)
class Action:
    name: str
    category: str
    provider: str
    runs_as: str
    configuration: dict[str, Any]
    input_artifacts: tuple[str, ...] = ()
    output_artifacts: tuple[str, ...] = ()
    namespace: str | None = None
    run_order: int = 1
    owner: str = "AWS"
    version: str = "1"
    timeout_in_minutes: int | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    actions: tuple[Action, ...] = field(default_factory=tuple)


def stage_suffix(environment: str) -> str:
    """``prod`` → ``Prod`` (stage names are ``Deploy<Env>`` …)."""
    return environment[:1].upper() + environment[1:]


def deploy_namespace(environment: str) -> str:
    """The ``Deploy<Env>`` action's variable namespace (:data:`DEPLOY_EXPORTS`)."""
    return f"Deploy{stage_suffix(environment)}"


def test_kind(index: int, count: int) -> str:
    """SmokeTest for the first environment, PostDeployValidation for the last of two or more,
    IntegrationTest between."""
    if index == 0:
        return TEST_KINDS[0]
    if index == count - 1:
        return TEST_KINDS[2]
    return TEST_KINDS[1]


def _env_vars(values: dict[str, str]) -> str:
    return json.dumps(
        [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in values.items()],
        separators=(",", ":"),
    )


def _target_vars(env: EnvironmentStep) -> dict[str, str]:
    return {
        "TARGET_ENV": env.name,
        "DEPLOY_ROLE_ARN": env.deploy_role_arn or "",
        "CLUSTER": env.cluster,
        "ECS_SERVICE": env.ecs_service,
    }


def layout(spec: LayoutInput) -> list[Stage]:
    """The ordered stages. Raises ``ValueError`` naming the field on bad input."""
    if not spec.environments:
        raise ValueError("pipeline.environments: empty; name at least one environment")
    names = [e.name for e in spec.environments]
    if len(set(names)) != len(names):
        raise ValueError(f"pipeline.environments: {names} repeats an environment")
    if any(e.approval_before for e in spec.environments) and spec.approval_topic_arn is None:
        raise ValueError("approval_topic_arn: required when an environment has approvalBefore")

    stages: list[Stage] = [
        Stage(
            "Source",
            (
                Action(
                    name=SOURCE_ACTION,
                    category="Source",
                    provider="CodeStarSourceConnection",
                    runs_as=RUNS_AS_PIPELINE,
                    configuration={
                        "ConnectionArn": spec.connection_arn,
                        "FullRepositoryId": spec.repository,
                        "BranchName": spec.branch,
                        "OutputArtifactFormat": (
                            "CODEBUILD_CLONE_REF" if spec.full_clone else "CODE_ZIP"
                        ),
                    },
                    output_artifacts=(SOURCE_ARTIFACT,),
                    namespace=SOURCE_NAMESPACE,
                ),
            ),
        ),
    ]
    build_config: dict[str, Any] = {
        "ProjectName": spec.build_project,
        "PrimarySource": SOURCE_ARTIFACT,
        "EnvironmentVariables": _env_vars(
            {
                "PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}",
                # the buildspec takes the release commit from COMMIT_ID first
                "COMMIT_ID": f"#{{{SOURCE_NAMESPACE}.CommitId}}",
            }
        ),
    }
    if spec.build_batch:
        # The build project runs a batch (native per-platform builds + join). One output
        # artifact needs CombineArtifacts: with it CodeBuild merges the builds' artifacts into
        # that artifact, one directory per build identifier (only the join writes any), hence
        # the deploy/migrate steps' `find . -name imageDetail.json`. Without it CodePipeline
        # maps output artifacts to build identifiers by name, and BuildOutput names none.
        build_config["BatchEnabled"] = "true"
        build_config["CombineArtifacts"] = "true"
    stages.append(
        Stage(
            "BuildAndScan",
            (
                Action(
                    name="BuildAndScan",
                    category="Build",
                    provider="CodeBuild",
                    runs_as=RUNS_AS_BUILD,
                    configuration=build_config,
                    input_artifacts=(SOURCE_ARTIFACT,),
                    output_artifacts=(BUILD_OUTPUT,),
                    namespace=BUILD_NAMESPACE,
                ),
            ),
        )
    )

    count = len(spec.environments)
    for index, env in enumerate(spec.environments):
        suffix = stage_suffix(env.name)
        if env.approval_before:
            custom = approval_custom_data(spec, index)
            stages.append(
                Stage(
                    f"Approval{suffix}",
                    (
                        Action(
                            name=f"Approve{suffix}",
                            category="Approval",
                            provider="Manual",
                            runs_as=RUNS_AS_PIPELINE,
                            configuration={
                                "NotificationArn": spec.approval_topic_arn,
                                "CustomData": custom,
                            },
                            timeout_in_minutes=spec.approval_timeout_minutes,
                        ),
                    ),
                )
            )
        if env.migrate:
            stages.append(
                Stage(
                    f"Migrate{suffix}",
                    (
                        Action(
                            name=f"Migrate{suffix}",
                            category="Build",
                            provider="CodeBuild",
                            runs_as=RUNS_AS_DEPLOYER,
                            configuration={
                                "ProjectName": spec.migrate_project,
                                "PrimarySource": BUILD_OUTPUT,
                                "EnvironmentVariables": _env_vars(
                                    {
                                        **_target_vars(env),
                                        "MIGRATION_FAMILY": env.migration_family,
                                    }
                                ),
                            },
                            input_artifacts=(BUILD_OUTPUT,),
                        ),
                    ),
                )
            )
        stages.append(
            Stage(
                f"Deploy{suffix}",
                (
                    Action(
                        name=f"Deploy{suffix}",
                        category="Build",
                        provider="CodeBuild",
                        runs_as=RUNS_AS_DEPLOYER,
                        configuration={
                            "ProjectName": spec.deploy_project,
                            "PrimarySource": BUILD_OUTPUT,
                            "EnvironmentVariables": _env_vars(
                                {
                                    **_target_vars(env),
                                    "TASK_FAMILY": env.task_family,
                                    "CONTAINER": env.container,
                                    "CODEDEPLOY_APP": env.codedeploy_application,
                                    "CODEDEPLOY_GROUP": env.codedeploy_group,
                                    "HOOK_FUNCTION": env.hook_function,
                                    "ALB_NAME": env.alb,
                                }
                            ),
                        },
                        input_artifacts=(BUILD_OUTPUT,),
                        namespace=deploy_namespace(env.name),
                    ),
                ),
            )
        )
        if env.test_command:
            kind = test_kind(index, count)
            stages.append(
                Stage(
                    f"{kind}{suffix}",
                    (
                        Action(
                            name=f"{kind}{suffix}",
                            category="Test",
                            provider="CodeBuild",
                            runs_as=RUNS_AS_TESTER,
                            configuration={
                                "ProjectName": spec.test_project,
                                "PrimarySource": SOURCE_ARTIFACT,
                                "EnvironmentVariables": _env_vars(
                                    {
                                        "TARGET_ENV": env.name,
                                        "ENDPOINT": f"#{{{deploy_namespace(env.name)}.ENDPOINT}}",
                                        "TEST_KIND": kind,
                                        "TEST_COMMAND": env.test_command,
                                    }
                                ),
                            },
                            input_artifacts=(SOURCE_ARTIFACT,),
                        ),
                    ),
                )
            )
    return stages


def test_action_names(spec: LayoutInput, before: int) -> list[str]:
    """The test actions of the environments before index ``before``, in promotion order."""
    count = len(spec.environments)
    return [
        f"{test_kind(i, count)}{stage_suffix(e.name)}"
        for i, e in enumerate(spec.environments[:before])
        if e.test_command
    ]


def approval_custom_data(spec: LayoutInput, index: int) -> str:
    """The approval before environment ``index``: the release the first environment's deploy
    read from release.json (its exported variables; the build may be a batch, whose variables
    CodePipeline does not get) and the earlier test actions, all passed: CodePipeline reaches
    the approval only after every earlier action succeeded. Before the first deploy (an
    approval before the first environment) only the source commit is known."""
    env = spec.environments[index]
    if index == 0:
        first = None
        version = digest = "not deployed yet"
        commit = f"#{{{SOURCE_NAMESPACE}.CommitId}}"
    else:
        first = deploy_namespace(spec.environments[0].name)
        version = f"#{{{first}.RELEASE_VERSION}}"
        commit = f"#{{{first}.RELEASE_COMMIT}}"
        digest = f"#{{{first}.IMAGE_DIGEST}}"
    passed = test_action_names(spec, index)
    tests = "; ".join(f"{name}: passed" for name in passed) if passed else "no earlier tests"
    fields: dict[str, Any] = dict(
        service=spec.service, version=version, commit=commit, digest=digest, environment=env.name
    )
    # The references resolve to longer values (a digest is 71 characters): keep a margin.
    try:
        text = render_custom_data(**fields, tests=tests)
    except ValueError:
        text = ""
    if not text or len(text) > CUSTOM_DATA_MAX_CHARS - CUSTOM_DATA_RESOLVE_MARGIN:
        text = render_custom_data(**fields, tests=f"all {len(passed)} earlier test actions passed")
    return text


def actions(stages: Sequence[Stage]) -> list[Action]:
    return [action for s in stages for action in s.actions]


# --------------------------------------------------------------------------------------
# Inline buildspecs of the deploy / migrate / test projects
# --------------------------------------------------------------------------------------
#: Run one command as the environment deploy role (in a subshell, so the credentials never
#: leak into the next command); without DEPLOY_ROLE_ARN (the environment is in the tooling
#: account) run it as is. Whether CodeBuild keeps shell functions between buildspec commands is
#: not documented (the phase runner starts a fresh shell per command), so every step is ONE
#: command that defines the function and uses it.
AS_DEPLOY_ROLE = r"""as_deploy_role() {
  if [ -z "${DEPLOY_ROLE_ARN:-}" ]; then "$@"; return; fi
  (
    creds="$(aws sts assume-role --role-arn "${DEPLOY_ROLE_ARN}" \
      --role-session-name "pipeline-${TARGET_ENV}" \
      --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)"
    read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<EOF
${creds}
EOF
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    "$@"
  )
}"""

STRICT = "set -euo pipefail"
ROLE_ARG = '${DEPLOY_ROLE_ARN:+--role-arn "$DEPLOY_ROLE_ARN"}'
FIND_DETAIL = (
    'DETAIL="$(find . -name imageDetail.json -print | sort | head -n 1)"\n'
    'test -n "$DETAIL" || { echo "no imageDetail.json in BuildOutput" >&2; exit 2; }'
)
#: Read release.json (next to imageDetail.json in BuildOutput) into the RELEASE_KEYS variables,
#: refusing a release.json that names another image than imageDetail.json.
READ_RELEASE = (
    'RELEASE="$(dirname "$DETAIL")/release.json"\n'
    'test -f "$RELEASE" || { echo "no release.json next to $DETAIL" >&2; exit 2; }\n'
    'META="$(python3 - "$DETAIL" "$RELEASE" <<\'PY\'\n'
    "import json, shlex, sys\n"
    "detail = json.load(open(sys.argv[1], encoding='utf-8'))\n"
    "release = json.load(open(sys.argv[2], encoding='utf-8'))\n"
    "if release.get('imageUri') != detail.get('ImageURI'):\n"
    "    sys.exit('release.json names %r, imageDetail.json %r'\n"
    "             % (release.get('imageUri'), detail.get('ImageURI')))\n"
    f"for name, key in {tuple(RELEASE_KEYS.items())!r}:\n"
    "    print('%s=%s' % (name, shlex.quote(str(release[key]))))\n"
    "PY\n"
    ')"\n'
    'eval "$META"'
)


def _buildspec(
    script: Sequence[str],
    *,
    reports: dict[str, Any] | None = None,
    exported: Sequence[str] = (),
) -> str:
    """A buildspec whose build phase is ONE bash command (a YAML block scalar) starting with
    ``set -euo pipefail``: correct whether or not CodeBuild keeps shell state between
    commands."""
    env: dict[str, Any] = {"shell": "bash"}
    if exported:
        env["exported-variables"] = list(exported)
    spec: dict[str, Any] = {
        "version": 0.2,
        "env": env,
        "phases": {"build": {"commands": ["\n".join([STRICT, *script]) + "\n"]}},
    }
    if reports:
        spec["reports"] = reports
    return buildspec_yaml(spec)


def deploy_buildspec(*, bucket: str, script_key: str, build_timeout_minutes: int) -> str:
    """Run deploy.py with ``--engine auto``: it reads the service's deployment controller and
    takes the CodeDeploy path (the deterministic application/group names are passed for every
    environment) or the native ECS path. The tooling stack never knows an environment's engine.

    deploy.py's own timeout is the project's ``build_timeout_minutes`` less
    :data:`DEPLOY_TIMEOUT_MARGIN_MINUTES`, so its stop-and-roll-back path runs before CodeBuild
    kills the build. Then it exports (:data:`DEPLOY_EXPORTS`) the release metadata of
    ``release.json`` and the environment's endpoint (its ALB, looked up as the deploy role).
    """
    seconds = (build_timeout_minutes - DEPLOY_TIMEOUT_MARGIN_MINUTES) * 60
    if seconds <= 0:
        raise ValueError(
            f"build_timeout_minutes: {build_timeout_minutes}; must exceed the deploy step's "
            f"{DEPLOY_TIMEOUT_MARGIN_MINUTES}-minute margin"
        )
    return _buildspec(
        [
            AS_DEPLOY_ROLE,
            f'aws s3 cp "s3://{bucket}/{script_key}" /tmp/deploy.py',
            FIND_DETAIL,
            READ_RELEASE,
            'python3 /tmp/deploy.py --engine auto --family "$TASK_FAMILY" \\\n'
            '  --cluster "$CLUSTER" --service "$ECS_SERVICE" --container "$CONTAINER" \\\n'
            '  --codedeploy-app "$CODEDEPLOY_APP" --codedeploy-group "$CODEDEPLOY_GROUP" \\\n'
            # CodeDeploy runs the smoke test on the test listener before shifting traffic (the
            # native ECS engine has the same hook configured on the service itself).
            '  --hook "AfterAllowTestTraffic=$HOOK_FUNCTION" \\\n'
            f'  --image-detail-file "$DETAIL" --timeout-seconds {seconds} \\\n'
            f'  --region "$AWS_REGION" {ROLE_ARG}',
            'DNS="$(as_deploy_role aws elbv2 describe-load-balancers --names "$ALB_NAME" \\\n'
            "  --query 'LoadBalancers[0].DNSName' --output text)\"\n"
            'if [ -z "$DNS" ] || [ "$DNS" = None ]; then\n'
            '  echo "no DNS name for load balancer $ALB_NAME" >&2; exit 2\n'
            "fi\n"
            'ENDPOINT="https://${DNS}"',
            f"export {' '.join(DEPLOY_EXPORTS)}",
            'echo "deployed $IMAGE_URI ($RELEASE_VERSION) to ${TARGET_ENV}: ${ENDPOINT}"',
        ],
        exported=DEPLOY_EXPORTS,
    )


def migrate_buildspec(*, bucket: str, script_key: str, deploy_script_key: str) -> str:
    """Run migrate.py in the subnets / security groups the service itself runs in, with the
    promoted image (``imageDetail.json`` in ``BuildOutput``, as the deploy step finds it): the
    migration bundle ships in the release image, so the release's own bundle migrates the
    database before the release is deployed (expand-and-contract). migrate.py reuses
    deploy.py's helpers, so ``deploy_script_key`` is copied into the same directory."""
    net_query = "services[0].networkConfiguration.awsvpcConfiguration"
    return _buildspec(
        [
            AS_DEPLOY_ROLE,
            f'aws s3 cp "s3://{bucket}/{deploy_script_key}" /tmp/deploy.py',
            f'aws s3 cp "s3://{bucket}/{script_key}" /tmp/migrate.py',
            FIND_DETAIL,
            f'SUBNETS="$(as_deploy_role aws ecs describe-services --cluster "$CLUSTER" \\\n'
            f'  --services "$ECS_SERVICE" --query "join(\',\', {net_query}.subnets)" \\\n'
            '  --output text)"',
            f'SGS="$(as_deploy_role aws ecs describe-services --cluster "$CLUSTER" \\\n'
            f'  --services "$ECS_SERVICE" --query "join(\',\', {net_query}.securityGroups)" \\\n'
            '  --output text)"',
            'python3 /tmp/migrate.py --cluster "$CLUSTER" --family "$MIGRATION_FAMILY" \\\n'
            '  --image-detail-file "$DETAIL" \\\n'
            '  --subnets "$SUBNETS" --security-groups "$SGS" --container migrate \\\n'
            f'  --region "$AWS_REGION" {ROLE_ARG}',
        ]
    )


TEST_REPORTS_DIR = "reports"


def test_buildspec(*, report_group_arn: str) -> str:
    """Run the configured test command against ``ENDPOINT`` (exported by the environment's
    Deploy action; also ``BASE_URL``). It runs code from the commit, under the test project's
    own role, which can deploy nothing and assumes nothing. JUnit XML written under
    ``reports/`` lands in the report group."""
    return _buildspec(
        [
            f"mkdir -p {TEST_REPORTS_DIR}",
            'test -n "${ENDPOINT:-}" || '
            '{ echo "ENDPOINT is empty: the Deploy action exports it" >&2; exit 2; }',
            'export BASE_URL="$ENDPOINT"',
            'echo "${TEST_KIND} ${TARGET_ENV}: ${ENDPOINT}"',
            'bash -c "$TEST_COMMAND"',
        ],
        reports={
            report_group_arn: {
                "files": ["**/*.xml"],
                "base-directory": TEST_REPORTS_DIR,
                "file-format": "JUNITXML",
            }
        },
    )


# --------------------------------------------------------------------------------------
# IAM documents (pure)
# --------------------------------------------------------------------------------------
def _iam() -> Any:
    from components.render import iam

    return iam


def codebuild_project_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:codebuild:{region}:{account_id}:project/{name}"


def pipeline_role_policy(
    *,
    region: str,
    account_id: str,
    build_project: str,
    build_batch: bool,
    deployer_projects: Sequence[str],
    connection_arn: str,
    bucket_arn: str,
    key_arn: str,
    topic_arn: str | None,
) -> dict[str, Any]:
    """The pipeline role: start/watch its CodeBuild projects, use the one connection, the
    artifact bucket and key, publish approval requests. Nothing else."""
    iam = _iam()
    projects = [
        codebuild_project_arn(region, account_id, p) for p in (build_project, *deployer_projects)
    ]
    build_actions = ["codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild"]
    if build_batch:
        build_actions += ["codebuild:StartBuildBatch", "codebuild:BatchGetBuildBatches"]
    statements = [
        iam.Statement("CodeBuild", build_actions, projects),
        connection_statement("Connection", connection_arn),
        iam.Statement(
            "ArtifactObjects",
            ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectAcl"],
            [f"{bucket_arn}/*"],
        ),
        iam.Statement(
            "ArtifactBucket", ["s3:GetBucketLocation", "s3:GetBucketVersioning"], [bucket_arn]
        ),
        iam.Statement(
            "ArtifactKey",
            ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
            [key_arn],
        ),
    ]
    if topic_arn:
        statements.append(iam.Statement("Approval", ["sns:Publish"], [topic_arn]))
    return dict(iam.policy_document(statements))


def deployer_role_policy(
    *,
    region: str,
    account_id: str,
    projects: Sequence[str],
    bucket_arn: str,
    key_arn: str,
    deploy_role_arns: Sequence[str],
) -> dict[str, Any]:
    """The deploy/migrate projects' service role: its inline policy.

    Multi-account: it may ``sts:AssumeRole`` exactly the environment deploy roles and nothing
    in the environments. Single-account (no deploy roles): this is only its base permissions;
    each environment's deploy permissions are a managed policy of their own
    (:func:`single_account_deploy_policies`) attached to the role, and it assumes nothing.
    """
    iam = _iam()
    statements = _project_base_statements(
        region=region,
        account_id=account_id,
        projects=projects,
        bucket_arn=bucket_arn,
        key_arn=key_arn,
    )
    if deploy_role_arns:
        statements.append(
            iam.Statement("AssumeDeployRoles", ["sts:AssumeRole"], sorted(deploy_role_arns))
        )
    document = dict(iam.policy_document(statements))
    size = policy_size(document)
    if size > ROLE_INLINE_POLICY_LIMIT:  # bounded (at most 3 projects): a guard, not a path
        raise iam.PolicyError(
            f"{ENVIRONMENTS_KEY}: the deployer role's inline policy is {size} characters; "
            f"IAM allows {ROLE_INLINE_POLICY_LIMIT} for all inline policies of a role"
        )
    return document


def _project_base_statements(
    *, region: str, account_id: str, projects: Sequence[str], bucket_arn: str, key_arn: str
) -> list[Any]:
    iam = _iam()
    log_groups = [
        f"arn:aws:logs:{region}:{account_id}:log-group:/aws/codebuild/{p}:*" for p in projects
    ]
    return [
        iam.Statement("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_groups),
        iam.Statement(
            "ArtifactsRead", ["s3:GetObject", "s3:GetObjectVersion"], [f"{bucket_arn}/*"]
        ),
        iam.Statement("ArtifactBucket", ["s3:GetBucketLocation"], [bucket_arn]),
        iam.Statement("ArtifactKey", ["kms:Decrypt", "kms:DescribeKey"], [key_arn]),
    ]


def connection_statement(sid: str, connection_arn: str) -> Any:
    """``UseConnection`` on one connection, under both service prefixes: CodeStar Connections
    was renamed CodeConnections, and new-style (``arn:aws:codeconnections:``) connections are
    authorised by the new prefix."""
    return _iam().Statement(
        sid,
        ["codeconnections:UseConnection", "codestar-connections:UseConnection"],
        [connection_arn],
    )


def tester_role_policy(
    *,
    region: str,
    account_id: str,
    project: str,
    connection_arn: str,
    bucket_arn: str,
    key_arn: str,
    report_group_arn: str,
) -> dict[str, Any]:
    """The test project's own service role. It runs ``TEST_COMMAND`` (code from the commit),
    so it can deploy nothing and assume nothing: its logs, its reports, reading the source
    artifact and using the connection (``CODEBUILD_CLONE_REF`` clones through it). The
    endpoint comes from the Deploy action's exported ``ENDPOINT``."""
    iam = _iam()
    statements = [
        *_project_base_statements(
            region=region,
            account_id=account_id,
            projects=[project],
            bucket_arn=bucket_arn,
            key_arn=key_arn,
        ),
        iam.Statement(
            "Reports",
            [
                "codebuild:BatchPutCodeCoverages",
                "codebuild:BatchPutTestCases",
                "codebuild:CreateReport",
                "codebuild:UpdateReport",
            ],
            [report_group_arn],
        ),
        connection_statement("Connection", connection_arn),
    ]
    return dict(iam.policy_document(statements))


def build_connection_policy(*, connection_arn: str) -> dict[str, Any]:
    """For the build project's service role: a ``CODEBUILD_CLONE_REF`` source (full clone) is
    cloned by CodeBuild through the connection, under the project's service role."""
    return dict(_iam().policy_document([connection_statement("SourceConnection", connection_arn)]))


#: The config key the single-account size errors name (the number/shape of environments).
ENVIRONMENTS_KEY = "dotnet-delivery:pipeline.environments"
#: IAM quotas (characters, whitespace not counted): all inline policies of one role together,
#: one customer managed policy, and managed policies attached to one role (default quota;
#: up to 20 on a quota increase).
ROLE_INLINE_POLICY_LIMIT = 10_240
MANAGED_POLICY_LIMIT = 6_144
ROLE_ATTACHED_POLICIES_LIMIT = 10


def policy_size(document: dict[str, Any]) -> int:
    """A document's size as IAM counts it: its characters, whitespace not counted."""
    return sum(1 for c in _iam().to_json(document) if not c.isspace())


class DeployerPolicyError(ValueError):
    """The single-account deployer's environment policies do not fit IAM's quotas; one line
    per problem in :attr:`problems`, each naming :data:`ENVIRONMENTS_KEY`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class EnvironmentPolicy:
    """One environment's deploy permissions for the single-account deployer role, as a
    customer managed policy (its own document, so each fits IAM's per-policy quota)."""

    environment: str
    name: str
    """The managed policy's name (``<service>-tooling-deploy-<env>``, fitted to IAM)."""
    document: dict[str, Any]


def environment_deploy_statements(
    *, region: str, account_id: str, service: str, env: EnvironmentStep
) -> list[Any]:
    """What ``env``'s own deploy role would allow
    (:func:`components.render.iam_deploy.deploy_role_statements`), for both engines: the
    tooling stack cannot know an environment's engine (``deploy.py --engine auto`` finds out)
    nor its deployment config, so every config the environment can use is allowed
    (:func:`~components.render.iam_deploy.codedeploy_config_patterns`)."""
    from components import naming
    from components.render import iam_deploy

    names = naming.Names(service, env.name)
    roles = [
        naming.role_arn(names.execution_role, account_id=account_id),
        naming.role_arn(names.task_role, account_id=account_id),
    ]
    # The migration task definition's own roles (components/migration.py).
    migration_roles = [
        naming.role_arn(names.role(purpose), account_id=account_id)
        for purpose in ("migrate-exec", "migrate-task")
    ]
    return list(
        iam_deploy.deploy_role_statements(
            region=region,
            account_id=account_id,
            cluster=env.cluster,
            service=env.ecs_service,
            task_family=env.task_family,
            pass_role_arns=roles,
            engine=iam_deploy.ENGINE_ANY,
            codedeploy_application=env.codedeploy_application,
            codedeploy_group=env.codedeploy_group,
            codedeploy_configs=iam_deploy.codedeploy_config_patterns(names.prefix),
            migration_family=env.migration_family if env.migrate else None,
            migration_pass_role_arns=migration_roles if env.migrate else (),
        )
    )


def single_account_deploy_policies(
    *,
    region: str,
    account_id: str,
    service: str,
    environments: Sequence[EnvironmentStep],
    attached_limit: int = ROLE_ATTACHED_POLICIES_LIMIT,
) -> list[EnvironmentPolicy]:
    """Single-account mode: one managed policy per environment, in promotion order, each
    granting exactly what that environment's deploy role would
    (:func:`environment_deploy_statements`), to attach to the deployer role.

    Raises :class:`DeployerPolicyError` (every problem at once) when a document exceeds
    :data:`MANAGED_POLICY_LIMIT` or there are more environments than ``attached_limit``
    (IAM's default quota of managed policies per role, :data:`ROLE_ATTACHED_POLICIES_LIMIT`).
    """
    from components import naming

    iam = _iam()
    tooling = naming.Names(service, naming.TOOLING)
    policies: list[EnvironmentPolicy] = []
    problems: list[str] = []
    if len(environments) > attached_limit:
        problems.append(
            f"{ENVIRONMENTS_KEY}: {len(environments)} environments in single-account mode "
            f"need {len(environments)} managed policies on the deployer role "
            f"{tooling.role('deployer')}; IAM attaches at most {attached_limit} managed "
            f"policies to a role (default quota); use at most {attached_limit} environments "
            "or separate accounts (deploy roles)"
        )
    for index, env in enumerate(environments):
        document = dict(
            iam.policy_document(
                environment_deploy_statements(
                    region=region, account_id=account_id, service=service, env=env
                )
            )
        )
        size = policy_size(document)
        if size > MANAGED_POLICY_LIMIT:
            problems.append(
                f"{ENVIRONMENTS_KEY}: environment {index} ({env.name!r}): its deploy policy "
                f"for the single-account deployer role is {size} characters; IAM allows "
                f"{MANAGED_POLICY_LIMIT} for a managed policy; use shorter names "
                "or a separate account (deploy role)"
            )
        policies.append(
            EnvironmentPolicy(
                environment=env.name,
                name=tooling.managed_policy(f"deploy-{env.name}"),
                document=document,
            )
        )
    if problems:
        raise DeployerPolicyError(problems)
    return policies


def bucket_policy(
    *,
    bucket_arn: str,
    reader_role_arns: Sequence[str],
    tools_prefix: str = "tools/",
    cross_account_reader_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """TLS only; objects readable only by the pipeline, build, deployer and tester roles.

    The step scripts under ``tools_prefix`` (deploy.py, migrate.py: this repository's code,
    no secrets) stay readable under IAM alone: Pulumi, running as the operator, reads the
    objects it uploads back (HeadObject needs s3:GetObject), which a blanket Deny would break.

    No principal Allow: S3 rejects a policy naming a principal that does not exist yet, and
    nothing orders this policy after the roles; same-account identity policies already grant
    the access. "Only these roles" is a Deny for every other principal, by ``aws:PrincipalArn``
    (condition values are not checked for existence; for an assumed role it is the role ARN).

    ``cross_account_reader_arns`` (the environment deploy roles in other accounts) also need an
    Allow, since a cross-account read needs both sides to grant it: their account roots as
    principals, limited by ``aws:PrincipalArn`` to exactly those roles (valid before they
    exist).
    """
    readers = sorted({*reader_role_arns, *cross_account_reader_arns})
    cross = sorted(set(cross_account_reader_arns))
    allow: list[dict[str, Any]] = []
    if cross:
        roots = sorted({f"arn:{a.split(':')[1]}:iam::{a.split(':')[4]}:root" for a in cross})
        allow.append(
            {
                "Sid": "AllowDeployRolesRead",
                "Effect": "Allow",
                "Principal": {"AWS": roots[0] if len(roots) == 1 else roots},
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": f"{bucket_arn}/*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": cross}},
            }
        )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "DenyReadsByOthers",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "NotResource": f"{bucket_arn}/{tools_prefix}*",
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": readers}},
            },
            *allow,
        ],
    }


def notifier_role_policy(
    *, log_group_arn: str, secret_arn: str, key_arn: str | None = None
) -> dict[str, Any]:
    iam = _iam()
    statements = [
        iam.Statement(
            "Logs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"]
        ),
        iam.Statement("WebhookSecret", ["secretsmanager:GetSecretValue"], [secret_arn]),
    ]
    if key_arn:
        statements.append(iam.Statement("SecretKey", ["kms:Decrypt"], [key_arn]))
    return dict(iam.policy_document(statements))
