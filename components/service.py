"""``BlueGreenFargateService``: an ASP.NET Core service on ECS Fargate behind an ALB, deployed
blue/green by CodeDeploy (``engine="codedeploy"``) or by ECS itself (``engine="ecs"``).

Built from raw ``aws.*`` resources (awsx only for the VPC), every child parented to the
component and tagged. Everything physical is named by :class:`components.naming.Names`;
documents and specs come from the pure renderers under :mod:`components.render`.

The IaC/deployer boundary (DESIGN.md §4)
    After the first release the deployer owns which task-definition revision runs and where
    traffic points; Pulumi owns everything else. Exactly these ``ignore_changes`` exist, and
    no others (:data:`SERVICE_IGNORE_CHANGES`, :data:`LISTENER_IGNORE_CHANGES`,
    :data:`RULE_IGNORE_CHANGES`):

    * the ECS service: ``taskDefinition``, ``loadBalancers`` and ``desiredCount``
      (autoscaling owns the count);
    * the production (443) and test (8443) listeners: ``defaultActions``;
    * the ECS engine's production and test listener rules: ``actions``.

    The HTTP (80) listener only redirects to 443; no deployer touches it, so Pulumi keeps
    full ownership of it (drift there is a real change worth seeing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from components import _wiring, naming
from components import config as config_mod
from components.render import alarms as alarms_r
from components.render import deployment as deploy_r
from components.render import iam, iam_hooks, iam_service
from components.render import task_definition as td
from components.runtime import admission_hook, smoke_hook

TYPE_TOKEN = "dotnet-delivery:index:BlueGreenFargateService"

#: The only ``ignore_changes`` in the component (engine wire names, as Pulumi expects them).
SERVICE_IGNORE_CHANGES = ["taskDefinition", "loadBalancers", "desiredCount"]
LISTENER_IGNORE_CHANGES = ["defaultActions"]
RULE_IGNORE_CHANGES = ["actions"]

CONTAINER_PORT = td.CONTAINER_PORT
HTTPS_PORT = 443
TEST_PORT = 8443
HEALTH_CHECK_GRACE_SECONDS = 60
SMOKE_HOOK_SOURCE = Path(smoke_hook.__file__)
ADMISSION_HOOK_SOURCE = Path(admission_hook.__file__)
ADMISSION_HOOK_TIMEOUT_SECONDS = 60
ELB_LOG_DELIVERY_PRINCIPAL = "logdelivery.elasticloadbalancing.amazonaws.com"
COLORS = ("blue", "green")

_PREDEFINED_BY_SHAPE = {
    (kind, pct, minutes): name
    for name, (kind, pct, minutes) in deploy_r.PREDEFINED_ECS_CONFIGS.items()
}
_DIGEST_PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


# --------------------------------------------------------------------------------------
# Props
# --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class BlueGreenFargateServiceArgs:
    """Typed props of :class:`BlueGreenFargateService` (build with :meth:`from_config`)."""

    names: naming.Names
    account_id: str
    region: str
    production: bool
    image: pulumi.Input[str]
    """The application image by digest (``repo@sha256:…``): the tooling stack's imageRef."""
    service: config_mod.ServiceConfig
    network: config_mod.NetworkConfig
    load_balancer: config_mod.LoadBalancerConfig
    deployment: config_mod.DeploymentConfig
    alarms: config_mod.AlarmsConfig
    tags: Mapping[str, str] = field(default_factory=dict)
    repository_arn: pulumi.Input[str] | None = None
    """The ECR repository the execution role may pull from (default: from the image)."""

    @property
    def engine(self) -> Literal["codedeploy", "ecs"]:
        return self.deployment.engine

    @property
    def environment(self) -> str:
        return self.names.environment

    @classmethod
    def from_config(
        cls,
        cfg: config_mod.EnvironmentConfig,
        *,
        image: pulumi.Input[str],
        tags: Mapping[str, str],
        repository_arn: pulumi.Input[str] | None = None,
    ) -> BlueGreenFargateServiceArgs:
        return cls(
            names=cfg.names,
            account_id=cfg.account_id,
            region=cfg.region,
            production=cfg.is_production,
            image=image,
            service=cfg.service,
            network=cfg.network,
            load_balancer=cfg.load_balancer,
            deployment=cfg.deployment,
            alarms=cfg.alarms,
            tags=dict(tags),
            repository_arn=repository_arn,
        )


# --------------------------------------------------------------------------------------
# Pure helpers (tested directly)
# --------------------------------------------------------------------------------------
_ASPNETCORE_BY_ENV = {"dev": "Development", "stage": "Staging", "prod": "Production"}


def aspnetcore_environment(args: BlueGreenFargateServiceArgs) -> str:
    if args.service.aspnetcore_environment:
        return args.service.aspnetcore_environment
    if args.production:
        return "Production"
    return _ASPNETCORE_BY_ENV.get(args.environment, "Development")


def task_spec(args: BlueGreenFargateServiceArgs, image: str) -> td.TaskDefinitionSpec:
    """The task-definition spec for ``image`` (validated by the renderer)."""
    svc = args.service
    health = (
        td.HealthCheck(command=tuple(svc.health_check_command))
        if svc.health_check_command
        else None
    )
    adot = None
    if svc.adot.enabled and svc.adot.image:
        # config.py guarantees a digest-pinned image when the sidecar is enabled.
        adot = td.AdotSidecar(image=svc.adot.image)
    return td.TaskDefinitionSpec(
        service_name=args.names.container,
        environment_name=args.environment,
        image=image,
        cpu=svc.cpu,
        memory=svc.memory,
        cpu_architecture=svc.cpu_architecture,
        aspnetcore_environment=aspnetcore_environment(args),
        account_id=args.account_id,
        region=args.region,
        log_group_name=args.names.log_group,
        health_check=health,
        environment=dict(svc.environment_variables),
        secrets=dict(svc.secrets),
        stop_timeout_seconds=svc.stop_timeout_seconds,
        adot=adot,
    )


