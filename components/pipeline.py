"""PromotionPipeline: CodePipeline V2 from commit to prod, one digest, across accounts.

Stages come from :func:`components.render.pipeline_stages.layout` (Source → BuildAndScan →
per environment [Approval] → [Migrate] → Deploy → [test]). Deploy and migrate actions are
CodeBuild actions on two small projects sharing one service role, the *deployer* role; they
run ``components/runtime/deploy.py`` / ``migrate.py``, shipped as objects in the artifact bucket.
Test actions run the configured command (code from the commit) on a third project with its own
*tester* role, which can deploy nothing and assumes nothing; the environment's endpoint comes
from the Deploy action's exported ``ENDPOINT``.
The deploy buildspec runs ``deploy.py --engine auto``, which picks the engine from the
service's ``deploymentController.type`` (CODE_DEPLOY → a CodeDeploy deployment on the
deterministic application/group, ECS → UpdateService; EXTERNAL is refused).

Cross-account: the deployer role is the only principal that assumes the environment deploy
roles (``sts:AssumeRole`` on exactly their ARNs), so **``pipelineRoleArn`` exports the deployer
role's ARN: the role each environment's deploy role must trust.** The CodePipeline service role
itself only starts the projects. Per environment: one in the tooling account (the environment
stack creates no deploy role there, ``components/stacks.py``) is deployed with permissions the
deployer holds directly (scoped by the deterministic names) and nothing is assumed for it; one
in another account through its deploy role. The deployer's inline policy keeps its base
permissions (logs, artifacts, ``sts:AssumeRole`` on the other accounts' deploy roles) and each
same-account environment's deploy permissions are a customer managed policy of their own
attached to it
(:func:`components.render.pipeline_stages.single_account_deploy_policies`), because IAM allows
10,240 characters for all inline policies of a role together but 6,144 per managed policy and
10 managed policies per role (default quota). Too many or too large environment policies are a
:class:`~components.config.ConfigError` naming ``dotnet-delivery:pipeline.environments``, raised
before the component registers anything.

The tooling stack registers nothing in an environment account and reads no environment stack;
environment resources are addressed by :mod:`components.naming`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components import _wiring, naming
from components import config as config_mod
from components.render import iam, kms
from components.render import pipeline_stages as ps

TYPE_TOKEN = "dotnet-delivery:index:PromotionPipeline"
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
DEPLOY_SCRIPT_KEY = "tools/deploy.py"
MIGRATE_SCRIPT_KEY = "tools/migrate.py"
CODEBUILD_IMAGE = "aws/codebuild/amazonlinux-x86_64-standard:5.0"
#: The approval notifier Lambda's timeout (see where it is set).
NOTIFIER_TIMEOUT_SECONDS = 180


@dataclass
class PromotionPipelineArgs:
    cfg: config_mod.ToolingConfig
    artifact_key: aws.kms.Key
    tags: dict[str, str] = field(default_factory=dict)
    build_dependencies: Sequence[pulumi.Resource] = ()
    """What creates the build project's service role (the DevSecOpsBuildProject): the
    pipeline's policy on that role waits for it."""


def environment_steps(cfg: config_mod.ToolingConfig) -> list[ps.EnvironmentStep]:
    """The configured environments with their deterministic resource names. An environment in
    the tooling account has no deploy role (the environment stack creates one only in another
    account): the deployer deploys it with its own permissions."""
    steps = []
    for env in cfg.pipeline.environments:
        account = cfg.accounts.environments[env.name]
        n = naming.Names(cfg.app.name, env.name)
        steps.append(
            ps.EnvironmentStep(
                name=env.name,
                account_id=account,
                test_command=env.test_command,
                migrate=env.migrate,
                approval_before=env.approval_before,
                deploy_role_arn=None
                if account == cfg.accounts.tooling
                else naming.deploy_role_arn(cfg.app.name, env.name, account_id=account),
                cluster=n.cluster,
                ecs_service=n.ecs_service,
                task_family=n.task_family,
                container=n.container,
                codedeploy_application=n.codedeploy_application,
                codedeploy_group=n.codedeploy_group,
                migration_family=n.migration_family,
                alb=n.alb,
                hook_function=n.hook_function,
            )
        )
    return steps


