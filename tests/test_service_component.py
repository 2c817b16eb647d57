"""Mock-engine tests of BlueGreenFargateService as wired into the dev/stage/prod stacks."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components import config as config_mod
from components import service as service_mod
from components.render import deployment as deploy_r
from components.testing import Recording, cached_render
from components.testing import engine as engine_mod

ROOT = Path(__file__).resolve().parent.parent
COMPONENT = "dotnet-delivery:index:BlueGreenFargateService"
MIGRATION = "dotnet-delivery:index:EfMigrationTask"
SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"

_CACHE: dict[str, Recording] = {}


def _codedeploy_dev_yaml() -> str:
    text = (ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    assert "engine: ecs" in text
    return text.replace("engine: ecs", "engine: codedeploy").replace("    bakeTimeMinutes: 1\n", "")


def rec(stack: str) -> Recording:
    if stack not in _CACHE:
        if stack == "dev-codedeploy":
            stack_file = engine_mod.parse_stack_file(_codedeploy_dev_yaml())
            _CACHE[stack] = engine_mod.render("dev", stack_file=stack_file)
        else:
            _CACHE[stack] = cached_render(stack)  # shared with other modules
    return _CACHE[stack]


ALL = ["dev", "stage", "prod", "dev-codedeploy"]
LAMBDA = "aws:lambda/function:Function"


def smoke_fn(r: Recording) -> Any:
    return r.one(LAMBDA, {"handler": "smoke_hook.handler"})


def admission_fns(r: Recording) -> list[Any]:
    return [f for f in r.find(LAMBDA) if f.inputs["handler"] == "admission_hook.handler"]


ENGINE = {"dev": "ecs", "stage": "ecs", "prod": "codedeploy", "dev-codedeploy": "codedeploy"}


@pytest.mark.parametrize("stack", ALL)
def test_graph_type_counts(stack: str) -> None:
    r = rec(stack)
    assert r.counts_by_type()[COMPONENT] == 1
    # The service component's own subtree (stage and prod also have an EfMigrationTask).
    counts = Counter(c.type for c in r.children(r.one(COMPONENT), recursive=True))
    for token, n in {
        "awsx:ec2:Vpc": 1,
        "aws:lb/loadBalancer:LoadBalancer": 1,
        "aws:lb/targetGroup:TargetGroup": 2,
        LISTENER: 3,
        "aws:ecs/cluster:Cluster": 1,
        SERVICE: 1,
        "aws:ecs/taskDefinition:TaskDefinition": 1,
        "aws:lambda/function:Function": 2 if stack == "stage" else 1,  # + admission hook
        "aws:appautoscaling/target:Target": 1,
        "aws:appautoscaling/policy:Policy": 2,
        "aws:cloudwatch/metricAlarm:MetricAlarm": 7,
    }.items():
        assert counts.get(token, 0) == n, (token, counts.get(token))
    if ENGINE[stack] == "codedeploy":
        assert counts["aws:codedeploy/deploymentGroup:DeploymentGroup"] == 1
        assert counts["aws:codedeploy/application:Application"] == 1
        assert counts.get(RULE, 0) == 0
    else:
        assert counts.get("aws:codedeploy/deploymentGroup:DeploymentGroup", 0) == 0
        assert counts[RULE] == 2


@pytest.mark.parametrize("stack", ALL)
def test_every_child_is_parented_to_the_component(stack: str) -> None:
    r = rec(stack)
    component = r.one(COMPONENT)
    children = {c.urn for c in r.children(component, recursive=True)}
    # The migration task is its own component, with every child parented to it.
    migration = {m.urn for m in r.find(MIGRATION)} | {
        c.urn for m in r.find(MIGRATION) for c in r.children(m, recursive=True)
    }
    assert bool(migration) == (stack in ("stage", "prod"))
    stack_level = [
        res
        for res in r
        if res.urn not in children
        and res.type not in (COMPONENT, "pulumi:pulumi:Stack", "pulumi:pulumi:StackReference")
        and res.urn not in migration
        and not res.type.startswith("aws:budgets")
        and not res.name.startswith("deploy-role")
    ]
    assert stack_level == []
    assert len(children) > 40


@pytest.mark.parametrize("stack", ALL)
def test_ignore_changes_exactly_at_the_deployer_boundary(stack: str) -> None:
    r = rec(stack)
    found: dict[str, list[str]] = {}
    for res in r:
        ignored = res.options.get("ignoreChanges") or []
        if ignored:
            found[res.name] = sorted(ignored)
    expected = {
        "orders-api-" + stack.split("-")[0] + "-service": sorted(
            ["taskDefinition", "loadBalancers", "desiredCount"]
        ),
        f"orders-api-{stack.split('-')[0]}-https": ["defaultActions"],
        f"orders-api-{stack.split('-')[0]}-test": ["defaultActions"],
    }
    if ENGINE[stack] == "ecs":
        env = stack.split("-")[0]
        expected[f"orders-api-{env}-prod-rule"] = ["actions"]
        expected[f"orders-api-{env}-test-rule"] = ["actions"]
    assert found == expected


INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SG = "aws:ec2/securityGroup:SecurityGroup"


def sg_rules(r: Recording, group_suffix: str, token: str = INGRESS_RULE) -> list[Any]:
    [group] = [s for s in r.find(SG) if s.name.endswith(group_suffix)]
    return [x for x in r.find(token) if x.inputs["securityGroupId"] == group.id]


@pytest.mark.parametrize("stack", ALL)
def test_test_listener_is_not_open_to_the_world(stack: str) -> None:
    r = rec(stack)
    rules = [i for i in sg_rules(r, "alb-sg") if i.inputs["fromPort"] <= 8443 <= i.inputs["toPort"]]
    assert rules, "the test listener port has an ingress rule"
    for rule in rules:
        cidr = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
        if cidr:
            assert ipaddress.ip_network(cidr).prefixlen > 0, cidr
        else:
            assert rule.inputs["referencedSecurityGroupId"].startswith("sg-")
    # 443 is open to the configured clients; 8443 is a different, narrower rule
    https = [i for i in sg_rules(r, "alb-sg") if i.inputs["fromPort"] == 443]
    assert [i.inputs["cidrIpv4"] for i in https] == ["0.0.0.0/0"]
    test = r.one(LISTENER, {"port": 8443})
    assert test.inputs["protocol"] == "HTTPS"
    assert test.inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13")


@pytest.mark.parametrize("stack", ALL)
def test_listeners_and_alb(stack: str) -> None:
    r = rec(stack)
    https = r.one(LISTENER, {"port": 443})
    assert https.inputs["protocol"] == "HTTPS"
    assert https.inputs["certificateArn"].startswith("arn:aws:acm:")
    http = r.one(LISTENER, {"port": 80})
    assert http.inputs["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"},
        }
    ]
    alb = r.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["accessLogs"]["enabled"] is True
    assert alb.inputs["enableDeletionProtection"] is stack.startswith("prod")
    for tg in r.find("aws:lb/targetGroup:TargetGroup"):
        assert tg.inputs["port"] == 8080
        assert tg.inputs["targetType"] == "ip"
        assert tg.inputs["healthCheck"]["path"] == "/health/ready"
    sse = r.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    )
    rule = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "AES256"
    policy = r.one("aws:s3/bucketPolicy:BucketPolicy").json_input("policy")
    delivery = policy["Statement"][0]
    # eu-west-1 predates August 2022: the Region's ELB account delivers the logs.
    assert delivery["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}


@pytest.mark.parametrize("stack", ALL)
def test_service_network_and_scaling(stack: str) -> None:
    r = rec(stack)
    svc = r.one(SERVICE)
    net = svc.inputs["networkConfiguration"]
    assert net["assignPublicIp"] is False
    vpc = r.one("awsx:ec2:Vpc")
    assert net["subnets"] == vpc.outputs["privateSubnetIds"]
    controller = "CODE_DEPLOY" if ENGINE[stack] == "codedeploy" else "ECS"
    assert svc.inputs["deploymentController"] == {"type": controller}
    assert svc.inputs["healthCheckGracePeriodSeconds"] > 0
    cluster = r.one("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"]
    configs = {
        p.name.rsplit("-", 1)[-1]: p.inputs["targetTrackingScalingPolicyConfiguration"]
        for p in r.find("aws:appautoscaling/policy:Policy")
    }
    assert set(configs) == {"cpu", "requests"}
    cpu = configs["cpu"]["predefinedMetricSpecification"]["predefinedMetricType"]
    assert cpu == "ECSServiceAverageCPUUtilization"
    # requests: metric math over both target groups (see test_request_scaling_*)
    assert "customizedMetricSpecification" in configs["requests"]


@pytest.mark.parametrize("stack", ["dev", "stage"])
def test_ecs_engine_wiring(stack: str) -> None:
    r = rec(stack)
    svc = r.one(SERVICE)
    lb = svc.inputs["loadBalancers"][0]
    adv = lb["advancedConfiguration"]
    green = r.one("aws:lb/targetGroup:TargetGroup", {"name": f"orders-api-{stack}-tg-green"})
    assert adv["alternateTargetGroupArn"] == green.outputs["arn"]
    rules = {x.name: x.outputs["arn"] for x in r.find(RULE)}
    assert adv["productionListenerRule"] == rules[f"orders-api-{stack}-prod-rule"]
    assert adv["testListenerRule"] == rules[f"orders-api-{stack}-test-rule"]
    assert adv["roleArn"].endswith(f"role/orders-api-{stack}-ecs-infra")
    alarms = svc.inputs["alarms"]
    assert alarms["enable"] is True and alarms["rollback"] is True
    recorded = {a.inputs["name"] for a in r.find("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms["alarmNames"]) == recorded
    config = svc.inputs["deploymentConfiguration"]
    hook = config["lifecycleHooks"][-1]
    fn = smoke_fn(r)
    assert hook["hookTargetArn"] == fn.outputs["arn"]
    assert hook["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]
    if stack == "dev":
        assert config["strategy"] == "BLUE_GREEN"  # dev may go all at once
    else:
        assert config["strategy"] == "CANARY"
        assert config["canaryConfiguration"]["canaryPercent"] == 10.0


@pytest.mark.parametrize("stack", ["prod", "dev-codedeploy"])
def test_codedeploy_engine_wiring(stack: str) -> None:
    r = rec(stack)
    group = r.one("aws:codedeploy/deploymentGroup:DeploymentGroup")
    i = group.inputs
    assert i["deploymentStyle"] == {
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
        "deploymentType": "BLUE_GREEN",
    }
    assert set(i["autoRollbackConfiguration"]["events"]) == {
        "DEPLOYMENT_FAILURE",
        "DEPLOYMENT_STOP_ON_ALARM",
    }
    assert i["alarmConfiguration"]["enabled"] is True
    assert len(i["alarmConfiguration"]["alarms"]) >= 5
    pair = i["loadBalancerInfo"]["targetGroupPairInfo"]
    https = r.one(LISTENER, {"port": 443})
    test = r.one(LISTENER, {"port": 8443})
    assert pair["prodTrafficRoute"]["listenerArns"] == [https.outputs["arn"]]
    assert pair["testTrafficRoute"]["listenerArns"] == [test.outputs["arn"]]
    assert len(pair["targetGroups"]) == 2
    term = i["blueGreenDeploymentConfig"]["terminateBlueInstancesOnDeploymentSuccess"]
    assert term["action"] == "TERMINATE"
    if stack == "prod":
        assert term["terminationWaitTimeInMinutes"] == 10
        assert i["deploymentConfigName"] == "CodeDeployDefault.ECSCanary10Percent5Minutes"
    else:
        assert i["deploymentConfigName"] == deploy_r.ALL_AT_ONCE
    assert r.one(SERVICE).inputs.get("alarms") is None


def test_prod_shifts_gradually_dev_may_go_all_at_once() -> None:
    prod = rec("prod").one("aws:codedeploy/deploymentGroup:DeploymentGroup")
    name = prod.inputs["deploymentConfigName"]
    assert deploy_r.codedeploy_config(name).shifts_gradually
    dev = rec("dev").one(SERVICE).inputs["deploymentConfiguration"]
    assert dev["strategy"] == "BLUE_GREEN"


def _values(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _values(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _values(x)]
    return [obj] if isinstance(obj, str) else []


@pytest.mark.parametrize("stack", ALL)
def test_no_secret_in_plain_environment(stack: str) -> None:
    r = rec(stack)
    env = stack.split("-")[0]  # "dev-codedeploy" is a variant of dev
    td = r.one("aws:ecs/taskDefinition:TaskDefinition", {"family": f"orders-api-{env}"})
    containers = td.json_input("containerDefinitions")
    app = containers[0]
    plain = {e["name"]: e["value"] for e in app["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in app["secrets"]}
    assert "ConnectionStrings__Orders" in secrets
    assert secrets["ConnectionStrings__Orders"].startswith("arn:aws:secretsmanager:")
    assert "ConnectionStrings__Orders" not in plain
    for value in plain.values():
        assert not value.startswith("arn:aws:secretsmanager:")
    assert app["image"].count("@sha256:") == 1
    assert td.inputs["family"] == f"orders-api-{stack.split('-')[0]}"
    assert td.inputs["executionRoleArn"] != td.inputs["taskRoleArn"]


@pytest.mark.parametrize("stack", ALL)
def test_log_group_encrypted_and_key_lets_logs_use_it(stack: str) -> None:
    r = rec(stack)
    env = stack.split("-")[0]
    group = r.one("aws:cloudwatch/logGroup:LogGroup", {"name": f"/ecs/{env}/orders-api"})
    key = r.one("aws:kms/key:Key", name=f"orders-api-{stack.split('-')[0]}-logs-key")
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert group.inputs["retentionInDays"] > 0
    statements = key.json_input("policy")["Statement"]
    services = [s for s in statements if "Service" in s.get("Principal", {})]
    assert services[0]["Principal"]["Service"] == ["logs.eu-west-1.amazonaws.com"]


@pytest.mark.parametrize("stack", ALL)
def test_smoke_hook_lambda(stack: str) -> None:
    r = rec(stack)
    fn = smoke_fn(r)
    assert fn.inputs["handler"] == "smoke_hook.handler"
    assert fn.inputs["runtime"] == "python3.12"
    assert fn.inputs["architectures"] == ["arm64"]
    assert fn.inputs["vpcConfig"]["subnetIds"] == r.one("awsx:ec2:Vpc").outputs["privateSubnetIds"]
    env = fn.inputs["environment"]["variables"]
    assert env["TEST_ENDPOINT"].endswith(":8443")
    assert fn.inputs["timeout"] >= 30


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_stack_exports(stack: str) -> None:
    exports = rec(stack).exports
    for key in (
        "albDnsName",
        "clusterName",
        "serviceName",
        "taskFamily",
        "logGroupName",
        "httpsListenerArn",
        "testListenerArn",
    ):
        assert exports.get(key), key
    assert exports["clusterName"] == f"orders-api-{stack}"
    assert ("codedeployGroup" in exports) == (ENGINE[stack] == "codedeploy")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_deploy_role_trusted_only_by_pipeline_role(stack: str) -> None:
    r = rec(stack)
    role = r.one("aws:iam/role:Role", {"name": f"orders-api-{stack}-deploy"})
    trust = role.json_input("assumeRolePolicy")["Statement"]
    assert len(trust) == 1
    principal = trust[0]["Principal"]
    assert list(principal) == ["AWS"]
    assert principal["AWS"].startswith("arn:aws:iam::111111111111:role/")
    doc = r.one("aws:iam/rolePolicy:RolePolicy", name="deploy-role-policy").json_input("policy")
    passrole = next(s for s in doc["Statement"] if s["Sid"] == "PassTaskRoles")
    assert passrole["Condition"]["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"
    migration_roles = (
        {f"orders-api-{stack}-migrate-exec", f"orders-api-{stack}-migrate-task"}
        if stack in ("stage", "prod")
        else set()
    )
    assert {res.rsplit("/", 1)[1] for res in passrole["Resource"]} == {
        f"orders-api-{stack}-exec",
        f"orders-api-{stack}-task",
        *migration_roles,
    }
    for statement in doc["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in a for a in actions)


def test_single_account_creates_no_deploy_role() -> None:
    text = (ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    for acct in ("222222222222", "333333333333", "444444444444"):
        text = text.replace(acct, "111111111111")
    r = engine_mod.render("dev", stack_file=engine_mod.parse_stack_file(text))
    assert r.find("aws:iam/role:Role", {"name": "orders-api-dev-deploy"}) == []
    assert "deployRoleArn" not in r.exports
    assert r.count(SERVICE) == 1


def test_codedeploy_choice_maps_predefined_and_custom() -> None:
    from components.config import DeploymentConfig

    canary = DeploymentConfig(
        engine="codedeploy", strategy="canary", canary_percent=10, canary_minutes=5
    )
    assert service_mod.codedeploy_choice(canary, name_prefix="x").predefined
    custom = DeploymentConfig(
        engine="codedeploy", strategy="linear", linear_percent=20, linear_minutes=2
    )
    choice = service_mod.codedeploy_choice(custom, name_prefix="orders-api-prod")
    assert not choice.predefined
    assert choice.deployment_config_name == "orders-api-prod-linear-20pct-every-2min"
    assert json.loads(json.dumps(choice.deployment_config_args()))["compute_platform"] == "ECS"


# ---- digest admission hook (stage: deployment.admissionHook true) ---------------------------


def test_stage_wires_the_admission_hook_before_scale_up_and_the_smoke_test_after() -> None:
    r = rec("stage")
    [admission] = admission_fns(r)
    smoke = smoke_fn(r)
    hooks = r.one(SERVICE).inputs["deploymentConfiguration"]["lifecycleHooks"]
    by_stage = {stage: h["hookTargetArn"] for h in hooks for stage in h["lifecycleStages"]}
    assert by_stage == {
        deploy_r.ADMISSION_STAGE: admission.outputs["arn"],
        deploy_r.SMOKE_TEST_STAGE: smoke.outputs["arn"],
    }
    assert deploy_r.ADMISSION_STAGE == "PRE_SCALE_UP"
    invoker = r.one("aws:iam/role:Role", {"name": "orders-api-stage-hook-invoker"})
    assert {h["roleArn"] for h in hooks} == {invoker.outputs["arn"]}
    policies = [
        p
        for p in r.find("aws:iam/rolePolicy:RolePolicy")
        if p.name == "orders-api-stage-hook-invoker-policy"
    ]
    [statement] = policies[0].json_input("policy")["Statement"]
    assert statement["Action"] == ["lambda:InvokeFunction"]
    assert sorted(statement["Resource"]) == sorted([admission.outputs["arn"], smoke.outputs["arn"]])


def test_stage_admission_lambda_role_and_logs() -> None:
    r = rec("stage")
    [fn] = admission_fns(r)
    i = fn.inputs
    assert i["runtime"] == "python3.12"
    assert i["architectures"] == ["arm64"]
    assert i["timeout"] == 60
    assert i["name"] == "orders-api-stage-admission-hook"
    assert "vpcConfig" not in i or not i["vpcConfig"]
    group = r.one(
        "aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/lambda/orders-api-stage-admission-hook"}
    )
    service_logs = r.one("aws:cloudwatch/logGroup:LogGroup", {"name": "/ecs/stage/orders-api"})
    smoke_logs = r.one(
        "aws:cloudwatch/logGroup:LogGroup", {"name": "/aws/lambda/orders-api-stage-smoke-hook"}
    )
    key = r.one("aws:kms/key:Key", name="orders-api-stage-logs-key")
    assert group.inputs["kmsKeyId"] == key.outputs["arn"]
    assert group.inputs["kmsKeyId"] == service_logs.inputs["kmsKeyId"]
    assert group.inputs["kmsKeyId"] == smoke_logs.inputs["kmsKeyId"]
    assert group.inputs["retentionInDays"] == 30
    role = r.one("aws:iam/role:Role", {"name": "orders-api-stage-admission-hook"})
    assert i["role"] == role.outputs["arn"]
    trust = role.json_input("assumeRolePolicy")["Statement"][0]["Principal"]
    assert trust == {"Service": "lambda.amazonaws.com"}
    [policy] = [
        p
        for p in r.find("aws:iam/rolePolicy:RolePolicy")
        if p.name == "orders-api-stage-admission-hook-policy"
    ]
    statements = {s["Sid"]: s for s in policy.json_input("policy")["Statement"]}
    assert statements["DescribeServiceRevisions"]["Resource"] == [
        "arn:aws:ecs:eu-west-1:333333333333:service/orders-api-stage/orders-api-stage-svc",
        "arn:aws:ecs:eu-west-1:333333333333:service-revision/orders-api-stage/"
        "orders-api-stage-svc/*",
    ]
    assert r.one(SERVICE).inputs["name"] == "orders-api-stage-svc"
    assert r.one("aws:ecs/cluster:Cluster").inputs["name"] == "orders-api-stage"


def test_dev_has_no_admission_hook() -> None:
    r = rec("dev")
    assert admission_fns(r) == []
    hooks = r.one(SERVICE).inputs["deploymentConfiguration"]["lifecycleHooks"]
    assert [h["lifecycleStages"] for h in hooks] == [["POST_TEST_TRAFFIC_SHIFT"]]
    [policy] = [
        p
        for p in r.find("aws:iam/rolePolicy:RolePolicy")
        if p.name == "orders-api-dev-hook-invoker-policy"
    ]
    assert policy.json_input("policy")["Statement"][0]["Resource"] == smoke_fn(r).outputs["arn"]


@pytest.mark.parametrize(
    ("stack", "strategy", "azs"),
    [("dev", "Single", 2), ("stage", "Single", 2), ("prod", "OnePerAz", 3)],
)
def test_vpc_nat_gateways_per_environment(stack: str, strategy: str, azs: int) -> None:
    vpc = rec(stack).one("awsx:ec2:Vpc")
    assert vpc.inputs["natGateways"] == {"strategy": strategy}
    assert vpc.inputs["numberOfAvailabilityZones"] == azs


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_log_key_serves_exactly_the_service_and_hook_log_groups(stack: str) -> None:
    r = rec(stack)
    key = r.one("aws:kms/key:Key", name=f"orders-api-{stack}-logs-key")
    [logs] = [s for s in key.json_input("policy")["Statement"] if s["Sid"] == "ServicesUseKey"]
    arn = f"arn:aws:logs:eu-west-1:{r.one(SERVICE).outputs['arn'].split(':')[4]}:log-group:"
    expected = [f"{arn}/ecs/{stack}/orders-api", f"{arn}/aws/lambda/orders-api-{stack}-smoke-hook"]
    if stack == "stage":  # the admission hook
        expected.append(f"{arn}/aws/lambda/orders-api-stage-admission-hook")
    assert logs["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": expected}}
    groups = {g.inputs["name"] for g in r.find("aws:cloudwatch/logGroup:LogGroup")}
    assert {e.removeprefix(arn) for e in expected} <= groups


# ---- review fix 1: ALB access-log delivery principal per Region -----------------------------
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"


def _log_delivery_statement(r: Recording) -> dict[str, Any]:
    [policy] = [p for p in r.find(BUCKET_POLICY) if p.name.endswith("alb-logs-policy")]
    doc = json.loads(policy.inputs["policy"])
    return next(s for s in doc["Statement"] if s["Sid"] == "ElbLogDelivery")


@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_access_logs_in_eu_west_1_are_granted_to_the_regional_elb_account(stack: str) -> None:
    # eu-west-1 predates August 2022: delivery writes as the Region's ELB account.
    r = rec(stack)
    statement = _log_delivery_statement(r)
    assert statement["Principal"] == {"AWS": "arn:aws:iam::156460612806:root"}
    assert statement["Action"] == "s3:PutObject"


def test_access_logs_principal_follows_the_region() -> None:
    assert service_mod.uses_elb_account_principal("us-east-1")
    assert service_mod.uses_elb_account_principal("eu-west-1")
    # Spain (Nov 2022) and Malaysia (2024) use the log-delivery service principal.
    assert not service_mod.uses_elb_account_principal("eu-south-2")
    assert not service_mod.uses_elb_account_principal("ap-southeast-5")
    new = service_mod.access_logs_bucket_policy(bucket="b", account_id="222222222222")
    assert new["Statement"][0]["Principal"] == {
        "Service": "logdelivery.elasticloadbalancing.amazonaws.com"
    }
    old = service_mod.access_logs_bucket_policy(
        bucket="b",
        account_id="222222222222",
        elb_account_arn="arn:aws:iam::127311923021:root",
    )
    assert old["Statement"][0]["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
    assert old["Statement"][0]["Resource"] == "arn:aws:s3:::b/AWSLogs/222222222222/*"


def test_elb_service_account_mock_answers_per_region() -> None:
    from components.testing.mocks import OfflineMocks

    m = OfflineMocks(account_id="222222222222", region="eu-west-1")
    for region, account in {"eu-west-1": "156460612806", "us-east-1": "127311923021"}.items():
        args = pulumi.runtime.MockCallArgs(
            "aws:elb/getServiceAccount:getServiceAccount", {"region": region}, ""
        )
        out, failures = m.call(args)
        assert out["arn"] == f"arn:aws:iam::{account}:root"
        assert failures == []


# ---- review fix 2: no inline rules on any security group ----------------------------------------
@pytest.mark.parametrize("stack", ALL)
def test_security_groups_have_no_inline_rules(stack: str) -> None:
    r = rec(stack)
    groups = r.children(r.one(COMPONENT), recursive=True)
    groups = [g for g in groups if g.type == SG]
    assert len(groups) == 3
    for group in groups:
        assert not group.inputs.get("ingress"), group.name
        assert not group.inputs.get("egress"), group.name
    # every rule is a separate resource, one per port and CIDR/source
    tasks_in = sg_rules(r, "task-sg")
    assert [(x.inputs["fromPort"], x.inputs["ipProtocol"]) for x in tasks_in] == [(8080, "tcp")]
    [alb] = [g for g in groups if g.name.endswith("alb-sg")]
    assert tasks_in[0].inputs["referencedSecurityGroupId"] == alb.id
    tasks_out = sg_rules(r, "task-sg", EGRESS_RULE)
    assert (443, "0.0.0.0/0") in [(x.inputs["fromPort"], x.inputs["cidrIpv4"]) for x in tasks_out]
    hook_out = sg_rules(r, "hook-sg", EGRESS_RULE)
    assert sorted(x.inputs["fromPort"] for x in hook_out) == [443, 8443]
    alb_in = {(x.inputs["fromPort"], x.inputs.get("cidrIpv4")) for x in sg_rules(r, "alb-sg")}
    test_cidr = "10.20.0.0/16" if stack == "prod" else "10.0.0.0/8"
    assert {(443, "0.0.0.0/0"), (80, "0.0.0.0/0"), (8443, test_cidr)} <= alb_in


def test_rule_names_are_stable_per_cidr() -> None:
    assert service_mod.rule_suffix("10.0.0.0/8") == "10-0-0-0-8"
    assert service_mod.rule_suffix("2001:db8::/32") == "2001-db8-32"
    r = rec("dev")
    names = {x.name for x in r.find(INGRESS_RULE)}
    assert "orders-api-dev-alb-test-10-0-0-0-8" in names
    assert "orders-api-dev-hook-to-test-listener" in names


# ---- review fix 3: the smoke-test hook reaches an internet-facing ALB from the NAT EIPs -------
def _nat_rules(r: Recording) -> list[Any]:
    return [x for x in r.find(INGRESS_RULE) if "-alb-test-nat-" in x.name]


@pytest.mark.parametrize(("stack", "nats"), [("dev", 1), ("stage", 1), ("prod", 3)])
def test_test_listener_admits_each_nat_gateway_ip(stack: str, nats: int) -> None:
    r = rec(stack)
    rules = _nat_rules(r)
    assert len(rules) == nats
    cidrs = {x.inputs["cidrIpv4"] for x in rules}
    assert len(cidrs) == nats
    for rule in rules:
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 8443
        net = ipaddress.ip_network(rule.inputs["cidrIpv4"])
        assert net.prefixlen == 32 and net.is_global, net


def _variant(stack: str, old: str, new: str) -> Recording:
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert old in text
    stack_file = engine_mod.parse_stack_file(text.replace(old, new, 1))
    return engine_mod.render(stack, stack_file=stack_file)


def test_internal_alb_needs_no_nat_rule() -> None:
    r = _variant("dev", "    testListenerCidrs:", "    internal: true\n    testListenerCidrs:")
    assert r.one("aws:lb/loadBalancer:LoadBalancer").inputs["internal"] is True
    assert _nat_rules(r) == []
    assert any(x.name.endswith("hook-to-test-listener") for x in r.find(INGRESS_RULE))


def test_nat_gateway_lookup_is_sorted_and_checked() -> None:
    assert service_mod.nth_nat_gateway(["nat-b", "nat-a"], 0, 2) == "nat-a"
    with pytest.raises(ValueError, match="expected 3 available NAT gateway"):
        service_mod.nth_nat_gateway(["nat-a"], 0, 3)


# ---- review fix 4: configurable task egress (the database), task SG exported ------------------
@pytest.mark.parametrize("stack", ["dev", "stage", "prod"])
def test_tasks_may_reach_the_database(stack: str) -> None:
    r = rec(stack)
    out = {
        (x.inputs["ipProtocol"], x.inputs["fromPort"], x.inputs["toPort"], x.inputs["cidrIpv4"])
        for x in sg_rules(r, "task-sg", EGRESS_RULE)
    }
    assert out == {("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 5432, 5432, "10.0.0.0/16")}
    [db] = [x for x in sg_rules(r, "task-sg", EGRESS_RULE) if x.inputs["fromPort"] == 5432]
    assert db.name == f"orders-api-{stack}-tasks-tcp-5432-10-0-0-0-16"
    assert db.inputs["description"] == "PostgreSQL orders database in the VPC"
    [group] = [s for s in r.find(SG) if s.name.endswith("task-sg")]
    assert r.exports["taskSecurityGroupId"] == group.id


def _service_cfg(**service: Any) -> Any:
    from components import config as config_mod

    return config_mod.ServiceConfig.model_validate(service)


def test_egress_config_defaults_and_validation() -> None:
    from components import config as config_mod

    assert _service_cfg().egress == []
    rule = _service_cfg(egress=[{"cidr": "10.1.0.0/16", "port": 6379, "description": "Redis"}])
    assert rule.egress[0].protocol == "tcp"
    with pytest.raises(Exception, match="65535"):
        _service_cfg(egress=[{"cidr": "10.1.0.0/16", "port": 70000, "description": "x"}])
    with pytest.raises(Exception, match="not a CIDR"):
        _service_cfg(egress=[{"cidr": "10.1.0.300/16", "port": 5432, "description": "x"}])
    with pytest.raises(Exception, match="security-group rule description"):
        _service_cfg(egress=[{"cidr": "10.1.0.0/16", "port": 5432, "description": "db ☃"}])
    twice = {"cidr": "10.1.0.0/16", "port": 5432, "description": "db"}
    with pytest.raises(Exception, match="listed twice"):
        _service_cfg(egress=[twice, twice])
    assert config_mod.EgressRuleConfig  # public model


# ---- review fix 5: request scaling over both target groups (metric math) ---------------------
def _to_boto(value: Any) -> Any:
    if isinstance(value, dict):
        return {"".join(p.title() for p in k.split("_")): _to_boto(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_boto(v) for v in value]
    return value


def test_request_scaling_metric_math_validates_against_botocore() -> None:
    import botocore.session
    from botocore.validate import validate_parameters

    metrics = service_mod.request_scaling_metrics(
        load_balancer="app/a/1",
        target_groups=["targetgroup/b/2", "targetgroup/g/3"],
        cluster_name="c",
        service_name="s",
    )
    model = botocore.session.get_session().get_service_model("application-autoscaling")
    shape = model.operation_model("PutScalingPolicy").input_shape
    validate_parameters(
        {
            "PolicyName": "p",
            "ServiceNamespace": "ecs",
            "ResourceId": "service/c/s",
            "ScalableDimension": "ecs:service:DesiredCount",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 1000.0,
                "CustomizedMetricSpecification": {"Metrics": _to_boto(metrics)},
            },
        },
        shape,
    )
    assert [m["return_data"] for m in metrics] == [False, False, False, True]


@pytest.mark.parametrize("stack", ALL)
def test_request_scaling_counts_both_target_groups(stack: str) -> None:
    r = rec(stack)
    [policy] = [
        p for p in r.find("aws:appautoscaling/policy:Policy") if p.name.endswith("requests")
    ]
    config = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert "predefinedMetricSpecification" not in config
    queries = config["customizedMetricSpecification"]["metrics"]
    groups = {
        d["value"]
        for q in queries
        if "metricStat" in q and q["metricStat"]["metric"]["metricName"] == "RequestCount"
        for d in q["metricStat"]["metric"]["dimensions"]
        if d["name"] == "TargetGroup"
    }
    assert groups == {tg.outputs["arnSuffix"] for tg in r.find("aws:lb/targetGroup:TargetGroup")}
    [result] = [q for q in queries if q.get("returnData")]
    assert result["expression"] == "(FILL(requests0, 0) + FILL(requests1, 0)) / tasks"
    [tasks] = [q for q in queries if q["id"] == "tasks"]
    assert tasks["metricStat"]["metric"]["metricName"] == "RunningTaskCount"
    assert config["targetValue"] > 0


# ---- review fix 6: secrets under customer KMS keys ------------------------------------------
def test_execution_role_may_decrypt_the_configured_secret_keys() -> None:
    key = "arn:aws:kms:eu-west-1:222222222222:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    r = _variant(
        "dev",
        "    logRetentionDays: 14\n",
        f"    logRetentionDays: 14\n    secretsKmsKeyArns: [{key}]\n",
    )
    [policy] = [
        p for p in r.find("aws:iam/rolePolicy:RolePolicy") if p.name.endswith("execution-policy")
    ]
    doc = policy.json_input("policy")
    [decrypt] = [s for s in doc["Statement"] if s.get("Sid") == "DecryptReferencedSecrets"]
    assert decrypt["Action"] in ("kms:Decrypt", ["kms:Decrypt"])
    assert decrypt["Resource"] in (key, [key])
    # default: AWS-managed key, no KMS statement
    [default] = [
        p
        for p in rec("dev").find("aws:iam/rolePolicy:RolePolicy")
        if p.name.endswith("execution-policy")
    ]
    assert "kms:Decrypt" not in json.dumps(default.json_input("policy"))


def test_secret_keys_must_be_this_environments() -> None:

    text = (ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    other = "arn:aws:kms:eu-west-1:333333333333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    bad = text.replace(
        "    logRetentionDays: 14\n",
        f"    logRetentionDays: 14\n    secretsKmsKeyArns: [{other}]\n",
    )
    with pytest.raises(
        Exception, match=r"service\.secretsKmsKeyArns: .*333333333333.* is not a KMS key ARN"
    ):
        engine_mod.render("dev", stack_file=engine_mod.parse_stack_file(bad))


def test_smoke_hook_verifies_tls_against_the_configured_host_name() -> None:
    for stack, host in (("dev", "orders.dev.example.com"), ("prod", "orders.example.com")):
        fn = rec(stack).one(LAMBDA, {"name": f"orders-api-{stack}-smoke-hook"})
        variables = fn.inputs["environment"]["variables"]
        assert (variables["HOST_HEADER"], variables["TLS_VERIFY"]) == (host, "true")
    text = (
        (ROOT / "Pulumi.dev.yaml").read_text().replace("    hostName: orders.dev.example.com\n", "")
    )
    r = engine_mod.render("dev", stack_file=engine_mod.parse_stack_file(text))
    variables = r.one(LAMBDA, {"name": "orders-api-dev-smoke-hook"}).inputs["environment"][
        "variables"
    ]
    assert variables["TLS_VERIFY"] == "false" and "HOST_HEADER" not in variables
    cfg = config_mod.parse(engine_mod.parse_stack_file(text).runtime_config())
    assert any(w.startswith("dotnet-delivery:loadBalancer.hostName: not set") for w in cfg.warnings)