def alarm_thresholds(cfg: config_mod.AlarmsConfig) -> alarms_r.AlarmThresholds:
    return alarms_r.AlarmThresholds(
        period_seconds=cfg.period_seconds,
        evaluation_periods=cfg.evaluation_periods,
        datapoints_to_alarm=cfg.datapoints_to_alarm,
        target_5xx_count=cfg.target_5xx_threshold,
        elb_5xx_count=cfg.target_5xx_threshold,
        p99_latency_seconds=cfg.latency_p99_seconds,
        p95_latency_seconds=cfg.latency_p95_seconds,
    )


def codedeploy_choice(
    cfg: config_mod.DeploymentConfig, *, name_prefix: str
) -> deploy_r.CodeDeployConfig:
    """The CodeDeploy config for ``cfg``: predefined when one matches, else custom."""
    if cfg.predefined_config:
        return deploy_r.codedeploy_config(cfg.predefined_config)
    if cfg.strategy == "allAtOnce":
        return deploy_r.codedeploy_config("AllAtOnce")
    kind: Literal["TimeBasedCanary", "TimeBasedLinear"]
    if cfg.strategy == "canary":
        kind, pct, minutes = "TimeBasedCanary", cfg.canary_percent, cfg.canary_minutes
    else:
        kind, pct, minutes = "TimeBasedLinear", cfg.linear_percent, cfg.linear_minutes
    predefined = _PREDEFINED_BY_SHAPE.get((kind, pct, minutes))
    if predefined:
        return deploy_r.codedeploy_config(predefined)
    routing = deploy_r.CustomTrafficRouting(type=kind, percentage=pct, interval_minutes=minutes)
    return deploy_r.codedeploy_config(routing, name_prefix=name_prefix)


def ecs_settings(cfg: config_mod.DeploymentConfig) -> deploy_r.EcsDeploymentSettings:
    if cfg.strategy == "canary":
        return deploy_r.EcsDeploymentSettings(
            strategy="CANARY",
            bake_time_minutes=cfg.bake_time_minutes,
            canary_percent=float(cfg.canary_percent),
            canary_bake_time_minutes=cfg.canary_minutes,
        )
    if cfg.strategy == "linear":
        return deploy_r.EcsDeploymentSettings(
            strategy="LINEAR",
            bake_time_minutes=cfg.bake_time_minutes,
            linear_step_percent=float(cfg.linear_percent),
            linear_step_bake_time_minutes=cfg.linear_minutes,
        )
    return deploy_r.EcsDeploymentSettings(
        strategy="BLUE_GREEN", bake_time_minutes=cfg.bake_time_minutes
    )


#: Regions available before August 2022, where ALB access-log delivery writes as the
#: Region's Elastic Load Balancing account (AWS docs, "Enable access logs for your Application
#: Load Balancer", step 2: the ``logdelivery.elasticloadbalancing.amazonaws.com`` service
#: principal is documented only for Regions available as of August 2022 or later). The
#: account's ARN comes from ``aws.elb.get_service_account_output`` (the provider's table),
#: which has no entry for the newer Regions; those use the service principal.
ELB_LEGACY_LOG_REGIONS = frozenset(
    {
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "af-south-1",
        "ap-east-1",
        "ap-south-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ca-central-1",
        "eu-central-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-south-1",
        "eu-north-1",
        "me-south-1",
        "sa-east-1",
        "us-gov-west-1",
        "us-gov-east-1",
        "cn-north-1",
        "cn-northwest-1",
    }
)


def uses_elb_account_principal(region: str) -> bool:
    """True when ALB access logs in ``region`` are delivered by the Region's ELB account
    (Regions available before August 2022), False when by the log-delivery service
    principal."""
    return region in ELB_LEGACY_LOG_REGIONS


