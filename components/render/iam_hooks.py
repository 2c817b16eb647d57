"""IAM documents for the smoke-test and admission hook Lambdas (pure; built with
:mod:`components.render.iam`).

Three roles touch the hook:

* **the hook's execution role** (trusted by ``lambda.amazonaws.com``): writes its own log
  group and, for the CodeDeploy engine, reports the hook verdict -
  :func:`smoke_hook_trust_policy`, :func:`smoke_hook_policy`;
* **the role ECS assumes to invoke lifecycle-hook Lambdas** (native engine, the ``roleArn`` of
  the service's ``DeploymentLifecycleHook``, trusted by ``ecs.amazonaws.com``) -
  :func:`hook_invoker_trust_policy` + :func:`hook_invoke_policy`
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/blue-green-permissions.html);
* the CodeDeploy service role, which invokes the AppSpec hook: :func:`hook_invoke_policy`
  gives the exact statement to add to it.

Finding on ``codedeploy:PutLifecycleEventHookExecutionStatus`` (Service Authorization
Reference, "Actions, resources, and condition keys for AWS CodeDeploy",
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodedeploy.html; the
same data in iann0036/iam-dataset ``aws/iam_definition.json``): the action lists **no resource
type and no condition keys** (its only dependent action is
``codedeploy:CreateCloudFormationDeployment``, for CloudFormation-driven blue/green). IAM
therefore evaluates it against ``*``: a statement naming the deployment group ARN
``arn:{partition}:codedeploy:{region}:{account}:deploymentgroup:{app}/{group}`` would match
nothing and the hook would be denied, leaving the deployment to wait for the hook timeout. The
statement uses ``Resource: "*"`` with that reason recorded. What keeps the hook to its own
deployment group is therefore not IAM but who can invoke it: only CodeDeploy (through the
group's service role, scoped by :func:`hook_invoke_policy` to this one function) hands it a
deployment id, and its code reports only on the id it was handed.

The ECS engine needs nothing beyond logs in the hook's own role: ECS invokes the function with
the invoker role and reads the verdict from the return value, so the hook calls no ECS API.

The optional digest **admission hook** (ECS engine, ``PRE_SCALE_UP``,
:mod:`components.runtime.admission_hook`) reads the green revision and its task definition:
:func:`admission_hook_policy`. Findings (Service Authorization Reference, "Actions, resources,
and condition keys for Amazon Elastic Container Service",
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonelasticcontainerservice.html):
``ecs:DescribeServiceRevisions`` requires two resource types, ``service``
(``arn:{partition}:ecs:{region}:{account}:service/{cluster}/{service}``) and
``service-revision``
(``arn:{partition}:ecs:{region}:{account}:service-revision/{cluster}/{service}/{id}``), so it
is scoped to this one service and its revisions; ``ecs:DescribeTaskDefinition`` lists **no
resource type**, so it can only be granted on ``*`` (it is read-only).
"""

from __future__ import annotations

import re
from typing import Any

from components.render.iam import PolicyError, Statement, assume_role_policy, policy_document

PUT_HOOK_STATUS_STAR_REASON = (
    "codedeploy:PutLifecycleEventHookExecutionStatus supports no resource-level permissions "
    "(Service Authorization Reference lists no resource type or condition key for it); a "
    "deploymentgroup ARN would never match and the hook would be denied"
)

DESCRIBE_TASK_DEFINITION_STAR_REASON = (
    "ecs:DescribeTaskDefinition supports no resource-level permissions (Service Authorization "
    "Reference lists no resource type for it); a task-definition ARN would never match"
)

