"""The full engine matrix: dev, stage and prod's own configs, each rendered with both
blue/green engines (``dotnet-delivery:deployment.engine`` switched), under the mock engine.

Issue 4 asks for mock-engine tests "for both engines and for each of dev, stage and prod's
configs"; tests/test_service_component.py renders each stack with its own engine (plus one
CodeDeploy variant of dev). Here every (stack, engine) pair is rendered once (module-level
cache) and checked for what matters per engine, for the IaC/deployer boundary
(``ignore_changes``) and against the policy pack, as ``components.preview`` evaluates it.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.render import deployment as deploy_r
from components.testing import Recording
from components.testing import engine as engine_mod
from components.testing.policy_runner import evaluate

ROOT = Path(__file__).resolve().parent.parent
NS = "dotnet-delivery:"
STACKS = ("dev", "stage", "prod")
ENGINES = ("codedeploy", "ecs")
MATRIX = [(stack, engine) for stack in STACKS for engine in ENGINES]
IDS = [f"{stack}-{engine}" for stack, engine in MATRIX]

SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LAMBDA = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
CD_APP = "aws:codedeploy/application:Application"
CD_GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"
CD_CONFIG = "aws:codedeploy/deploymentConfig:DeploymentConfig"

SERVICE_IGNORES = ["desiredCount", "loadBalancers", "taskDefinition"]  # sorted

#: What each stack file's deployment section asks for (checked against the file below).
STACK_STRATEGY = {
    "dev": {"strategy": "allAtOnce", "bakeTimeMinutes": 1},
    "stage": {"strategy": "canary", "canaryPercent": 10, "canaryMinutes": 3, "bakeTimeMinutes": 3},
    "prod": {"strategy": "canary", "canaryPercent": 10, "canaryMinutes": 5},
}

#: CodeDeploy: the deployment group's config name. dev goes all at once (allowed outside
#: production); prod's canary 10 %/5 min is AWS's predefined config; stage's 10 %/3 min has
#: no predefined twin, so the component creates a custom TimeBasedCanary config.
CODEDEPLOY_CONFIG = {
    "dev": deploy_r.ALL_AT_ONCE,
    "stage": "orders-api-stage-canary-10pct-3min",
    "prod": "CodeDeployDefault.ECSCanary10Percent5Minutes",
}

#: ECS native: (strategy, bakeTimeInMinutes, canaryConfiguration or None).
ECS_CONFIG: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "dev": ("BLUE_GREEN", "1", None),
    "stage": ("CANARY", "3", {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": "3"}),
    "prod": ("CANARY", "5", {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": "5"}),
}


# ---- the renders -------------------------------------------------------------------------
def _stack_doc(stack: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@functools.cache
def stack_text(stack: str, engine: str) -> str:
    """The stack file with ``deployment.engine`` switched to ``engine``.

    CodeDeploy has no PRE_SCALE_UP hook, so the validator refuses ``admissionHook`` with it
    (see test_codedeploy_refuses_the_admission_hook); it is dropped. ``bakeTimeMinutes`` is
    accepted (and unused) with CodeDeploy, so it stays. Everything else is the stack's own.
    """
    doc = _stack_doc(stack)
    deployment = doc["config"][f"{NS}deployment"]
    deployment["engine"] = engine
    if engine == "codedeploy":
        deployment.pop("admissionHook", None)
    return yaml.safe_dump(doc, sort_keys=False)


@functools.cache
def rec(stack: str, engine: str) -> Recording:
    """One render per (stack, engine); ``cache=True`` shares the unmodified stacks' renders
    with the other test modules in the same process."""
    stack_file = engine_mod.parse_stack_file(stack_text(stack, engine))
    return engine_mod.render(stack, stack_file=stack_file, cache=True)


def own_engine(stack: str) -> str:
    return str(_stack_doc(stack)["config"][f"{NS}deployment"]["engine"])


def _name(stack: str, suffix: str) -> str:
    return f"orders-api-{stack}-{suffix}"


def smoke_fn(r: Recording, stack: str) -> Any:
    return r.one(LAMBDA, {"name": _name(stack, "smoke-hook")})


def alarm_names(r: Recording) -> set[str]:
    return {a.inputs["name"] for a in r.find(ALARM)}


def role_arn(r: Recording, resource_name: str) -> str:
    return str(r.one(ROLE, name=resource_name).outputs["arn"])


# ---- the fixture itself --------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_still_ask_for_the_strategies_these_tests_expect(stack: str) -> None:
    deployment = _stack_doc(stack)["config"][f"{NS}deployment"]
    for key, value in STACK_STRATEGY[stack].items():
        assert deployment.get(key) == value, (stack, key, deployment.get(key))
    # each variant differs from the stack file in the engine (and the refused key) only
    for engine in ENGINES:
        switched = yaml.safe_load(stack_text(stack, engine))["config"][f"{NS}deployment"]
        assert switched["engine"] == engine
        expected = {k: v for k, v in deployment.items() if k != "engine"}
        if engine == "codedeploy":
            expected.pop("admissionHook", None)
        assert {k: v for k, v in switched.items() if k != "engine"} == expected


def test_codedeploy_refuses_the_admission_hook() -> None:
    # Why stage's CodeDeploy variant drops admissionHook: the validator names the key.
    doc = _stack_doc("stage")
    doc["config"][f"{NS}deployment"]["engine"] = "codedeploy"
    assert doc["config"][f"{NS}deployment"]["admissionHook"] is True
    stack_file = engine_mod.parse_stack_file(yaml.safe_dump(doc))
    with pytest.raises(Exception, match=r"deployment\.admissionHook.*only applies to engine ecs"):
        engine_mod.render("stage", stack_file=stack_file)


def test_each_stack_is_also_rendered_with_its_own_engine() -> None:
    # The matrix includes every stack's real configuration, unmodified.
    assert {stack: own_engine(stack) for stack in STACKS} == {
        "dev": "ecs",
        "stage": "ecs",
        "prod": "codedeploy",
    }
    for stack in STACKS:
        assert yaml.safe_load(stack_text(stack, own_engine(stack))) == _stack_doc(stack)


# ---- both engines ---------------------------------------------------------------------------
@pytest.mark.parametrize(("stack", "engine"), MATRIX, ids=IDS)
def test_deployment_controller_matches_the_engine(stack: str, engine: str) -> None:
    svc = rec(stack, engine).one(SERVICE)
    controller = {"codedeploy": "CODE_DEPLOY", "ecs": "ECS"}[engine]
    assert svc.inputs["deploymentController"] == {"type": controller}


@pytest.mark.parametrize(("stack", "engine"), MATRIX, ids=IDS)
def test_ignore_changes_are_exactly_the_intended_sets(stack: str, engine: str) -> None:
    r = rec(stack, engine)
    found = {
        res.name: sorted(res.options["ignoreChanges"])
        for res in r
        if res.options.get("ignoreChanges")
    }
    expected = {
        _name(stack, "service"): SERVICE_IGNORES,
        _name(stack, "https"): ["defaultActions"],
        _name(stack, "test"): ["defaultActions"],
    }
    if engine == "ecs":
        expected[_name(stack, "prod-rule")] = ["actions"]
        expected[_name(stack, "test-rule")] = ["actions"]
    assert found == expected
    # ... and those names are the service, the 443/8443 listeners and the two rules
    assert r.one(SERVICE).name == _name(stack, "service")
    assert r.one(LISTENER, {"port": 443}).name == _name(stack, "https")
    assert r.one(LISTENER, {"port": 8443}).name == _name(stack, "test")
    assert not r.one(LISTENER, {"port": 80}).options.get("ignoreChanges")


def _covers_8443(rule: Any) -> bool:
    i = rule.inputs
    return bool(i.get("ipProtocol") == "-1" or i["fromPort"] <= 8443 <= i["toPort"])


@pytest.mark.parametrize(("stack", "engine"), MATRIX, ids=IDS)
def test_test_listener_is_never_open_to_the_world(stack: str, engine: str) -> None:
    r = rec(stack, engine)
    [alb_sg] = [g for g in r.find(SG) if g.name == _name(stack, "alb-sg")]
    assert not alb_sg.inputs.get("ingress")  # no inline rules to hide a 0.0.0.0/0 in
    rules = [
        x
        for x in r.find(INGRESS_RULE)
        if x.inputs["securityGroupId"] == alb_sg.id and _covers_8443(x)
    ]
    assert rules, "the 8443 test listener has ingress rules"
    for rule in rules:
        cidr = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
        if cidr is None:
            assert rule.inputs["referencedSecurityGroupId"].startswith("sg-"), rule.name
            continue
        assert cidr not in ("0.0.0.0/0", "::/0"), rule.name
        assert ipaddress.ip_network(cidr).prefixlen > 0, (rule.name, cidr)
    configured = _stack_doc(stack)["config"][f"{NS}loadBalancer"]["testListenerCidrs"]
    assert set(configured) <= {x.inputs.get("cidrIpv4") for x in rules}


@pytest.mark.parametrize(("stack", "engine"), MATRIX, ids=IDS)
def test_prod_never_shifts_all_at_once(stack: str, engine: str) -> None:
    r = rec(stack, engine)
    if engine == "codedeploy":
        name = r.one(CD_GROUP).inputs["deploymentConfigName"]
        configs = r.find(CD_CONFIG)
        if configs:  # a custom config: its routing type decides
            [config] = configs
            assert config.inputs["deploymentConfigName"] == name
            gradual = config.inputs["trafficRoutingConfig"]["type"] != "AllAtOnce"
        else:
            gradual = deploy_r.codedeploy_config(name).shifts_gradually
    else:
        strategy = r.one(SERVICE).inputs["deploymentConfiguration"]["strategy"]
        gradual = strategy != "BLUE_GREEN"
    if stack == "prod":
        assert gradual, f"prod with {engine} shifts all at once"
    elif stack == "dev":
        assert not gradual  # dev may (and does) go all at once with either engine


@pytest.mark.parametrize(("stack", "engine"), MATRIX, ids=IDS)
def test_policy_pack_finds_no_mandatory_violation(stack: str, engine: str) -> None:
    r = rec(stack, engine)
    violations = evaluate([x.to_dict() for x in r.resources], stack_name=stack)
    mandatory = [v.to_dict() for v in violations if v.enforcement_level == "mandatory"]
    assert mandatory == []


@pytest.mark.parametrize(
    ("engine", "broken_type", "policy"),
    [
        ("codedeploy", CD_GROUP, "codedeploy-service-has-deployment-group"),
        ("ecs", SERVICE, "ecs-blue-green-rollback-alarms"),
    ],
)
def test_policy_evaluation_would_catch_a_broken_engine(
    engine: str, broken_type: str, policy: str
) -> None:
    # The zero-violation assertion above can fail: break each engine's rollback wiring.
    resources = copy.deepcopy([x.to_dict() for x in rec("prod", engine).resources])
    if engine == "codedeploy":
        resources = [x for x in resources if x["type"] != broken_type]
    else:
        [svc] = [x for x in resources if x["type"] == broken_type]
        del svc["inputs"]["alarms"]
    mandatory = [
        v.policy
        for v in evaluate(resources, stack_name="prod")
        if v.enforcement_level == "mandatory"
    ]
    assert mandatory == [policy]


# ---- engine codedeploy ----------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_codedeploy_application_and_group(stack: str) -> None:
    r = rec(stack, "codedeploy")
    app = r.one(CD_APP)
    assert app.inputs["computePlatform"] == "ECS"
    group = r.one(CD_GROUP).inputs
    assert group["appName"] == app.inputs["name"]
    svc = r.one(SERVICE)
    cluster = r.one("aws:ecs/cluster:Cluster")
    assert group["ecsService"] == {
        "clusterName": cluster.inputs["name"],
        "serviceName": svc.inputs["name"],
    }
    assert group["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }
    rollback = group["autoRollbackConfiguration"]
    assert rollback["enabled"] is True
    assert set(rollback["events"]) == {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"}
    alarms = group["alarmConfiguration"]
    assert alarms["enabled"] is True
    assert len(alarms["alarms"]) >= 1
    assert set(alarms["alarms"]) <= alarm_names(r)
    assert len(alarms["alarms"]) <= deploy_r.MAX_CODEDEPLOY_ALARMS


@pytest.mark.parametrize("stack", STACKS)
def test_codedeploy_traffic_routes_and_target_groups(stack: str) -> None:
    r = rec(stack, "codedeploy")
    pair = r.one(CD_GROUP).inputs["loadBalancerInfo"]["targetGroupPairInfo"]
    https = r.one(LISTENER, {"port": 443})
    test = r.one(LISTENER, {"port": 8443})
    assert https.outputs["arn"] != test.outputs["arn"]
    assert pair["prodTrafficRoute"] == {"listenerArns": [https.outputs["arn"]]}
    assert pair["testTrafficRoute"] == {"listenerArns": [test.outputs["arn"]]}
    groups = {tg.name: tg.inputs["name"] for tg in r.find(TARGET_GROUP)}
    assert pair["targetGroups"] == [
        {"name": groups[_name(stack, "tg-blue")]},
        {"name": groups[_name(stack, "tg-green")]},
    ]
    # the service starts on blue; CodeDeploy swaps the pair from there
    [lb] = r.one(SERVICE).inputs["loadBalancers"]
    blue = r.one(TARGET_GROUP, name=_name(stack, "tg-blue"))
    assert lb["targetGroupArn"] == blue.outputs["arn"]
    assert "advancedConfiguration" not in lb


@pytest.mark.parametrize("stack", STACKS)
def test_codedeploy_config_follows_the_strategy(stack: str) -> None:
    r = rec(stack, "codedeploy")
    name = r.one(CD_GROUP).inputs["deploymentConfigName"]
    assert name == CODEDEPLOY_CONFIG[stack]
    custom = r.find(CD_CONFIG)
    if stack == "stage":  # 10 % then the rest after 3 minutes: a custom canary
        [config] = custom
        assert config.inputs == {
            "deploymentConfigName": name,
            "computePlatform": "ECS",
            "trafficRoutingConfig": {
                "type": "TimeBasedCanary",
                "timeBasedCanary": {"interval": 3, "percentage": 10},
            },
        }
    else:  # predefined by AWS: creating it is neither needed nor allowed
        assert custom == []
        kind = deploy_r.PREDEFINED_ECS_CONFIGS[name][0]
        assert kind == ("AllAtOnce" if stack == "dev" else "TimeBasedCanary")


@pytest.mark.parametrize("stack", STACKS)
def test_codedeploy_leaves_no_native_ecs_wiring(stack: str) -> None:
    r = rec(stack, "codedeploy")
    assert r.find(RULE) == []  # CodeDeploy rewrites the listeners' default actions itself
    svc = r.one(SERVICE).inputs
    assert svc.get("alarms") is None  # the deployment group watches the alarms
    assert "strategy" not in (svc.get("deploymentConfiguration") or {})
    assert not [x for x in r.find(ROLE) if x.name.endswith(("ecs-infra-role", "hook-invoker-role"))]
    assert r.find(LAMBDA, {"name": _name(stack, "admission-hook")}) == []


# ---- engine ecs -----------------------------------------------------------------------------
@pytest.mark.parametrize("stack", STACKS)
def test_ecs_deployment_configuration_follows_the_strategy(stack: str) -> None:
    r = rec(stack, "ecs")
    config = r.one(SERVICE).inputs["deploymentConfiguration"]
    strategy, bake, canary = ECS_CONFIG[stack]
    assert config["strategy"] == strategy
    assert config["bakeTimeInMinutes"] == bake
    assert config.get("canaryConfiguration") == canary
    assert "linearConfiguration" not in config


@pytest.mark.parametrize("stack", STACKS)
def test_ecs_lifecycle_hooks_run_the_smoke_test(stack: str) -> None:
    r = rec(stack, "ecs")
    hooks = r.one(SERVICE).inputs["deploymentConfiguration"]["lifecycleHooks"]
    by_stage = {stage: h for h in hooks for stage in h["lifecycleStages"]}
    smoke = by_stage["POST_TEST_TRAFFIC_SHIFT"]
    assert smoke["hookTargetArn"] == smoke_fn(r, stack).outputs["arn"]
    assert smoke["roleArn"] == role_arn(r, _name(stack, "hook-invoker-role"))
    # only stage's own config turns on the digest admission hook (PRE_SCALE_UP)
    if stack == "stage":
        admission = r.one(LAMBDA, {"name": _name(stack, "admission-hook")})
        assert by_stage["PRE_SCALE_UP"]["hookTargetArn"] == admission.outputs["arn"]
        assert set(by_stage) == {"PRE_SCALE_UP", "POST_TEST_TRAFFIC_SHIFT"}
    else:
        assert set(by_stage) == {"POST_TEST_TRAFFIC_SHIFT"}


@pytest.mark.parametrize("stack", STACKS)
def test_ecs_service_alarms_roll_back(stack: str) -> None:
    r = rec(stack, "ecs")
    alarms = r.one(SERVICE).inputs["alarms"]
    assert alarms["enable"] is True
    assert alarms["rollback"] is True
    assert alarms["alarmNames"]
    assert set(alarms["alarmNames"]) <= alarm_names(r)


@pytest.mark.parametrize("stack", STACKS)
def test_ecs_load_balancer_advanced_configuration(stack: str) -> None:
    r = rec(stack, "ecs")
    [lb] = r.one(SERVICE).inputs["loadBalancers"]
    blue = r.one(TARGET_GROUP, name=_name(stack, "tg-blue"))
    green = r.one(TARGET_GROUP, name=_name(stack, "tg-green"))
    assert lb["targetGroupArn"] == blue.outputs["arn"]
    rules = {x.name: x for x in r.find(RULE)}
    assert set(rules) == {_name(stack, "prod-rule"), _name(stack, "test-rule")}
    assert lb["advancedConfiguration"] == {
        "alternateTargetGroupArn": green.outputs["arn"],
        "productionListenerRule": rules[_name(stack, "prod-rule")].outputs["arn"],
        "testListenerRule": rules[_name(stack, "test-rule")].outputs["arn"],
        "roleArn": role_arn(r, _name(stack, "ecs-infra-role")),
    }
    assert lb["advancedConfiguration"]["roleArn"].endswith(f":role/orders-api-{stack}-ecs-infra")


@pytest.mark.parametrize("stack", STACKS)
def test_ecs_listener_rules_sit_on_the_two_listeners(stack: str) -> None:
    r = rec(stack, "ecs")
    blue = r.one(TARGET_GROUP, name=_name(stack, "tg-blue")).outputs["arn"]
    green = r.one(TARGET_GROUP, name=_name(stack, "tg-green")).outputs["arn"]
    for label, port in (("prod", 443), ("test", 8443)):
        rule = r.one(RULE, name=_name(stack, f"{label}-rule"))
        assert rule.inputs["listenerArn"] == r.one(LISTENER, {"port": port}).outputs["arn"]
        assert rule.options["ignoreChanges"] == ["actions"]
        [action] = rule.inputs["actions"]
        weights = {g["arn"]: g["weight"] for g in action["forward"]["targetGroups"]}
        assert weights == {blue: 100, green: 0}


@pytest.mark.parametrize("stack", STACKS)
def test_ecs_has_no_codedeploy_resources(stack: str) -> None:
    r = rec(stack, "ecs")
    assert r.find("aws:codedeploy/*") == []
    assert "codedeployGroup" not in r.exports