def access_logs_bucket_policy(
    *,
    bucket: str,
    account_id: str,
    elb_account_arn: str | None = None,
    partition: str = "aws",
) -> dict:
    """ALB access-log delivery and TLS-only access.

    ``elb_account_arn`` (the Region's Elastic Load Balancing account, for Regions available
    before August 2022) is granted when given; otherwise the
    ``logdelivery.elasticloadbalancing`` service principal AWS documents for the newer
    Regions. Only one of them: AWS documents each form for its own set of Regions."""
    arn = f"arn:{partition}:s3:::{bucket}"
    principal: dict[str, str] = (
        {"AWS": elb_account_arn} if elb_account_arn else {"Service": ELB_LOG_DELIVERY_PRINCIPAL}
    )
    return {
        "Version": iam.VERSION,
        "Statement": [
            {
                "Sid": "ElbLogDelivery",
                "Effect": "Allow",
                "Principal": principal,
                "Action": "s3:PutObject",
                "Resource": f"{arn}/AWSLogs/{account_id}/*",
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ],
    }


def lambda_vpc_policy() -> dict[str, Any]:
    """The ENI permissions a VPC-attached Lambda's execution role needs."""
    return iam.policy_document(
        [
            iam.Statement(
                sid="LambdaVpcNetworkInterfaces",
                actions=[
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
                star_resource_reason=(
                    "Lambda creates the ENIs before they exist; ec2:Describe* has no "
                    "resource-level permission (as AWSLambdaVPCAccessExecutionRole)"
                ),
            )
        ]
    )


def expected_nat_gateways(args: BlueGreenFargateServiceArgs) -> int:
    """How many NAT gateways the stack's awsx VPC has (one, or one per AZ)."""
    if nat_gateway_strategy(args) == "OnePerAz":
        return args.network.availability_zones
    return 1


def nth_nat_gateway(ids: Sequence[str], index: int, expected: int) -> str:
    """The ``index``-th NAT gateway id in sorted order (stable across look-ups); refuses a
    VPC whose available NAT gateways are not the ``expected`` number."""
    ordered = sorted(ids)
    if len(ordered) != expected:
        raise ValueError(
            f"expected {expected} available NAT gateway(s) in the VPC, found {len(ordered)} "
            f"({', '.join(ordered) or 'none'}); the test listener must admit each one's IP"
        )
    return ordered[index]


def request_scaling_metrics(
    *,
    load_balancer: str,
    target_groups: Sequence[str],
    cluster_name: str,
    service_name: str,
) -> list[dict[str, Any]]:
    """Target-tracking metric math (Application Auto Scaling, "target tracking with metric
    math"): the ALB requests of every target group (Sum per minute; a group without traffic
    counts 0) divided by the service's running tasks (Container Insights). One series returns
    data, as target tracking requires. Argument-dict form of
    ``customized_metric_specification.metrics``."""

    def stat(query_id: str, namespace: str, metric: str, dims: dict[str, str], how: str) -> dict:
        return {
            "id": query_id,
            "return_data": False,
            "metric_stat": {
                "stat": how,
                "metric": {
                    "namespace": namespace,
                    "metric_name": metric,
                    "dimensions": [{"name": k, "value": v} for k, v in dims.items()],
                },
            },
        }

    queries = [
        stat(
            f"requests{i}",
            "AWS/ApplicationELB",
            "RequestCount",
            {"LoadBalancer": load_balancer, "TargetGroup": tg},
            "Sum",
        )
        for i, tg in enumerate(target_groups)
    ]
    queries.append(
        stat(
            "tasks",
            "ECS/ContainerInsights",
            "RunningTaskCount",
            {"ClusterName": cluster_name, "ServiceName": service_name},
            "Average",
        )
    )
    total = " + ".join(f"FILL(requests{i}, 0)" for i in range(len(target_groups)))
    queries.append(
        {
            "id": "perTask",
            "label": "ALB requests per running task (all target groups)",
            "expression": f"({total}) / tasks",
            "return_data": True,
        }
    )
    return queries


def rule_suffix(cidr: str) -> str:
    """A stable resource-name part for a CIDR (``10.0.0.0/8`` → ``10-0-0-0-8``): rules are
    named by what they admit, so reordering a CIDR list changes nothing."""
    return re.sub(r"[^0-9A-Za-z]+", "-", cidr).strip("-").lower()


def nat_gateway_strategy(args: BlueGreenFargateServiceArgs) -> str:
    """awsx's NAT strategy: ``OnePerAz`` (resilient) or ``Single`` (cheap); the default is
    one per AZ in production and a single gateway elsewhere."""
    nat = args.network.nat_gateways or ("onePerAz" if args.production else "single")
    return "OnePerAz" if nat == "onePerAz" else "Single"


def _substitute(value: Any, replacements: Mapping[str, pulumi.Output[str]]) -> Any:
    """Replace placeholder strings (anywhere in ``value``) by Outputs."""
    if isinstance(value, str) and value in replacements:
        return replacements[value]
    if isinstance(value, Mapping):
        return {k: _substitute(v, replacements) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_substitute(v, replacements) for v in value]
    return value


# --------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------
class BlueGreenFargateService(pulumi.ComponentResource):
    """ECS Fargate service behind an ALB with a blue/green engine (see module docstring)."""

    alb_dns_name: pulumi.Output[str]
    https_listener_arn: pulumi.Output[str]
    test_listener_arn: pulumi.Output[str]
    http_listener_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    task_family: pulumi.Output[str]
    codedeploy_application: pulumi.Output[str] | None
    codedeploy_group: pulumi.Output[str] | None
    log_group_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: BlueGreenFargateServiceArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._args = args
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        n = args.names
        tags = dict(args.tags)
        self._tags = tags

        self._network()
        self._load_balancer()
        self._logs()
        self._task_definition()
        self._cluster_and_alarms()
        self._smoke_hook()
        if args.engine == "codedeploy":
            self._codedeploy_engine()
        else:
            self._ecs_engine()
        self._autoscaling()

        self.cluster_name = self.cluster.name
        self.service_name = self.service.name
        self.task_family = self.task_definition.family
        self.log_group_name = self.log_group.name
        self.alb_dns_name = self.alb.dns_name
        outputs: dict[str, Any] = {
            "alb_dns_name": self.alb_dns_name,
            "https_listener_arn": self.https_listener_arn,
            "test_listener_arn": self.test_listener_arn,
            "http_listener_arn": self.http_listener_arn,
            "cluster_name": self.cluster_name,
            "service_name": self.service_name,
            "task_family": self.task_family,
            "log_group_name": self.log_group_name,
            "execution_role_arn": self.execution_role_arn,
            "task_role_arn": self.task_role_arn,
            "codedeploy_application": self.codedeploy_application,
            "codedeploy_group": self.codedeploy_group,
            "engine": args.engine,
            "hook_function_name": n.hook_function,
        }
        self.register_outputs(outputs)

    # ---- helpers ------------------------------------------------------------------------
    def _opts(self, **kwargs: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _r(self, suffix: str) -> str:
        return f"{self._name}-{suffix}"

    # ---- network ------------------------------------------------------------------------
    def _network(self) -> None:
        a = self._args
        net = a.network
        self._vpc: awsx.ec2.Vpc | None = None
        if net.vpc_id:
            self.vpc_id: pulumi.Input[str] = net.vpc_id
            self.private_subnet_ids: pulumi.Input[Sequence[str]] = list(net.private_subnet_ids)
            self.public_subnet_ids: pulumi.Input[Sequence[str]] = list(net.public_subnet_ids)
        else:
            strategy = (
                awsx.ec2.NatGatewayStrategy.ONE_PER_AZ
                if nat_gateway_strategy(a) == "OnePerAz"
                else awsx.ec2.NatGatewayStrategy.SINGLE
            )
            vpc = awsx.ec2.Vpc(
                self._r("vpc"),
                cidr_block=net.cidr_block,
                number_of_availability_zones=net.availability_zones,
                nat_gateways=awsx.ec2.NatGatewayConfigurationArgs(strategy=strategy),
                enable_dns_hostnames=True,
                enable_dns_support=True,
                tags=self._tags,
                opts=self._opts(),
            )
            self.vpc_id = vpc.vpc_id
            self.private_subnet_ids = vpc.private_subnet_ids
            self.public_subnet_ids = vpc.public_subnet_ids
            self._vpc = vpc
        lb = a.load_balancer
        n = a.names
        # Every rule of every group is its own rule resource, none inline: the provider
        # documents that mixing inline rules with SecurityGroupIngressRule/EgressRule on one
        # group makes them overwrite each other (perpetual diffs after every release).
        self.alb_sg = aws.ec2.SecurityGroup(
            self._r("alb-sg"),
            name=n.security_group("alb"),
            description="ALB: 443/80 from clients, 8443 test listener from test CIDRs",
            vpc_id=self.vpc_id,
            tags=self._tags,
            opts=self._opts(),
        )
        self.task_sg = aws.ec2.SecurityGroup(
            self._r("task-sg"),
            name=n.security_group("tasks"),
            description="Fargate tasks: 8080 from the ALB only; HTTPS out (ECR, logs, secrets)",
            vpc_id=self.vpc_id,
            tags=self._tags,
            opts=self._opts(),
        )
        self.hook_sg = aws.ec2.SecurityGroup(
            self._r("hook-sg"),
            name=n.security_group("smoke-hook"),
            description="Smoke-test hook Lambda: HTTPS out (test listener, CodeDeploy API)",
            vpc_id=self.vpc_id,
            tags=self._tags,
            opts=self._opts(),
        )
        for port, label, desc in (
            (HTTPS_PORT, "https", "HTTPS"),
            (80, "http", "HTTP (redirects to HTTPS)"),
        ):
            for cidr in lb.ingress_cidrs:
                self._sg_rule(
                    "ingress",
                    f"alb-{label}-{rule_suffix(cidr)}",
                    self.alb_sg,
                    f"{desc} from allowed clients",
                    port,
                    cidr=cidr,
                )
        for cidr in lb.test_listener_cidrs:
            self._sg_rule(
                "ingress",
                f"alb-test-{rule_suffix(cidr)}",
                self.alb_sg,
                "Test listener from the configured test CIDRs only",
                TEST_PORT,
                cidr=cidr,
            )
        self._sg_rule(
            "ingress",
            "hook-to-test-listener",
            self.alb_sg,
            "Smoke-test hook to the test listener",
            TEST_PORT,
            source=self.hook_sg,
        )
        self._nat_to_test_listener()
        self._sg_rule(
            "egress",
            "alb-to-tasks",
            self.alb_sg,
            "ALB to the tasks' app port",
            CONTAINER_PORT,
            source=self.task_sg,
        )
        self._sg_rule(
            "ingress",
            "tasks-from-alb",
            self.task_sg,
            "App port from the load balancer",
            CONTAINER_PORT,
            source=self.alb_sg,
        )
        self._sg_rule(
            "egress",
            "tasks-https",
            self.task_sg,
            "HTTPS to AWS APIs and dependencies",
            443,
            cidr="0.0.0.0/0",
        )
        for rule in a.service.egress:
            self._sg_rule(
                "egress",
                f"tasks-{rule.protocol}-{rule.port}-{rule_suffix(rule.cidr)}",
                self.task_sg,
                rule.description,
                rule.port,
                cidr=rule.cidr,
                protocol=rule.protocol,
            )
        for port in (443, TEST_PORT):
            self._sg_rule(
                "egress",
                f"hook-out-{port}",
                self.hook_sg,
                "Test listener and AWS APIs",
                port,
                cidr="0.0.0.0/0",
            )

    def _nat_to_test_listener(self) -> None:
        """Admit the VPC's NAT gateways' public IPs (/32) on the test listener.

        The smoke-test hook runs in the private subnets and calls the internet-facing ALB's
        public DNS name, so its traffic reaches the ALB from the NAT gateways' Elastic IPs,
        not from the hook's security group. An internal ALB sees the hook's own address
        (the hook-SG rule covers it). For an existing VPC the NAT EIPs are the user's to
        list in ``loadBalancer.testListenerCidrs`` (see that field)."""
        a = self._args
        if self._vpc is None or a.load_balancer.internal:
            return
        count = expected_nat_gateways(a)
        # The awsx VPC's outputs resolve only once the component (NAT gateways included) is
        # created; depends_on makes the look-up wait for it explicitly.
        invoke_opts = pulumi.InvokeOutputOptions(parent=self, depends_on=[self._vpc])
        nat_ids = aws.ec2.get_nat_gateways_output(
            vpc_id=self.vpc_id,
            filters=[aws.ec2.GetNatGatewaysFilterArgs(name="state", values=["available"])],
            opts=invoke_opts,
        ).ids
        for index in range(count):
            nat_id = nat_ids.apply(functools.partial(nth_nat_gateway, index=index, expected=count))
            public_ip = aws.ec2.get_nat_gateway_output(id=nat_id, opts=invoke_opts).public_ip
            self._sg_rule(
                "ingress",
                f"alb-test-nat-{index}",
                self.alb_sg,
                "Test listener from the VPC's NAT gateway (the smoke-test hook's egress)",
                TEST_PORT,
                cidr=public_ip.apply(lambda ip: f"{ip}/32"),
            )

    def _sg_rule(
        self,
        direction: Literal["ingress", "egress"],
        suffix: str,
        group: aws.ec2.SecurityGroup,
        description: str,
        port: int,
        *,
        cidr: pulumi.Input[str] | None = None,
        source: aws.ec2.SecurityGroup | None = None,
        protocol: str = "tcp",
    ) -> aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule:
        """One security-group rule resource (``<name>-<suffix>``): ``port`` from/to ``cidr``
        (IPv4 or IPv6) or the group ``source``."""
        kwargs: dict[str, Any] = {
            "security_group_id": group.id,
            "description": description,
            "ip_protocol": protocol,
            "from_port": port,
            "to_port": port,
            "tags": self._tags,
            "opts": self._opts(),
        }
        if source is not None:
            kwargs["referenced_security_group_id"] = source.id
        elif isinstance(cidr, str) and ":" in cidr:
            kwargs["cidr_ipv6"] = cidr
        else:
            kwargs["cidr_ipv4"] = cidr
        if direction == "ingress":
            return aws.vpc.SecurityGroupIngressRule(self._r(suffix), **kwargs)
        return aws.vpc.SecurityGroupEgressRule(self._r(suffix), **kwargs)

    # ---- load balancer --------------------------------------------------------------------
    def _access_logs_policy(self, bucket_name: str) -> pulumi.Input[str]:
        """The access-log bucket policy for the stack's Region (see
        :data:`ELB_LEGACY_LOG_REGIONS`)."""
        a = self._args
        if not uses_elb_account_principal(a.region):
            return iam.to_json(
                access_logs_bucket_policy(bucket=bucket_name, account_id=a.account_id)
            )
        elb_account = aws.elb.get_service_account_output(
            region=a.region, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        return elb_account.arn.apply(
            lambda elb_arn: iam.to_json(
                access_logs_bucket_policy(
                    bucket=bucket_name, account_id=a.account_id, elb_account_arn=elb_arn
                )
            )
        )

    def _load_balancer(self) -> None:
        a = self._args
        lb = a.load_balancer
        n = a.names
        bucket_name = n.access_logs_bucket(a.account_id)
        bucket = aws.s3.Bucket(
            self._r("alb-logs"), bucket=bucket_name, tags=self._tags, opts=self._opts()
        )
        aws.s3.BucketPublicAccessBlock(
            self._r("alb-logs-public-access"),
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=self._opts(),
        )
        aws.s3.BucketOwnershipControls(
            self._r("alb-logs-ownership"),
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=self._opts(),
        )
        # ALB access logs support SSE-S3 only (not SSE-KMS).
        aws.s3.BucketServerSideEncryptionConfiguration(
            self._r("alb-logs-sse"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=self._opts(),
        )
        aws.s3.BucketLifecycleConfiguration(
            self._r("alb-logs-lifecycle"),
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=lb.access_log_retention_days
                    ),
                )
            ],
            opts=self._opts(),
        )
        policy = aws.s3.BucketPolicy(
            self._r("alb-logs-policy"),
            bucket=bucket.id,
            policy=self._access_logs_policy(bucket_name),
            opts=self._opts(),
        )
        deletion_protection = (
            lb.deletion_protection if lb.deletion_protection is not None else a.production
        )
        self.alb = aws.lb.LoadBalancer(
            self._r("alb"),
            name=n.alb,
            load_balancer_type="application",
            internal=lb.internal,
            security_groups=[self.alb_sg.id],
            subnets=self.private_subnet_ids if lb.internal else self.public_subnet_ids,
            drop_invalid_header_fields=True,
            enable_deletion_protection=deletion_protection,
            idle_timeout=lb.idle_timeout_seconds,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=bucket.id, enabled=True),
            tags=self._tags,
            opts=self._opts(depends_on=[policy]),
        )
        hc = lb.health_check
        self.target_groups: dict[str, aws.lb.TargetGroup] = {}
        for color in COLORS:
            self.target_groups[color] = aws.lb.TargetGroup(
                self._r(f"tg-{color}"),
                name=n.target_group(color),
                port=CONTAINER_PORT,
                protocol="HTTP",
                target_type="ip",
                vpc_id=self.vpc_id,
                deregistration_delay=lb.deregistration_delay_seconds,
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True,
                    path=hc.path,
                    port="traffic-port",
                    protocol="HTTP",
                    matcher=hc.matcher,
                    interval=hc.interval_seconds,
                    timeout=hc.timeout_seconds,
                    healthy_threshold=hc.healthy_threshold,
                    unhealthy_threshold=hc.unhealthy_threshold,
                ),
                tags=self._tags,
                opts=self._opts(),
            )
        blue = self.target_groups["blue"]
        forward_blue = [aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=blue.arn)]
        # Production and test listeners: the deployer owns their default actions.
        https_listeners = {
            label: aws.lb.Listener(
                self._r(label),
                load_balancer_arn=self.alb.arn,
                port=port,
                protocol="HTTPS",
                certificate_arn=lb.certificate_arn,
                ssl_policy=lb.ssl_policy,
                default_actions=forward_blue,
                tags=self._tags,
                opts=self._opts(ignore_changes=list(LISTENER_IGNORE_CHANGES)),
            )
            for label, port in (("https", HTTPS_PORT), ("test", TEST_PORT))
        }
        self.https_listener = https_listeners["https"]
        self.test_listener = https_listeners["test"]
        self.http_listener = aws.lb.Listener(
            self._r("http"),
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        port=str(HTTPS_PORT), protocol="HTTPS", status_code="HTTP_301"
                    ),
                )
            ],
            tags=self._tags,
            opts=self._opts(),
        )
        self.https_listener_arn = self.https_listener.arn
        self.test_listener_arn = self.test_listener.arn
        self.http_listener_arn = self.http_listener.arn

    # ---- logs -------------------------------------------------------------------------------
    def _logs(self) -> None:
        a = self._args
        # One key for the service's log group and its hook Lambdas' log groups: exactly those.
        n = a.names
        hook_groups = [n.lambda_log_group(n.hook_function)]
        if a.deployment.admission_hook and a.deployment.engine == "ecs":
            hook_groups.append(n.lambda_log_group(n.function("admission-hook")))
        logs = _wiring.encrypted_log_group(
            self._r("logs"),
            name=a.names.log_group,
            retention_in_days=a.service.log_retention_days,
            account_id=a.account_id,
            region=a.region,
            key_description=f"{a.names.prefix}: CloudWatch log groups",
            key_alias=a.names.kms_alias("logs"),
            key_scope=[n.log_group, *hook_groups],
            existing_key_arn=a.service.log_kms_key_arn,
            tags=self._tags,
            parent=self,
        )
        self.log_key_arn: pulumi.Input[str] = logs.key_arn
        self.log_group = logs.log_group

    # ---- task definition ---------------------------------------------------------------------
    def _task_definition(self) -> None:
        a = self._args
        n = a.names
        spec = pulumi.Output.from_input(a.image).apply(lambda image: task_spec(a, image))
        task = _wiring.fargate_task(
            self._name,
            family=n.task_family,
            service=a.service,
            spec=spec,
            repository_arn=a.repository_arn,
            execution_role_name=n.execution_role,
            execution_role_description=(
                "ECS agent: pull the image, write logs, read referenced secrets"
            ),
            task_role_name=n.task_role,
            task_role_description="The application's own AWS permissions",
            account_id=a.account_id,
            region=a.region,
            tags=self._tags,
            depends_on=[self.log_group],
            parent=self,
        )
        self.execution_role = task.execution_role
        self.task_role = task.task_role
        self.task_definition = task.task_definition
        if a.service.adot.enabled and a.service.adot.image:
            aws.iam.RolePolicy(
                self._r("task-policy"),
                role=self.task_role.id,
                policy=spec.apply(lambda s: iam.to_json(iam_service.task_role_policy(s) or {})),
                opts=self._opts(),
            )
        self.execution_role_arn = self.execution_role.arn
        self.task_role_arn = self.task_role.arn

    # ---- cluster and alarms -----------------------------------------------------------------
    def _cluster_and_alarms(self) -> None:
        a = self._args
        n = a.names
        self.cluster = aws.ecs.Cluster(
            self._r("cluster"),
            name=n.cluster,
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=self._tags,
            opts=self._opts(),
        )
        thresholds = alarm_thresholds(a.alarms)
        placeholders = {
            "lb": "app/placeholder-alb/0000000000000000",
            "blue": "targetgroup/placeholder-blue/0000000000000000",
            "green": "targetgroup/placeholder-green/0000000000000000",
        }
        specs = alarms_r.alarm_specs(
            thresholds,
            alarm_name=n.alarm,
            load_balancer=placeholders["lb"],
            target_groups={"blue": placeholders["blue"], "green": placeholders["green"]},
            cluster_name=n.cluster,
            service_name=n.ecs_service,
        )
        replacements = {
            placeholders["lb"]: self.alb.arn_suffix,
            placeholders["blue"]: self.target_groups["blue"].arn_suffix,
            placeholders["green"]: self.target_groups["green"].arn_suffix,
        }
        self.alarms: list[aws.cloudwatch.MetricAlarm] = []
        for spec in specs:
            kwargs = _substitute(spec.to_args(), replacements)
            purpose = spec.name.removeprefix(f"{n.prefix}-")
            self.alarms.append(
                aws.cloudwatch.MetricAlarm(
                    self._r(f"alarm-{purpose}"), tags=self._tags, opts=self._opts(), **kwargs
                )
            )
        self.alarm_names = [s.name for s in specs]

    # ---- hook Lambdas -------------------------------------------------------------------------
    def _hook_lambda(
        self,
        resource_name: str,
        *,
        resource_prefix: str,
        function_name: str,
        role_name: str,
        role_description: str,
        policy: Mapping[str, Any],
        extra_policies: Mapping[str, Mapping[str, Any]] | None = None,
        description: str,
        source: Path,
        timeout: int,
        **function_args: Any,
    ) -> aws.lambda_.Function:
        """One hook Lambda (arm64, Python 3.12, the self-contained handler module ``source``)
        with its log group (``<resource_prefix>-logs``, the service's log key), its role
        (``-role``) and inline policies (``-policy``, then ``-<suffix>`` per extra policy).
        The function waits for the log group and the policies."""
        log_group = _wiring.log_group(
            self._r(f"{resource_prefix}-logs"),
            name=self._args.names.lambda_log_group(function_name),
            retention_in_days=self._args.service.log_retention_days,
            kms_key_arn=self.log_key_arn,
            tags=self._tags,
            parent=self,
        )
        role = aws.iam.Role(
            self._r(f"{resource_prefix}-role"),
            name=role_name,
            description=role_description,
            assume_role_policy=iam.to_json(iam_hooks.smoke_hook_trust_policy()),
            tags=self._tags,
            opts=self._opts(),
        )
        policies = [
            aws.iam.RolePolicy(
                self._r(f"{resource_prefix}-{suffix}"),
                role=role.id,
                policy=iam.to_json(document),
                opts=self._opts(),
            )
            for suffix, document in {"policy": policy, **(extra_policies or {})}.items()
        ]
        return aws.lambda_.Function(
            self._r(resource_name),
            name=function_name,
            description=description,
            runtime="python3.12",
            architectures=["arm64"],
            handler=f"{source.stem}.handler",
            code=pulumi.AssetArchive({source.name: pulumi.FileAsset(str(source))}),
            role=role.arn,
            timeout=timeout,
            memory_size=256,
            tags=self._tags,
            opts=self._opts(depends_on=[log_group, *policies]),
            **function_args,
        )

    def _smoke_hook(self) -> None:
        a = self._args
        n = a.names
        d = a.deployment
        function_name = n.hook_function
        codedeploy = a.engine == "codedeploy"
        budget = float(d.hook_timeout_seconds)
        smoke_cfg = smoke_hook.SmokeConfig(
            base_url=f"https://test.invalid:{TEST_PORT}",
            paths=tuple(d.smoke_paths),
            time_budget=budget,
        )
        self.hook_function = self._hook_lambda(
            "smoke-hook",
            resource_prefix="hook",
            function_name=function_name,
            role_name=n.hook_role,
            role_description="Smoke-test hook Lambda",
            policy=iam_hooks.smoke_hook_policy(
                partition="aws",
                region=a.region,
                account_id=a.account_id,
                log_group_name=n.lambda_log_group(function_name),
                codedeploy_application=n.codedeploy_application if codedeploy else None,
                codedeploy_group=n.codedeploy_group if codedeploy else None,
            ),
            extra_policies={"vpc-policy": lambda_vpc_policy()},
            description="Smoke-tests the test listener during blue/green deployments",
            source=SMOKE_HOOK_SOURCE,
            timeout=smoke_hook.required_lambda_timeout_seconds(smoke_cfg),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "TEST_ENDPOINT": self.alb.dns_name.apply(
                        lambda dns: f"https://{dns}:{TEST_PORT}"
                    ),
                    "SMOKE_PATHS": ",".join(d.smoke_paths),
                    "TIME_BUDGET_SECONDS": str(int(budget)),
                    # The test listener presents the service's certificate, not one for the
                    # ALB's DNS name: with loadBalancer.hostName the hook sends that name as
                    # Host + SNI and verifies the certificate; without it, it cannot verify
                    # (reachable only from the hook and the test CIDRs; status codes only).
                    **(
                        {"HOST_HEADER": a.load_balancer.host_name, "TLS_VERIFY": "true"}
                        if a.load_balancer.host_name
                        else {"TLS_VERIFY": "false"}
                    ),
                }
            ),
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=self.private_subnet_ids, security_group_ids=[self.hook_sg.id]
            ),
        )

    # ---- digest admission hook (engine ecs, PRE_SCALE_UP) ---------------------------------------
    def _admission_hook(self) -> aws.lambda_.Function:
        """The PRE_SCALE_UP Lambda that refuses task definitions with images not pinned by
        digest (:mod:`components.runtime.admission_hook`). It only calls the ECS API, so it
        runs outside the VPC."""
        a = self._args
        n = a.names
        function_name = n.function("admission-hook")
        return self._hook_lambda(
            "admission-hook",
            resource_prefix="admission-hook",
            function_name=function_name,
            role_name=n.role("admission-hook"),
            role_description="Digest admission hook Lambda (ECS PRE_SCALE_UP)",
            policy=iam_hooks.admission_hook_policy(
                partition="aws",
                region=a.region,
                account_id=a.account_id,
                log_group_name=n.lambda_log_group(function_name),
                cluster_name=n.cluster,
                service_name=n.ecs_service,
            ),
            description="Refuses ECS deployments whose images are not pinned by digest",
            source=ADMISSION_HOOK_SOURCE,
            timeout=ADMISSION_HOOK_TIMEOUT_SECONDS,
        )

    # ---- service ---------------------------------------------------------------------------------
    def _service(
        self,
        *,
        controller: str,
        load_balancer: aws.ecs.ServiceLoadBalancerArgs,
        extra: Mapping[str, Any],
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        a = self._args
        self.service = aws.ecs.Service(
            self._r("service"),
            name=a.names.ecs_service,
            cluster=self.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=a.service.desired_count,
            launch_type="FARGATE",
            platform_version="LATEST",
            deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type=controller),
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=self.private_subnet_ids,
                security_groups=[self.task_sg.id],
                assign_public_ip=False,
            ),
            load_balancers=[load_balancer],
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            tags=self._tags,
            opts=self._opts(
                ignore_changes=list(SERVICE_IGNORE_CHANGES),
                depends_on=[self.https_listener, self.test_listener, *depends_on],
            ),
            **extra,
        )

    def _codedeploy_engine(self) -> None:
        a = self._args
        n = a.names
        d = a.deployment
        blue, green = self.target_groups["blue"], self.target_groups["green"]
        self._service(
            controller="CODE_DEPLOY",
            load_balancer=aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=blue.arn,
                container_name=n.container,
                container_port=CONTAINER_PORT,
            ),
            extra={},
        )
        app = aws.codedeploy.Application(
            self._r("codedeploy-app"),
            name=n.codedeploy_application,
            compute_platform="ECS",
            tags=self._tags,
            opts=self._opts(),
        )
        choice = codedeploy_choice(d, name_prefix=n.prefix)
        config_args = choice.deployment_config_args()
        depends: list[pulumi.Resource] = []
        if config_args is not None:
            depends.append(
                aws.codedeploy.DeploymentConfig(
                    self._r("codedeploy-config"), opts=self._opts(), **config_args
                )
            )
        role = aws.iam.Role(
            self._r("codedeploy-role"),
            name=n.codedeploy_role,
            description="CodeDeploy blue/green for ECS",
            assume_role_policy=iam.to_json(
                iam.assume_role_policy(services=["codedeploy.amazonaws.com"])
            ),
            tags=self._tags,
            opts=self._opts(),
        )
        attachment = aws.iam.RolePolicyAttachment(
            self._r("codedeploy-ecs"),
            role=role.name,
            policy_arn="arn:aws:iam::aws:policy/AWSCodeDeployRoleForECS",
            opts=self._opts(),
        )
        invoke = aws.iam.RolePolicy(
            self._r("codedeploy-invoke-hook"),
            role=role.id,
            policy=self.hook_function.arn.apply(
                lambda arn: iam.to_json(iam_hooks.hook_invoke_policy(function_arn=arn))
            ),
            opts=self._opts(),
        )
        group_args = deploy_r.codedeploy_group_args(
            deploy_r.CodeDeployGroupSettings(
                termination_wait_minutes=d.termination_wait_minutes,
                ready_wait_minutes=d.ready_wait_minutes,
            ),
            alarm_names=self.alarm_names[: deploy_r.MAX_CODEDEPLOY_ALARMS],
        )
        group = aws.codedeploy.DeploymentGroup(
            self._r("codedeploy-group"),
            app_name=app.name,
            deployment_group_name=n.codedeploy_group,
            service_role_arn=role.arn,
            deployment_config_name=choice.deployment_config_name,
            ecs_service=aws.codedeploy.DeploymentGroupEcsServiceArgs(
                cluster_name=self.cluster.name, service_name=self.service.name
            ),
            load_balancer_info=aws.codedeploy.DeploymentGroupLoadBalancerInfoArgs(
                target_group_pair_info=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoArgs(
                    prod_traffic_route=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoProdTrafficRouteArgs(
                        listener_arns=[self.https_listener.arn]
                    ),
                    test_traffic_route=aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTestTrafficRouteArgs(
                        listener_arns=[self.test_listener.arn]
                    ),
                    target_groups=[
                        aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTargetGroupArgs(
                            name=blue.name
                        ),
                        aws.codedeploy.DeploymentGroupLoadBalancerInfoTargetGroupPairInfoTargetGroupArgs(
                            name=green.name
                        ),
                    ],
                )
            ),
            tags=self._tags,
            opts=self._opts(depends_on=[attachment, invoke, *self.alarms, *depends]),
            **group_args,
        )
        self.codedeploy_application = app.name
        self.codedeploy_group = group.deployment_group_name

    def _ecs_engine(self) -> None:
        a = self._args
        n = a.names
        d = a.deployment
        admission = self._admission_hook() if d.admission_hook else None
        blue, green = self.target_groups["blue"], self.target_groups["green"]
        rules: dict[str, aws.lb.ListenerRule] = {}
        for label, listener in (("prod", self.https_listener), ("test", self.test_listener)):
            rules[label] = aws.lb.ListenerRule(
                self._r(f"{label}-rule"),
                listener_arn=listener.arn,
                priority=1,
                actions=[
                    aws.lb.ListenerRuleActionArgs(
                        type="forward",
                        forward=aws.lb.ListenerRuleActionForwardArgs(
                            target_groups=[
                                aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                                    arn=blue.arn, weight=100
                                ),
                                aws.lb.ListenerRuleActionForwardTargetGroupArgs(
                                    arn=green.arn, weight=0
                                ),
                            ]
                        ),
                    )
                ],
                conditions=[
                    aws.lb.ListenerRuleConditionArgs(
                        path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=["/*"])
                    )
                ],
                tags=self._tags,
                opts=self._opts(ignore_changes=list(RULE_IGNORE_CHANGES)),
            )
        infra_role = aws.iam.Role(
            self._r("ecs-infra-role"),
            name=n.ecs_infrastructure_role,
            description="ECS blue/green: shift traffic on this service's listeners and rules",
            assume_role_policy=iam.to_json(iam_service.ecs_service_trust_policy()),
            tags=self._tags,
            opts=self._opts(),
        )
        infra_policy = aws.iam.RolePolicy(
            self._r("ecs-infra-policy"),
            role=infra_role.id,
            policy=pulumi.Output.all(
                blue.arn,
                green.arn,
                self.https_listener.arn,
                self.test_listener.arn,
                rules["prod"].arn,
                rules["test"].arn,
            ).apply(
                lambda v: iam.to_json(
                    iam_service.ecs_infrastructure_role_policy(
                        target_group_arns=[v[0], v[1]],
                        listener_arns=[v[2], v[3]],
                        listener_rule_arns=[v[4], v[5]],
                    )
                )
            ),
            opts=self._opts(),
        )
        invoker = aws.iam.Role(
            self._r("hook-invoker-role"),
            name=n.role("hook-invoker"),
            description="ECS invokes the lifecycle-hook Lambdas",
            assume_role_policy=iam.to_json(iam_hooks.hook_invoker_trust_policy()),
            tags=self._tags,
            opts=self._opts(),
        )
        invoke = aws.iam.RolePolicy(
            self._r("hook-invoker-policy"),
            role=invoker.id,
            policy=pulumi.Output.all(
                *[fn.arn for fn in (admission, self.hook_function) if fn is not None]
            ).apply(lambda arns: iam.to_json(iam_service.lifecycle_hook_role_policy(arns))),
            opts=self._opts(),
        )
        settings = ecs_settings(d)
        config = deploy_r.ecs_deployment_configuration(settings)
        # The shape of deploy_r.ecs_lifecycle_hooks (admission first, then the smoke test),
        # built here because the ARNs are still outputs.
        hooks: list[dict[str, Any]] = []
        if admission is not None:
            hooks.append(
                {
                    "hook_target_arn": admission.arn,
                    "role_arn": invoker.arn,
                    "lifecycle_stages": [deploy_r.ADMISSION_STAGE],
                }
            )
        hooks.append(
            {
                "hook_target_arn": self.hook_function.arn,
                "role_arn": invoker.arn,
                "lifecycle_stages": [deploy_r.SMOKE_TEST_STAGE],
            }
        )
        config["lifecycle_hooks"] = hooks
        self._service(
            controller="ECS",
            load_balancer=aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=blue.arn,
                container_name=n.container,
                container_port=CONTAINER_PORT,
                advanced_configuration=aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                    alternate_target_group_arn=green.arn,
                    production_listener_rule=rules["prod"].arn,
                    test_listener_rule=rules["test"].arn,
                    role_arn=infra_role.arn,
                ),
            ),
            extra={
                "deployment_configuration": config,
                "alarms": deploy_r.ecs_service_alarms(self.alarm_names),
            },
            depends_on=[infra_policy, invoke, *rules.values(), *self.alarms],
        )
        self.codedeploy_application = None
        self.codedeploy_group = None

    # ---- autoscaling ----------------------------------------------------------------------
    def _autoscaling(self) -> None:
        a = self._args
        svc = a.service
        target = aws.appautoscaling.Target(
            self._r("scaling-target"),
            min_capacity=svc.min_capacity,
            max_capacity=svc.max_capacity,
            resource_id=pulumi.Output.all(self.cluster.name, self.service.name).apply(
                lambda v: f"service/{v[0]}/{v[1]}"
            ),
            scalable_dimension="ecs:service:DesiredCount",
            service_namespace="ecs",
            tags=self._tags,
            opts=self._opts(),
        )
        tracking = aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs
        cpu = tracking(
            target_value=float(svc.cpu_target_percent),
            scale_in_cooldown=300,
            scale_out_cooldown=60,
            predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                predefined_metric_type="ECSServiceAverageCPUUtilization"
            ),
        )
        # Requests per task over BOTH target groups (metric math): after a blue/green swap
        # production traffic is on green, so a per-target-group metric would read 0 and scale
        # the service in.
        metrics = pulumi.Output.all(
            self.alb.arn_suffix,
            self.target_groups["blue"].arn_suffix,
            self.target_groups["green"].arn_suffix,
            self.cluster.name,
            self.service.name,
        ).apply(
            lambda v: request_scaling_metrics(
                load_balancer=v[0],
                target_groups=[v[1], v[2]],
                cluster_name=v[3],
                service_name=v[4],
            )
        )
        requests = tracking(
            target_value=float(svc.requests_per_target),
            scale_in_cooldown=300,
            scale_out_cooldown=60,
            customized_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationArgs(
                # the argument-dict form (request_scaling_metrics), resolved from outputs
                metrics=cast(Any, metrics)
            ),
        )
        for purpose, configuration in (("cpu", cpu), ("requests", requests)):
            aws.appautoscaling.Policy(
                self._r(f"scale-{purpose}"),
                name=f"{a.names.prefix}-{purpose}",
                policy_type="TargetTrackingScaling",
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                service_namespace=target.service_namespace,
                target_tracking_scaling_policy_configuration=configuration,
                opts=self._opts(),
            )


def service_exports(component: BlueGreenFargateService) -> dict[str, Any]:
    """What an environment stack exports from the service (camelCase stack outputs)."""
    exports: dict[str, Any] = {
        "albDnsName": component.alb_dns_name,
        "httpsListenerArn": component.https_listener_arn,
        "testListenerArn": component.test_listener_arn,
        "httpListenerArn": component.http_listener_arn,
        "clusterName": component.cluster_name,
        "serviceName": component.service_name,
        "taskFamily": component.task_family,
        "logGroupName": component.log_group_name,
        "executionRoleArn": component.execution_role_arn,
        "taskRoleArn": component.task_role_arn,
        # The tasks' security group: what a database's security group admits, and what
        # one-off tasks (the EF migration) run with.
        "taskSecurityGroupId": component.task_sg.id,
    }
    if component.codedeploy_application is not None:
        exports["codedeployApplication"] = component.codedeploy_application
        exports["codedeployGroup"] = component.codedeploy_group
    return exports


__all__ = [
    "BlueGreenFargateService",
    "BlueGreenFargateServiceArgs",
    "service_exports",
]


# --------------------------------------------------------------------------------------