def single_account_policies(
    cfg: config_mod.ToolingConfig, steps: list[ps.EnvironmentStep]
) -> list[ps.EnvironmentPolicy]:
    """The deployer's managed policies, one per environment in the tooling account (no deploy
    role), in promotion order (plain values).

    Raises :class:`~components.config.ConfigError` when they do not fit IAM's quotas (one
    line per problem, each naming ``dotnet-delivery:pipeline.environments``)."""
    try:
        return ps.single_account_deploy_policies(
            region=cfg.region,
            account_id=cfg.account_id,
            service=cfg.app.name,
            environments=[s for s in steps if s.deploy_role_arn is None],
        )
    except ps.DeployerPolicyError as exc:
        raise config_mod.ConfigError(exc.problems) from None


def build_is_batch(cfg: config_mod.ToolingConfig) -> bool:
    """Mirrors DevSecOpsBuildProject: a batch for two or more platforms without QEMU."""
    return len(cfg.image.platforms) > 1 and not cfg.build.qemu_fallback


class PromotionPipeline(pulumi.ComponentResource):
    pipeline_arn: pulumi.Output[str]
    pipeline_role_arn: pulumi.Output[str]
    """The deployer role's ARN: what environment deploy roles trust (see module doc)."""

    def __init__(
        self, name: str, args: PromotionPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        cfg = args.cfg
        steps = environment_steps(cfg)
        # Plain values only, before anything is registered: a quota problem is a config error.
        env_policies = single_account_policies(cfg, steps)
        super().__init__(TYPE_TOKEN, name, None, opts)
        pcfg = cfg.pipeline
        names = cfg.names
        account = cfg.account_id
        region = cfg.region
        tags = args.tags
        key = args.artifact_key
        child = pulumi.ResourceOptions(parent=self)
        deploy_role_arns = sorted({s.deploy_role_arn for s in steps if s.deploy_role_arn})
        batch = build_is_batch(cfg)

        build_project = names.build_project("build")
        deploy_project = names.build_project("deploy")
        migrate_project = names.build_project("migrate")
        test_project = names.build_project("test")
        deployer_projects = [deploy_project]
        if any(s.migrate for s in steps):
            deployer_projects.append(migrate_project)
        pipeline_role_name = names.pipeline_role
        deployer_role_name = names.deployer_role
        tester_role_name = names.role("tester")
        tester_role_arn = naming.role_arn(tester_role_name, account_id=account)
        build_role_arn = naming.role_arn(names.build_role, account_id=account)
        pipeline_role_arn = naming.role_arn(pipeline_role_name, account_id=account)
        deployer_role_arn = naming.role_arn(deployer_role_name, account_id=account)

        # --- artifact key policy: environment deploy roles may decrypt ----------------
        key_doc = kms.key_policy(
            account,
            service_principals=["codestar-notifications.amazonaws.com"],
            service_conditions={"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
            decrypt_principals=deploy_role_arns,
        )
        artifact_key_policy = aws.kms.KeyPolicy(
            f"{name}-artifact-key-policy",
            key_id=key.key_id,
            policy=iam.to_json(key_doc),
            opts=child,
        )

        # --- artifact bucket ------------------------------------------------------------
        bucket_name = names.artifact_bucket(account)
        bucket = aws.s3.Bucket(f"{name}-artifacts", bucket=bucket_name, tags=tags, opts=child)
        aws.s3.BucketVersioning(
            f"{name}-artifacts-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-artifacts-sse",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        pab = aws.s3.BucketPublicAccessBlock(
            f"{name}-artifacts-pab",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-artifacts-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(
                lambda arn: iam.to_json(
                    ps.bucket_policy(
                        bucket_arn=arn,
                        reader_role_arns=[
                            pipeline_role_arn,
                            build_role_arn,
                            deployer_role_arn,
                            tester_role_arn,
                        ],
                        # The environment deploy roles may read too (issue 6: readable by the
                        # pipeline, build and deploy roles; the key policy lets them decrypt).
                        cross_account_reader_arns=deploy_role_arns,
                        tools_prefix=DEPLOY_SCRIPT_KEY.split("/", 1)[0] + "/",
                    )
                )
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pab]),
        )
        scripts = [
            aws.s3.BucketObjectv2(
                f"{name}-{key_name.rsplit('/', 1)[-1].replace('.', '-')}",
                bucket=bucket.id,
                key=key_name,
                source=pulumi.FileAsset(str(RUNTIME_DIR / file_name)),
                server_side_encryption="aws:kms",
                kms_key_id=key.arn,
                tags=tags,
                opts=child,
            )
            for key_name, file_name in (
                (DEPLOY_SCRIPT_KEY, "deploy.py"),
                (MIGRATE_SCRIPT_KEY, "migrate.py"),
            )
        ]

        # --- source connection ----------------------------------------------------------
        connection_arn: pulumi.Output[str]
        if pcfg.source.connection_arn:
            connection_arn = pulumi.Output.from_input(pcfg.source.connection_arn)
        else:
            connection = aws.codestarconnections.Connection(
                f"{name}-connection",
                name=names.connection,
                provider_type=pcfg.source.provider,
                tags=tags,
                opts=child,
            )
            connection_arn = connection.arn
        # The build's CODEBUILD_CLONE_REF source (full clone) is cloned through the connection
        # under the build project's service role (created by DevSecOpsBuildProject, which
        # grants no connection use: it does not know the connection).
        if pcfg.source.full_clone:
            aws.iam.RolePolicy(
                f"{name}-build-connection-policy",
                role=names.build_role,
                name="source-connection",
                policy=connection_arn.apply(
                    lambda arn: iam.to_json(ps.build_connection_policy(connection_arn=arn))
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.build_dependencies)),
            )

        # --- one KMS key for this component's log groups, usable for exactly those -------
        approval = any(s.approval_before for s in steps)
        log_groups = [f"/aws/codebuild/{p}" for p in [*deployer_projects, test_project]]
        if approval:
            log_groups.append(names.lambda_log_group(names.function("approval-notifier")))
        self._logs_key_arn = _wiring.logs_key(
            f"{name}-logs-key",
            account_id=account,
            region=region,
            log_groups=log_groups,
            description=f"{cfg.app.name}: pipeline step and notifier logs",
            alias=names.kms_alias("pipeline-logs"),
            tags=tags,
            parent=self,
        ).arn

        # --- approval topic + notifier ----------------------------------------------------
        topic_arn: pulumi.Output[str] | None = None
        if approval:
            topic_arn = self._approval(name, cfg, key, tags, child)

        # --- deployer role + projects ----------------------------------------------------
        report_group = aws.codebuild.ReportGroup(
            f"{name}-env-tests",
            name=names.report_group("env-tests"),
            type="TEST",
            export_config={"type": "NO_EXPORT"},
            delete_reports=True,
            tags=tags,
            opts=child,
        )
        deployer_role = _wiring.same_account_service_role(
            f"{name}-deployer-role",
            name=deployer_role_name,
            service="codebuild.amazonaws.com",
            account_id=account,
            description=f"{cfg.app.name}: deploy/migrate CodeBuild projects",
            tags=tags,
            parent=self,
        )
        deployer_policy = aws.iam.RolePolicy(
            f"{name}-deployer-policy",
            role=deployer_role.id,
            policy=pulumi.Output.all(bucket.arn, key.arn).apply(
                lambda v: iam.to_json(
                    ps.deployer_role_policy(
                        region=region,
                        account_id=account,
                        projects=deployer_projects,
                        bucket_arn=v[0],
                        key_arn=v[1],
                        deploy_role_arns=deploy_role_arns,
                    )
                )
            ),
            opts=child,
        )
        # The test project runs code from the commit: its own role, no deploy rights.
        tester_role = _wiring.same_account_service_role(
            f"{name}-tester-role",
            name=tester_role_name,
            service="codebuild.amazonaws.com",
            account_id=account,
            description=f"{cfg.app.name}: environment test CodeBuild project (no deploy rights)",
            tags=tags,
            parent=self,
        )
        tester_policy = aws.iam.RolePolicy(
            f"{name}-tester-policy",
            role=tester_role.id,
            policy=pulumi.Output.all(connection_arn, bucket.arn, key.arn, report_group.arn).apply(
                lambda v: iam.to_json(
                    ps.tester_role_policy(
                        region=region,
                        account_id=account,
                        project=test_project,
                        connection_arn=v[0],
                        bucket_arn=v[1],
                        key_arn=v[2],
                        report_group_arn=v[3],
                    )
                )
            ),
            opts=child,
        )
        # Environments in the tooling account: deploy permissions, one managed policy each.
        deployer_permissions: list[pulumi.Resource] = [deployer_policy]
        for env_policy in env_policies:
            managed = aws.iam.Policy(
                f"{name}-deployer-{env_policy.environment}-policy",
                name=env_policy.name,
                description=(
                    f"{cfg.app.name}: deploy/migrate in {env_policy.environment} "
                    "(tooling account: no deploy role)"
                ),
                policy=iam.to_json(env_policy.document),
                tags=tags,
                opts=child,
            )
            deployer_permissions.append(
                aws.iam.RolePolicyAttachment(
                    f"{name}-deployer-{env_policy.environment}-attachment",
                    role=deployer_role.name,
                    policy_arn=managed.arn,
                    opts=child,
                )
            )
        step_timeout = cfg.build.timeout_minutes * 2
        specs = {
            deploy_project: pulumi.Output.from_input(
                ps.deploy_buildspec(
                    bucket=bucket_name,
                    script_key=DEPLOY_SCRIPT_KEY,
                    build_timeout_minutes=step_timeout,
                )
            ),
            test_project: report_group.arn.apply(
                lambda arn: ps.test_buildspec(report_group_arn=arn)
            ),
        }
        if migrate_project in deployer_projects:
            specs[migrate_project] = pulumi.Output.from_input(
                ps.migrate_buildspec(
                    bucket=bucket_name,
                    script_key=MIGRATE_SCRIPT_KEY,
                    deploy_script_key=DEPLOY_SCRIPT_KEY,  # migrate.py imports deploy.py
                )
            )
        projects: list[pulumi.Resource] = []
        for project_name, buildspec in specs.items():
            tester = project_name == test_project
            role_of = tester_role if tester else deployer_role
            permissions = [tester_policy] if tester else deployer_permissions
            log_group = _wiring.log_group(
                f"{name}-{project_name}-logs",
                name=f"/aws/codebuild/{project_name}",
                retention_in_days=cfg.build.log_retention_days,
                kms_key_arn=self._logs_key_arn,
                tags=tags,
                parent=self,
            )
            projects.append(
                aws.codebuild.Project(
                    f"{name}-{project_name}",
                    name=project_name,
                    description=f"{cfg.app.name}: pipeline step ({project_name})",
                    service_role=role_of.arn,
                    encryption_key=key.arn,
                    source={"type": "CODEPIPELINE", "buildspec": buildspec},
                    artifacts={"type": "CODEPIPELINE"},
                    environment={
                        "compute_type": "BUILD_GENERAL1_SMALL",
                        "image": CODEBUILD_IMAGE,
                        "type": "LINUX_CONTAINER",
                        "image_pull_credentials_type": "CODEBUILD",
                    },
                    logs_config={
                        "cloudwatch_logs": {"status": "ENABLED", "group_name": log_group.name}
                    },
                    build_timeout=step_timeout,
                    tags=tags,
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[*permissions, log_group, *scripts]
                    ),
                )
            )

        # --- pipeline role + pipeline -----------------------------------------------------
        pipeline_role = _wiring.same_account_service_role(
            f"{name}-pipeline-role",
            name=pipeline_role_name,
            service="codepipeline.amazonaws.com",
            account_id=account,
            description=f"{cfg.app.name}: CodePipeline service role",
            tags=tags,
            parent=self,
        )
        pipeline_policy = aws.iam.RolePolicy(
            f"{name}-pipeline-policy",
            role=pipeline_role.id,
            policy=pulumi.Output.all(
                connection_arn, bucket.arn, key.arn, topic_arn if topic_arn is not None else ""
            ).apply(
                lambda v: iam.to_json(
                    ps.pipeline_role_policy(
                        region=region,
                        account_id=account,
                        build_project=build_project,
                        build_batch=batch,
                        deployer_projects=[*deployer_projects, test_project],
                        connection_arn=v[0],
                        bucket_arn=v[1],
                        key_arn=v[2],
                        topic_arn=v[3] or None,
                    )
                )
            ),
            opts=child,
        )
        layout = ps.layout(
            ps.LayoutInput(
                service=cfg.app.name,
                region=region,
                repository=pcfg.source.repository,
                branch=pcfg.source.branch,
                full_clone=pcfg.source.full_clone,
                connection_arn=connection_arn,
                build_project=build_project,
                build_batch=batch,
                deploy_project=deploy_project,
                migrate_project=migrate_project,
                test_project=test_project,
                environments=steps,
                approval_topic_arn=topic_arn,
                approval_timeout_minutes=pcfg.approval.timeout_minutes,
            )
        )
        pipeline = aws.codepipeline.Pipeline(
            f"{name}-pipeline",
            name=names.pipeline,
            pipeline_type="V2",
            execution_mode="QUEUED",
            role_arn=pipeline_role.arn,
            artifact_stores=[
                {
                    "location": bucket.bucket,
                    "type": "S3",
                    "encryption_key": {"id": key.arn, "type": "KMS"},
                }
            ],
            stages=[_stage_args(s) for s in layout],
            triggers=[
                {
                    "provider_type": "CodeStarSourceConnection",
                    "git_configuration": {
                        "source_action_name": ps.SOURCE_ACTION,
                        "pushes": [{"branches": {"includes": [pcfg.source.branch]}}],
                    },
                }
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[pipeline_policy, *projects]),
        )

        # --- failure notifications --------------------------------------------------------
        failure_topic = aws.sns.Topic(
            f"{name}-failures",
            name=names.topic("pipeline-failures"),
            kms_master_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        failure_topic_policy = aws.sns.TopicPolicy(
            f"{name}-failures-policy",
            arn=failure_topic.arn,
            policy=failure_topic.arn.apply(
                lambda arn: iam.to_json(
                    {
                        "Version": iam.VERSION,
                        "Statement": [
                            {
                                "Sid": "CodeStarNotificationsPublish",
                                "Effect": "Allow",
                                "Principal": {"Service": "codestar-notifications.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": arn,
                                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                            }
                        ],
                    }
                )
            ),
            opts=child,
        )
        for i, email in enumerate(pcfg.failure_emails):
            aws.sns.TopicSubscription(
                f"{name}-failures-email-{i}",
                topic=failure_topic.arn,
                protocol="email",
                endpoint=email,
                opts=child,
            )
        aws.codestarnotifications.NotificationRule(
            f"{name}-failure-rule",
            name=names.event_rule("pipeline-failed"),
            resource=pipeline.arn,
            detail_type="FULL",
            event_type_ids=["codepipeline-pipeline-pipeline-execution-failed"],
            targets=[{"address": failure_topic.arn, "type": "SNS"}],
            tags=tags,
            # The target is usable only once the topic policy lets codestar-notifications
            # publish and the key policy lets it encrypt for SNS: on a first `up` a rule
            # created before either marks its target unreachable.
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[failure_topic_policy, artifact_key_policy]
            ),
        )

        self.pipeline_arn = pipeline.arn
        self.pipeline_role_arn = deployer_role.arn
        self.register_outputs(
            {"pipeline_arn": self.pipeline_arn, "pipeline_role_arn": self.pipeline_role_arn}
        )

    def _approval(
        self,
        name: str,
        cfg: config_mod.ToolingConfig,
        key: aws.kms.Key,
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        names = cfg.names
        approval = cfg.pipeline.approval
        topic = aws.sns.Topic(
            f"{name}-approval",
            name=names.topic("approval"),
            kms_master_key_id=key.arn,
            tags=tags,
            opts=child,
        )
        secret_arn: pulumi.Output[str]
        if approval.webhook_url is not None:
            secret = aws.secretsmanager.Secret(
                f"{name}-webhook",
                name=f"{names.prefix}/approval-webhook",
                description=f"{cfg.app.name}: approval chat webhook URL",
                kms_key_id=key.arn,
                tags=tags,
                opts=child,
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-webhook-value",
                secret_id=secret.id,
                secret_string=pulumi.Output.secret(approval.webhook_url.get_secret_value()),
                opts=child,
            )
            secret_arn = secret.arn
            secret_key: pulumi.Output[str] | None = key.arn
        else:
            secret_arn = pulumi.Output.from_input(str(approval.webhook_secret_arn))
            secret_key = None
        function_name = names.function("approval-notifier")
        log_group = _wiring.log_group(
            f"{name}-notifier-logs",
            name=names.lambda_log_group(function_name),
            retention_in_days=cfg.build.log_retention_days,
            kms_key_arn=self._logs_key_arn,
            tags=tags,
            parent=self,
        )
        role = _wiring.same_account_service_role(
            f"{name}-notifier-role",
            name=names.role("approval-notifier"),
            service="lambda.amazonaws.com",
            account_id=cfg.account_id,
            tags=tags,
            parent=self,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-notifier-policy",
            role=role.id,
            policy=pulumi.Output.all(log_group.arn, secret_arn, secret_key or "").apply(
                lambda v: iam.to_json(
                    ps.notifier_role_policy(
                        log_group_arn=v[0], secret_arn=v[1], key_arn=v[2] or None
                    )
                )
            ),
            opts=child,
        )
        function = aws.lambda_.Function(
            f"{name}-notifier",
            name=function_name,
            runtime="python3.12",
            handler="approval_notifier.handler",
            role=role.arn,
            code=pulumi.AssetArchive(
                {
                    "approval_notifier.py": pulumi.FileAsset(
                        str(RUNTIME_DIR / "approval_notifier.py")
                    )
                }
            ),
            # More than the notifier's worst-case retry time, so its retries are not cut short:
            # with its defaults 5 attempts x 5 s HTTP timeout + 4 waits of up to 20 s each
            # (Retry-After capped at WEBHOOK_MAX_DELAY_SECONDS) + 5 s final-log margin + the
            # secret read is about 115 s. (The notifier also budgets from the remaining time
            # and logs when it gives up, but a shorter timeout would give up on a 429.)
            timeout=NOTIFIER_TIMEOUT_SECONDS,
            memory_size=128,
            environment={
                "variables": {"FORMAT": approval.format, "WEBHOOK_SECRET_ARN": secret_arn}
            },
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )
        aws.lambda_.Permission(
            f"{name}-notifier-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="sns.amazonaws.com",
            source_arn=topic.arn,
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-notifier-sub",
            topic=topic.arn,
            protocol="lambda",
            endpoint=function.arn,
            opts=child,
        )
        return topic.arn


def _stage_args(stage: ps.Stage) -> aws.codepipeline.PipelineStageArgs:
    return aws.codepipeline.PipelineStageArgs(
        name=stage.name,
        actions=[
            aws.codepipeline.PipelineStageActionArgs(
                name=a.name,
                category=a.category,
                owner=a.owner,
                provider=a.provider,
                version=a.version,
                run_order=a.run_order,
                configuration=a.configuration,
                input_artifacts=list(a.input_artifacts) or None,
                output_artifacts=list(a.output_artifacts) or None,
                namespace=a.namespace,
                timeout_in_minutes=a.timeout_in_minutes,
            )
            for a in stage.actions
        ],
    )


def from_config(
    cfg: config_mod.ToolingConfig,
    *,
    artifact_key: aws.kms.Key,
    tags: dict[str, str],
    build_dependencies: Sequence[pulumi.Resource] = (),
) -> PromotionPipeline:
    return PromotionPipeline(
        "pipeline", PromotionPipelineArgs(cfg, artifact_key, tags, build_dependencies)
    )
