"""Benchmark: evaluate the policy pack on synthetic stacks of 10,000 and 20,000 resources.

    .venv/bin/python benchmarks/policy_pack.py [--runs 7] [--sizes 10000 20000]

Each stack repeats a 20-resource "service slice" (task definition with two containers and
secrets, CODE_DEPLOY service + deployment group, ECR repository, ALB with HTTPS and HTTP
listeners, target groups, alarms, log groups, IAM role/policies, CodeBuild project, pipeline,
Lambda, bucket, security group) with unique names and values, so every policy - including
the stack policy - runs on its share of the stack.

Prints, per size, the median wall-clock time of ``--runs`` runs (sizes interleaved in each
round), the fastest run, the median CPU time (which neighbours on a shared machine do not
inflate) and the ratio between consecutive sizes (2.0 = linear when sizes double).
Target: under 2 s for 10,000 resources, and doubling the stack at most doubles the time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.testing.policy_runner import evaluate_report

ACCOUNT = "111122223333"
REGION = "eu-west-1"
SLICE = 20


def _res(kind: str, name: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:bench::dotnet-delivery::{kind}::{name}",
        "type": kind,
        "name": name,
        "custom": True,
        "inputs": inputs,
        "outputs": {},
        "options": {"protect": False, "ignoreChanges": [], "dependsOn": []},
        **extra,
    }


def service_slice(i: int) -> list[dict[str, Any]]:
    """20 resources of one service; about half violate something, half comply."""
    n = f"svc{i:05d}"
    digest = f"sha256:{i:064x}"
    repo = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{n}"
    role = f"arn:aws:iam::{ACCOUNT}:role/{n}-exec"
    containers = [
        {
            "name": "api",
            "image": f"{repo}:1.{i % 9}.0-build.{i}-git.a1b2c3d4e5f6@{digest}",
            "user": "1654",
            "readonlyRootFilesystem": True,
            "environment": [
                {"name": "ASPNETCORE_ENVIRONMENT", "value": "Production"},
                {"name": "SERVICE_NAME", "value": n},
            ],
            "secrets": [
                {
                    "name": "ConnectionStrings__Db",
                    "valueFrom": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{n}/db-AbCdEf",
                },
                {"name": "ApiKey", "valueFrom": f"/{n}/api-key"},
            ],
        },
        {"name": "proxy", "image": f"envoy:1.{i % 30}", "essential": False},
    ]
    statement = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"arn:aws:s3:::{n}/*"}
    doc = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    wildcard = json.dumps({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    buildspec = (
        "version: 0.2\nenv:\n  variables:\n    DOTNET_CLI_TELEMETRY_OPTOUT: '1'\n"
        f"    IMAGE_REPO: {repo}\n  parameter-store:\n    NUGET_KEY: /{n}/nuget\n"
        f"  secrets-manager:\n    SONAR_TOKEN: arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
        f"{n}/sonar-AbCdEf:token\n"
        "phases:\n  build:\n    commands:\n"
        f"      - docker buildx build --push -t {repo}:{i} .\n"
    )
    return [
        _res(
            "aws:ecs/taskDefinition:TaskDefinition",
            f"{n}-task",
            {
                "family": n,
                "cpu": "256",
                "memory": "512",
                "executionRoleArn": role,
                "containerDefinitions": json.dumps(containers),
            },
        ),
        _res(
            "aws:ecs/service:Service",
            f"{n}-service",
            {
                "name": n,
                "cluster": f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c{i % 50}",
                "deploymentController": {"type": "CODE_DEPLOY"},
                "desiredCount": 2,
            },
        ),
        _res(
            "aws:codedeploy/deploymentGroup:DeploymentGroup",
            f"{n}-group",
            {
                "appName": n,
                "deploymentGroupName": n,
                "ecsService": {"clusterName": f"c{i % 50}", "serviceName": n if i % 7 else "x"},
                "autoRollbackConfiguration": {
                    "enabled": True,
                    "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
                },
                "alarmConfiguration": {"enabled": True, "alarms": [f"{n}-5xx", f"{n}-p99"]},
            },
        ),
        _res(
            "aws:ecr/repository:Repository",
            f"{n}-repo",
            {
                "name": n,
                "imageTagMutability": "IMMUTABLE" if i % 3 else "MUTABLE",
                "imageScanningConfiguration": {"scanOnPush": True},
                "encryptionConfigurations": [{"encryptionType": "KMS"}],
            },
        ),
        _res("aws:lb/loadBalancer:LoadBalancer", f"{n}-alb", {"loadBalancerType": "application"}),
        _res(
            "aws:lb/listener:Listener",
            f"{n}-https",
            {
                "protocol": "HTTPS",
                "port": 443,
                "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
                "defaultActions": [{"type": "forward", "targetGroupArn": f"arn:tg/{n}"}],
            },
        ),
        _res(
            "aws:lb/listener:Listener",
            f"{n}-http",
            {
                "protocol": "HTTP",
                "port": 80,
                "defaultActions": [
                    {
                        "type": "redirect",
                        "redirect": {"protocol": "HTTPS", "statusCode": "HTTP_301"},
                    }
                ],
            },
        ),
        _res("aws:lb/targetGroup:TargetGroup", f"{n}-blue", {"port": 8080, "protocol": "HTTP"}),
        _res("aws:lb/targetGroup:TargetGroup", f"{n}-green", {"port": 8080, "protocol": "HTTP"}),
        _res("aws:cloudwatch/metricAlarm:MetricAlarm", f"{n}-5xx", {"threshold": 5}),
        _res("aws:cloudwatch/metricAlarm:MetricAlarm", f"{n}-p99", {"threshold": 1.5}),
        _res("aws:cloudwatch/logGroup:LogGroup", f"{n}-logs", {"retentionInDays": 30}),
        _res("aws:cloudwatch/logGroup:LogGroup", f"{n}-audit", {}),
        _res(
            "aws:iam/role:Role",
            f"{n}-exec",
            {
                "assumeRolePolicy": doc,
                "inlinePolicies": [{"name": "read", "policy": doc}],
                "managedPolicyArns": [
                    "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
                ],
            },
        ),
        _res("aws:iam/policy:Policy", f"{n}-policy", {"policy": wildcard if i % 5 == 0 else doc}),
        _res(
            "aws:codebuild/project:Project",
            f"{n}-build",
            {
                "serviceRole": f"arn:aws:iam::{ACCOUNT}:role/{n}-build",
                "environment": {
                    "privilegedMode": True,
                    "environmentVariables": [
                        {"name": "REPO", "value": repo},
                        {"name": "NUGET_KEY", "value": f"/{n}/nuget", "type": "PARAMETER_STORE"},
                    ],
                },
                "source": {"type": "CODEPIPELINE", "buildspec": buildspec},
            },
        ),
        _res(
            "aws:codepipeline/pipeline:Pipeline",
            f"{n}-pipeline",
            {
                "artifactStores": [
                    {
                        "location": f"{n}-artifacts",
                        "type": "S3",
                        "encryptionKey": {"type": "KMS", "id": f"arn:kms/{n}"},
                    }
                ]
            },
        ),
        _res(
            "aws:lambda/function:Function",
            f"{n}-hook",
            {"packageType": "Zip", "environment": {"variables": {"TARGET_URL": f"https://{n}"}}},
        ),
        _res("aws:s3/bucket:Bucket", f"{n}-bucket", {"bucket": f"{n}-bucket", "policy": doc}),
        _res("aws:ec2/securityGroup:SecurityGroup", f"{n}-sg", {"vpcId": "vpc-1"}),
    ]


def synthetic_stack(size: int) -> list[dict[str, Any]]:
    stack = [_res("pulumi:pulumi:Stack", "dotnet-delivery-bench", {}, custom=False)]
    i = 0
    while len(stack) < size:
        stack.extend(service_slice(i))
        i += 1
    return stack[:size]


def measure(sizes: list[int], runs: int) -> dict[int, dict[str, float]]:
    """Wall-clock and CPU seconds per size; sizes are interleaved in every round so load
    from other processes on a shared machine drifts over all sizes alike."""
    stacks = {size: synthetic_stack(size) for size in sizes}
    evaluate_report(stacks[sizes[0]][:200])  # warm imports and caches outside the timing
    wall: dict[int, list[float]] = {size: [] for size in sizes}
    cpu: dict[int, list[float]] = {size: [] for size in sizes}
    found: dict[int, int] = {}
    for _ in range(runs):
        for size in sizes:
            start, start_cpu = time.perf_counter(), time.process_time()
            report = evaluate_report(stacks[size])
            wall[size].append(time.perf_counter() - start)
            cpu[size].append(time.process_time() - start_cpu)
            found[size] = len(report.violations)
    return {
        size: {
            "wall": statistics.median(wall[size]),
            "wall_min": min(wall[size]),
            "cpu": statistics.median(cpu[size]),
            "violations": found[size],
        }
        for size in sizes
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    args = parser.parse_args(argv)
    print(f"median of {args.runs} interleaved runs; load average: {os.getloadavg()[0]:.2f}")
    results = measure(args.sizes, args.runs)
    print(
        f"{'resources':>10} {'wall s':>8} {'min s':>8} {'cpu s':>8} {'ms/1k':>7} "
        f"{'ratio':>6} {'violations':>10}"
    )
    previous: dict[str, float] | None = None
    for size in args.sizes:
        r = results[size]
        ratio = f"{r['wall'] / previous['wall']:.2f}" if previous else "-"
        per_k = 1000 * r["wall"] / (size / 1000)
        print(
            f"{size:>10} {r['wall']:>8.3f} {r['wall_min']:>8.3f} {r['cpu']:>8.3f} {per_k:>7.1f} "
            f"{ratio:>6} {int(r['violations']):>10}"
        )
        previous = r
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