_PARTITION_RE = re.compile(r"^aws(-[a-z]+)*$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_LOG_GROUP_RE = re.compile(r"^[A-Za-z0-9._/#-]{1,512}$")
_ECS_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_CODEDEPLOY_NAME_RE = re.compile(r"^[A-Za-z0-9._+=,@-]{1,100}$")
_FUNCTION_ARN_RE = re.compile(
    r"^arn:aws(-[a-z]+)*:lambda:[a-z]{2}(-[a-z]+)+-\d{1,2}:\d{12}:function:"
    r"[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9$_-]{1,128})?$"
)


def _check(key: str, value: object, pattern: re.Pattern[str], allowed: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise PolicyError(f"{key}: {value!r} is not valid; use {allowed}")
    return value


def _scope(partition: str, region: str, account_id: str) -> tuple[str, str, str]:
    return (
        _check("partition", partition, _PARTITION_RE, "an AWS partition such as 'aws'"),
        _check("region", region, _REGION_RE, "a region code such as 'eu-west-1'"),
        _check("account_id", account_id, _ACCOUNT_RE, "a 12-digit account id"),
    )


def log_group_arn(*, partition: str, region: str, account_id: str, log_group_name: str) -> str:
    """ARN of one CloudWatch Logs log group (the form ``logs:CreateLogStream`` is checked on)."""
    partition, region, account_id = _scope(partition, region, account_id)
    name = _check(
        "log_group_name",
        log_group_name,
        _LOG_GROUP_RE,
        "1-512 characters of letters, digits and . _ / # - (no wildcards)",
    )
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}"


def deployment_group_arn(
    *, partition: str, region: str, account_id: str, application: str, group: str
) -> str:
    """``arn:{partition}:codedeploy:{region}:{account}:deploymentgroup:{app}/{group}``.

    For actions that do take a deployment group (``codedeploy:CreateDeployment``,
    ``GetDeployment``, ...); see the module docstring for why the hook's report is not one.
    """
    partition, region, account_id = _scope(partition, region, account_id)
    rule = "1-100 characters of letters, digits and . _ + = , @ - (no wildcards)"
    app = _check("codedeploy_application", application, _CODEDEPLOY_NAME_RE, rule)
    grp = _check("codedeploy_group", group, _CODEDEPLOY_NAME_RE, rule)
    return f"arn:{partition}:codedeploy:{region}:{account_id}:deploymentgroup:{app}/{grp}"


def smoke_hook_trust_policy() -> dict[str, Any]:
    """Trust policy of the hook's execution role: only the Lambda service may assume it."""
    return assume_role_policy(services=["lambda.amazonaws.com"])


def smoke_hook_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_name: str,
    codedeploy_application: str | None = None,
    codedeploy_group: str | None = None,
) -> dict[str, Any]:
    """Permissions of the hook's execution role.

    * ``WriteOwnLogs``: ``logs:CreateLogStream`` + ``logs:PutLogEvents`` on its own log group
      and that group's streams only (``log-group:NAME`` and ``log-group:NAME:*``). No
      ``logs:CreateLogGroup``: the group is declared by the stack (retention, KMS), never
      created implicitly by Lambda.
    * ``ReportHookStatus`` (CodeDeploy engine: give both ``codedeploy_application`` and
      ``codedeploy_group``; the native ECS engine gives neither):
      ``codedeploy:PutLifecycleEventHookExecutionStatus`` on ``*`` - see the module docstring.
      The names are still validated, so a wiring mistake fails at render time.
    """
    group_arn = log_group_arn(
        partition=partition, region=region, account_id=account_id, log_group_name=log_group_name
    )
    statements = [
        Statement(
            sid="WriteOwnLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            # ``:*`` covers the group's streams (``:log-stream:NAME``) and the ``NAME:*`` form
            # Lambda's own generated policies use; nothing outside this one log group.
            resources=[group_arn, f"{group_arn}:*"],
        )
    ]
    if (codedeploy_application is None) != (codedeploy_group is None):
        raise PolicyError(
            f"codedeploy_application/codedeploy_group: got {codedeploy_application!r} and "
            f"{codedeploy_group!r}; give both (engine 'codedeploy') or neither (engine 'ecs')"
        )
    if codedeploy_application is not None and codedeploy_group is not None:
        deployment_group_arn(  # validation only: the action cannot be scoped to it
            partition=partition,
            region=region,
            account_id=account_id,
            application=codedeploy_application,
            group=codedeploy_group,
        )
        statements.append(
            Statement(
                sid="ReportHookStatus",
                actions=["codedeploy:PutLifecycleEventHookExecutionStatus"],
                resources=["*"],
                star_resource_reason=PUT_HOOK_STATUS_STAR_REASON,
            )
        )
    return policy_document(statements)


def hook_invoker_trust_policy() -> dict[str, Any]:
    """Trust policy of the role ECS assumes to invoke lifecycle-hook Lambdas."""
    return assume_role_policy(services=["ecs.amazonaws.com"])


def hook_invoke_policy(*, function_arn: str) -> dict[str, Any]:
    """``lambda:InvokeFunction`` on exactly the hook function (the ARN the hook is wired with:
    unqualified, or with the version/alias the hook names)."""
    arn = _check(
        "function_arn",
        function_arn,
        _FUNCTION_ARN_RE,
        "a Lambda function ARN such as arn:aws:lambda:eu-west-1:123456789012:function:name",
    )
    return policy_document(
        [Statement(sid="InvokeSmokeHook", actions=["lambda:InvokeFunction"], resources=[arn])]
    )


def ecs_service_revision_resources(
    *, partition: str, region: str, account_id: str, cluster_name: str, service_name: str
) -> list[str]:
    """The service ARN and the ARN pattern of all of its service revisions (both resource types
    ``ecs:DescribeServiceRevisions`` requires)."""
    partition, region, account_id = _scope(partition, region, account_id)
    rule = "1-255 letters, digits, hyphens and underscores (no wildcards)"
    cluster = _check("cluster_name", cluster_name, _ECS_NAME_RE, rule)
    service = _check("service_name", service_name, _ECS_NAME_RE, rule)
    prefix = f"arn:{partition}:ecs:{region}:{account_id}"
    return [
        f"{prefix}:service/{cluster}/{service}",
        f"{prefix}:service-revision/{cluster}/{service}/*",
    ]


def admission_hook_policy(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_name: str,
    cluster_name: str,
    service_name: str,
) -> dict[str, Any]:
    """Permissions of the digest admission hook's execution role (trust: the same
    :func:`smoke_hook_trust_policy`).

    * ``WriteOwnLogs``: ``logs:CreateLogStream`` + ``logs:PutLogEvents`` on its own log group
      and its streams only (no ``logs:CreateLogGroup``: the stack declares the group).
    * ``DescribeServiceRevisions``: ``ecs:DescribeServiceRevisions`` on this service and its
      revisions only.
    * ``DescribeTaskDefinition``: ``ecs:DescribeTaskDefinition`` on ``*`` - AWS offers no
      resource-level permission for it (see the module docstring); it only reads.
    """
    group_arn = log_group_arn(
        partition=partition, region=region, account_id=account_id, log_group_name=log_group_name
    )
    return policy_document(
        [
            Statement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[group_arn, f"{group_arn}:*"],
            ),
            Statement(
                sid="DescribeServiceRevisions",
                actions=["ecs:DescribeServiceRevisions"],
                resources=ecs_service_revision_resources(
                    partition=partition,
                    region=region,
                    account_id=account_id,
                    cluster_name=cluster_name,
                    service_name=service_name,
                ),
            ),
            Statement(
                sid="DescribeTaskDefinition",
                actions=["ecs:DescribeTaskDefinition"],
                # No resource-level permission exists for this action (module docstring).
                resources=["*"],
                star_resource_reason=DESCRIBE_TASK_DEFINITION_STAR_REASON,
            ),
        ]
    )
