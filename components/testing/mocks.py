"""Realistic mock outputs for the offline engine.

:class:`OfflineMocks` answers Pulumi's mock monitor the way AWS would shape its answers:
ARNs in the stack's account and region, ECR repository URLs, ``sha256:`` digests for
docker-build images, ``vpc-``/``subnet-``/``sg-`` ids, ALB DNS names and ARN suffixes, and
``StackReference`` outputs taken from the referenced stack's own offline render. Every value
is derived deterministically from the resource's type, name and inputs, so two renders of
the same program are identical.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

# Pulumi module → ARN service namespace, where they differ.
_ARN_SERVICE = {
    "lb": "elasticloadbalancing",
    "alb": "elasticloadbalancing",
    "cloudwatch": "cloudwatch",
    "appautoscaling": "application-autoscaling",
    "codestarconnections": "codestar-connections",
    "codeconnections": "codeconnections",
    "codestarnotifications": "codestar-notifications",
}
_GLOBAL_SERVICES = {"iam", "budgets", "s3"}

#: The Regions' Elastic Load Balancing accounts (AWS docs, "Enable access logs for your
#: Application Load Balancer"; Regions available before August 2022), as
#: ``aws:elb/getServiceAccount`` answers.
ELB_ACCOUNT_BY_REGION = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-south-1": "718504428378",
    "ap-northeast-1": "582318560864",
    "ap-northeast-2": "600734575887",
    "ap-northeast-3": "383597477331",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-southeast-3": "589379963580",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-west-3": "009996457667",
    "eu-south-1": "635631232127",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}


def _h(*parts: Any, n: int = 8) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def split_type(token: str) -> tuple[str, str, str]:
    """``aws:ecs/taskDefinition:TaskDefinition`` → (``aws``, ``ecs``, ``TaskDefinition``)."""
    package, _, rest = token.partition(":")
    module, _, typ = rest.partition(":")
    return package, module.split("/")[0], typ


class OfflineMocks(pulumi.runtime.Mocks):
    """Mocks for one stack in ``account_id`` / ``region``."""

    def __init__(
        self,
        *,
        account_id: str,
        region: str,
        stack_outputs: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self._stack_outputs = stack_outputs or (lambda _name: {})
        #: NAT gateway ids per awsx VPC id (recorded when the VPC is created).
        self.nat_gateways: dict[str, list[str]] = {}

    # ---- invokes ------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        token = args.token
        a = self.account_id
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:iam::{a}:role/offline-preview"
            return {"accountId": a, "arn": arn, "userId": "AROAOFFLINE", "id": a}, []
        if token == "aws:index/getRegion:getRegion":
            r = self.region
            return {"name": r, "region": r, "id": r, "endpoint": f"ec2.{r}.amazonaws.com"}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{z}" for z in "abc"]
            return {"names": names, "zoneIds": [f"z{n}" for n in names], "id": self.region}, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = str(args.args.get("registryId") or a)
            return {
                "authorizationToken": "QVdTOm9mZmxpbmUtdG9rZW4=",  # base64("AWS:offline-token")
                "expiresAt": "2099-01-01T00:00:00Z",
                "id": self.region,
                "password": "offline-token",
                "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
                "region": self.region,
                "registryId": registry,
                "userName": "AWS",
            }, []  # failures: a list (the mock monitor iterates it; None crashes)
        if token == "aws:elb/getServiceAccount:getServiceAccount":
            region = str(args.args.get("region") or self.region)
            elb_account = ELB_ACCOUNT_BY_REGION.get(region)
            if elb_account is None:  # the provider has no account for post-2022 Regions
                raise ValueError(f"getServiceAccount: no ELB account for region {region!r}")
            arn = f"arn:aws:iam::{elb_account}:root"
            return {"arn": arn, "id": elb_account, "region": region}, []
        if token == "aws:ec2/getNatGateways:getNatGateways":
            vpc_id = str(args.args.get("vpcId") or "")
            ids = self.nat_gateways.get(vpc_id, [])
            return {"ids": list(ids), "id": self.region, "vpcId": vpc_id}, []
        if token == "aws:ec2/getNatGateway:getNatGateway":
            nat_id = str(args.args.get("id") or "")
            h = hashlib.sha256(nat_id.encode()).digest()
            # An Elastic IP in AWS's 52.x/54.x ranges, deterministic per NAT gateway.
            public_ip = f"{52 + 2 * (h[0] % 2)}.{h[1]}.{h[2]}.{h[3] % 254 + 1}"
            return {
                "id": nat_id,
                "publicIp": public_ip,
                "privateIp": f"10.0.{h[4] % 16}.{h[5] % 254 + 1}",
                "allocationId": f"eipalloc-{_h('eip', nat_id, n=17)}",
                "state": "available",
                "connectivityType": "public",
            }, []
        return {}, []

    # ---- resources ----------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        token = args.typ
        name = args.name
        inputs = dict(args.inputs)
        if token == "pulumi:pulumi:StackReference":
            target = inputs.get("name") or args.resource_id or name
            outputs = dict(self._stack_outputs(str(target)))
            return str(target), {"name": target, "outputs": outputs, "secretOutputNames": []}
        if not args.custom and not token.startswith("awsx:"):
            return "", {}
        handler = _HANDLERS.get(token)
        # Components implemented by a provider (awsx) return their outputs, not their inputs.
        state = {} if token.startswith("awsx:") else dict(inputs)
        rid = f"{name}-{_h(token, name, n=7)}"
        if handler is not None:
            rid, extra = handler(self, name, inputs)
            state.update(extra)
        else:
            state.update(self._generic(token, name, inputs))
            rid = state.get("name", rid) if isinstance(state.get("name"), str) else rid
        return rid, state

    # ---- helpers ------------------------------------------------------------------------
    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional and service not in _GLOBAL_SERVICES else ""
        account = "" if service == "s3" else self.account_id
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    def physical_name(self, name: str, inputs: Mapping[str, Any], key: str = "name") -> str:
        value = inputs.get(key)
        return value if isinstance(value, str) and value else f"{name}-{_h(name, n=7)}"

    def _generic(self, token: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        package, module, typ = split_type(token)
        out: dict[str, Any] = {}
        if package != "aws":
            return out
        physical = self.physical_name(name, inputs)
        out["name"] = physical
        service = _ARN_SERVICE.get(module, module)
        resource_type = typ[0].lower() + typ[1:]
        out["arn"] = self.arn(service, f"{resource_type}/{physical}")
        if isinstance(inputs.get("tags"), dict):
            out["tagsAll"] = dict(inputs["tags"])
        return out


Handler = Callable[[OfflineMocks, str, dict[str, Any]], tuple[str, dict[str, Any]]]
_HANDLERS: dict[str, Handler] = {}


def handles(*tokens: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for token in tokens:
            _HANDLERS[token] = fn
        return fn

    return register


def _tags_all(inputs: Mapping[str, Any]) -> dict[str, Any]:
    tags = inputs.get("tags")
    return {"tagsAll": dict(tags)} if isinstance(tags, dict) else {}


@handles("aws:ecr/repository:Repository")
def _ecr_repository(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    repo = m.physical_name(name, i)
    url = f"{m.account_id}.dkr.ecr.{m.region}.amazonaws.com/{repo}"
    return repo, {
        "name": repo,
        "arn": m.arn("ecr", f"repository/{repo}"),
        "registryId": m.account_id,
        "repositoryUrl": url,
        **_tags_all(i),
    }


def _digest(*parts: Any) -> str:
    return (
        "sha256:"
        + hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    )


@handles("docker-build:index:Image")
def _docker_image(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    digest = _digest("image", name, i.get("tags"), i.get("platforms"), i.get("context"))
    tags = [t for t in (i.get("tags") or []) if isinstance(t, str)]
    repo = tags[0].rsplit(":", 1)[0] if tags else f"{m.account_id}.dkr.ecr.local/{name}"
    ref = f"{repo}@{digest}"
    return digest, {"digest": digest, "ref": ref, "contextHash": _h(name, n=64)}


@handles("docker-build:index:Index")
def _docker_index(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    tag = str(i.get("tag") or f"{name}:offline")
    digest = _digest("index", name, tag, i.get("sources"))
    repo = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    return digest, {"ref": f"{repo}@{digest}"}


@handles("awsx:ec2:Vpc")
def _awsx_vpc(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    vpc_id = f"vpc-{_h('vpc', name, n=17)}"
    azs = int(i.get("numberOfAvailabilityZones") or 2)
    private = [f"subnet-{_h('private', name, n, n=17)}" for n in range(azs)]
    public = [f"subnet-{_h('public', name, n, n=17)}" for n in range(azs)]
    strategy = str((i.get("natGateways") or {}).get("strategy") or "OnePerAz")
    nats = {"None": 0, "Single": 1}.get(strategy, azs)
    m.nat_gateways[vpc_id] = [f"nat-{_h('nat', name, n, n=17)}" for n in range(nats)]
    return vpc_id, {
        "vpcId": vpc_id,
        "privateSubnetIds": private,
        "publicSubnetIds": public,
        "isolatedSubnetIds": [],
    }


@handles("aws:ec2/securityGroup:SecurityGroup")
def _sg(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sg = f"sg-{_h('sg', name, n=17)}"
    return sg, {
        "name": m.physical_name(name, i),
        "arn": m.arn("ec2", f"security-group/{sg}"),
        **_tags_all(i),
    }


@handles("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _alb(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    lb = m.physical_name(name, i)
    suffix = f"app/{lb}/{_h('alb', name, n=16)}"
    arn = m.arn("elasticloadbalancing", f"loadbalancer/{suffix}")
    scheme = "internal-" if i.get("internal") else ""
    dns = f"{scheme}{lb}-{_h('dns', name, n=10)}.{m.region}.elb.amazonaws.com"
    return arn, {
        "name": lb,
        "arn": arn,
        "arnSuffix": suffix,
        "dnsName": dns,
        "zoneId": "Z2OFFLINEZONE",
        **_tags_all(i),
    }


@handles("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
def _tg(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    tg = m.physical_name(name, i)
    suffix = f"targetgroup/{tg}/{_h('tg', name, n=16)}"
    arn = m.arn("elasticloadbalancing", suffix)
    return arn, {"name": tg, "arn": arn, "arnSuffix": suffix, **_tags_all(i)}


@handles("aws:lb/listener:Listener", "aws:alb/listener:Listener")
def _listener(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # listener/app/<lb-name>/<lb-id>/<listener-id>, like the real thing.
    lb_arn = str(i.get("loadBalancerArn") or "")
    lb_part = lb_arn.split(":loadbalancer/", 1)[-1] if ":loadbalancer/" in lb_arn else ""
    if not lb_part:
        lb_part = f"app/{name}/{_h('lb', name, n=16)}"
    arn = m.arn("elasticloadbalancing", f"listener/{lb_part}/{_h('l', name, n=16)}")
    return arn, {"arn": arn, **_tags_all(i)}


@handles("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
def _rule(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    # listener-rule/app/<lb-name>/<lb-id>/<listener-id>/<rule-id>
    listener = str(i.get("listenerArn") or "")
    part = listener.split(":listener/", 1)[-1] if ":listener/" in listener else ""
    if not part:
        part = f"app/{name}/{_h('lb', name, n=16)}/{_h('l', name, n=16)}"
    arn = m.arn("elasticloadbalancing", f"listener-rule/{part}/{_h('r', name, n=16)}")
    return arn, {"arn": arn, **_tags_all(i)}


@handles("aws:ecs/taskDefinition:TaskDefinition")
def _taskdef(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    family = str(i.get("family") or name)
    arn = m.arn("ecs", f"task-definition/{family}:1")
    return arn, {"arn": arn, "arnWithoutRevision": arn[:-2], "revision": 1, **_tags_all(i)}


@handles("aws:ecs/service:Service")
def _service(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    svc = m.physical_name(name, i)
    cluster_arn = str(i.get("cluster") or m.arn("ecs", "cluster/default"))
    cluster = cluster_arn.rsplit("/", 1)[-1]
    arn = m.arn("ecs", f"service/{cluster}/{svc}")
    return arn, {"name": svc, "arn": arn, **_tags_all(i)}


@handles("aws:iam/role:Role")
def _role(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    role = m.physical_name(name, i)
    path = str(i.get("path") or "/")
    return role, {
        "name": role,
        "arn": m.arn("iam", f"role{path}{role}"),
        "uniqueId": f"AROA{_h('role', name, n=16).upper()}",
        **_tags_all(i),
    }


@handles("aws:kms/key:Key")
def _kms(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    h = _h("kms", name, n=32)
    key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    return key_id, {"keyId": key_id, "arn": m.arn("kms", f"key/{key_id}"), **_tags_all(i)}


@handles("aws:kms/alias:Alias")
def _kms_alias(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    alias = str(i.get("name") or f"alias/{name}")
    return alias, {"name": alias, "arn": m.arn("kms", alias)}


@handles("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
def _bucket(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    bucket = m.physical_name(name, i, key="bucket").lower()
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketDomainName": f"{bucket}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{bucket}.s3.{m.region}.amazonaws.com",
        "region": m.region,
        **_tags_all(i),
    }


@handles("aws:lambda/function:Function")
def _lambda(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fn = m.physical_name(name, i)
    arn = m.arn("lambda", f"function:{fn}")
    invoke = f"arn:aws:apigateway:{m.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    return fn, {
        "name": fn,
        "arn": arn,
        "qualifiedArn": f"{arn}:$LATEST",
        "invokeArn": invoke,
        "version": "$LATEST",
        **_tags_all(i),
    }


@handles("aws:secretsmanager/secret:Secret")
def _secret(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    secret = m.physical_name(name, i)
    arn = m.arn("secretsmanager", f"secret:{secret}-{_h('s', name, n=6)}")
    return arn, {"name": secret, "arn": arn, **_tags_all(i)}


@handles(
    "aws:codestarconnections/connection:Connection",
    "aws:codeconnections/connection:Connection",
)
def _connection(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    h = _h("conn", name, n=32)
    uuid = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
    service = "codeconnections" if "codeconnections" in name else "codestar-connections"
    arn = m.arn(service, f"connection/{uuid}")
    return arn, {"arn": arn, "connectionStatus": "PENDING", **_tags_all(i)}


@handles("aws:codedeploy/application:Application")
def _cd_app(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    app = m.physical_name(name, i)
    return app, {
        "name": app,
        "arn": m.arn("codedeploy", f"application:{app}"),
        "applicationId": _h("app", name, n=36),
        **_tags_all(i),
    }


@handles("aws:codedeploy/deploymentGroup:DeploymentGroup")
def _cd_group(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    group = str(i.get("deploymentGroupName") or name)
    app = str(i.get("appName") or "app")
    return f"{app}:{group}", {
        "arn": m.arn("codedeploy", f"deploymentgroup:{app}/{group}"),
        "deploymentGroupId": _h("dg", name, n=36),
        **_tags_all(i),
    }


@handles("aws:codedeploy/deploymentConfig:DeploymentConfig")
def _cd_config(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    cfg = str(i.get("deploymentConfigName") or name)
    return cfg, {
        "arn": m.arn("codedeploy", f"deploymentconfig:{cfg}"),
        "deploymentConfigId": _h("dc", name, n=36),
    }


# Resources whose outputs are only their physical name and an ARN built from it:
# token -> (ARN service, ARN resource with {name}, whether the id is the ARN or the name).
_NAMED: dict[str, tuple[str, str, bool]] = {
    "aws:ecs/cluster:Cluster": ("ecs", "cluster/{name}", True),
    "aws:iam/policy:Policy": ("iam", "policy/{name}", True),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "log-group:{name}", False),
    "aws:sns/topic:Topic": ("sns", "{name}", True),
    "aws:codepipeline/pipeline:Pipeline": ("codepipeline", "{name}", False),
    "aws:codebuild/project:Project": ("codebuild", "project/{name}", True),
    "aws:codebuild/reportGroup:ReportGroup": ("codebuild", "report-group/{name}", True),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("cloudwatch", "alarm:{name}", False),
}


def _named(service: str, resource: str, id_is_arn: bool) -> Handler:
    def handler(m: OfflineMocks, name: str, i: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        physical = m.physical_name(name, i)
        arn = m.arn(service, resource.format(name=physical))
        return (arn if id_is_arn else physical), {"name": physical, "arn": arn, **_tags_all(i)}

    return handler


for _token, (_service_ns, _resource, _id_is_arn) in _NAMED.items():
    handles(_token)(_named(_service_ns, _resource, _id_is_arn))
