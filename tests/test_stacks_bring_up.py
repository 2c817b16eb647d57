"""First bring-up from empty accounts: `tooling` → `dev` → `stage` → `prod`, each a plain
`pulumi up` (README "Stacks, accounts and bring-up order", DESIGN §2).

AWS validates the principals of resource-based policies when they are written: an IAM
trust policy, KMS key policy, S3 bucket policy, SNS topic / SQS queue policy, ECR
repository policy, Secrets Manager resource policy or Lambda permission that names a role
which does not exist yet fails with "invalid principal". Condition values
(``aws:PrincipalArn``, ``aws:SourceArn``, ``aws:SourceAccount``) are not validated.

The audit, over every recorded resource of every example stack:

* every principal in a principal-validating policy is (a) ``*``, a service principal or an
  account (root ARN or bare id), or (b) a role or user of the same stack that the policy
  resource depends on - through ``depends_on`` or an ``Output`` of the role (the recorded
  ``dependsOn`` holds both), directly, through a component it depends on (which waits for
  all its children) or through its parent's dependencies - or (c) a role or user of an
  EARLIER stack in the bring-up order (environment deploy roles trust the tooling
  deployer role);
* a role ARN of the same stack anywhere else in a resource's inputs (``serviceRole``,
  ``executionRoleArn``, a Lambda's ``role``, …, not identity-policy ``Resource`` lists or
  conditions, which AWS does not check) is a dependency of that resource;
* the pipeline's failure notification rule is created after the topic policy and the key
  policy that let codestar-notifications publish to its encrypted topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from components.testing import RecordedResource, Recording, cached_render
from components.testing.engine import PROJECT_ROOT, parse_stack_file, render

BRING_UP_ORDER = ("tooling", "dev", "stage", "prod")
ACCOUNT_IDS = ("111111111111", "222222222222", "333333333333", "444444444444")

_ACCOUNT_ROOT = re.compile(r"^(\d{12}|arn:aws[\w-]*:iam::\d{12}:root)$")
_IAM_PRINCIPAL = re.compile(r"^arn:aws[\w-]*:iam::\d{12}:(role|user)/")
_ROLE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]+")
#: Resource types whose policy documents are identity policies: no Principal, and AWS does
#: not check that the roles named in their ``Resource`` lists exist.
_IDENTITY_POLICY_TYPES = frozenset(
    {
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
_LAMBDA_PERMISSION = "aws:lambda/permission:Permission"


# --------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------
def _json_doc(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def _statements(doc: Any) -> list[dict[str, Any]]:
    if not isinstance(doc, dict):
        return []
    stmts = doc.get("Statement")
    if isinstance(stmts, dict):
        return [stmts]
    return [s for s in stmts or [] if isinstance(s, dict)]


def policy_principals(res: RecordedResource) -> Iterator[tuple[str, str]]:
    """``(where, principal)`` for every principal that AWS validates when ``res`` is written:
    ``Principal`` / ``NotPrincipal`` of any resource-based policy document among its
    inputs, and a Lambda permission's ``principal``."""
    if res.type == _LAMBDA_PERMISSION:
        principal = res.inputs.get("principal")
        if isinstance(principal, str):
            yield "principal", principal
        return
    if res.type in _IDENTITY_POLICY_TYPES:
        return
    for key, value in res.inputs.items():
        for i, stmt in enumerate(_statements(_json_doc(value))):
            sid = stmt.get("Sid") or f"Statement[{i}]"
            for field in ("Principal", "NotPrincipal"):
                principal = stmt.get(field)
                if principal is None:
                    continue
                if isinstance(principal, str):
                    yield f"{key} {sid} {field}", principal
                    continue
                for kind, values in principal.items():
                    if kind != "AWS":  # Service, Federated, CanonicalUser: not stack-owned
                        continue
                    for v in values if isinstance(values, list) else [values]:
                        yield f"{key} {sid} {field}.AWS", str(v)


def _iam_principals(rec: Recording) -> dict[str, RecordedResource]:
    """Role and user ARNs this stack creates → the resource that creates them."""
    out: dict[str, RecordedResource] = {}
    for res in rec.find("aws:iam/role:Role") + rec.find("aws:iam/user:User"):
        arn = res.outputs.get("arn")
        if isinstance(arn, str):
            out[arn] = res
    return out


def dependencies(rec: Recording, res: RecordedResource) -> set[str]:
    """Every URN ``res`` waits for on ``pulumi up``: its ``dependsOn`` (explicit and from
    Output inputs) transitively, a component dependency expanded to all its children, and
    its parents' dependencies."""
    by_urn = {r.urn: r for r in rec}
    children: dict[str, list[str]] = {}
    for r in rec:
        if r.parent:
            children.setdefault(r.parent, []).append(r.urn)
    seen: set[str] = set()
    todo: list[str] = []
    node: RecordedResource | None = res
    while node is not None:  # the resource itself and its parent chain
        todo.extend(node.options.get("dependsOn", []))
        node = by_urn.get(node.parent) if node.parent else None
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo.extend(children.get(urn, []))
        dep = by_urn.get(urn)
        if dep is not None:
            todo.extend(dep.options.get("dependsOn", []))
    return seen


def principal_violations(recordings: Sequence[Recording]) -> list[str]:
    """Principals that would fail a first ``pulumi up`` of ``recordings``, given in
    bring-up order (each stack may name principals of the stacks before it)."""
    problems: list[str] = []
    earlier: dict[str, str] = {}  # principal ARN → stack that creates it
    for rec in recordings:
        own = _iam_principals(rec)
        for res in rec:
            for where, principal in policy_principals(res):
                if principal == "*" or _ACCOUNT_ROOT.match(principal):
                    continue
                if not _IAM_PRINCIPAL.match(principal):
                    if principal.endswith(".amazonaws.com"):  # a Lambda permission's service
                        continue
                    problems.append(
                        f"{rec.stack}: {res.type} {res.name} {where}: {principal!r} is not an "
                        "account, a service principal or a role/user ARN"
                    )
                    continue
                creator = own.get(principal)
                if creator is not None:
                    if creator.urn == res.urn or creator.urn not in dependencies(rec, res):
                        problems.append(
                            f"{rec.stack}: {res.type} {res.name} {where}: {principal} is "
                            f"created by {creator.name} in this stack, but {res.name} does "
                            "not depend on it (use the role's .arn Output or depends_on)"
                        )
                    continue
                if principal in earlier:
                    continue
                problems.append(
                    f"{rec.stack}: {res.type} {res.name} {where}: {principal} does not exist "
                    "when this stack first comes up (not created by it nor by an earlier "
                    "stack); use the account root with an aws:PrincipalArn condition"
                )
        for arn in own:
            earlier.setdefault(arn, rec.stack)
    return problems


def _non_policy_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Strings in an input, skipping policy documents (their principals are checked by
    :func:`principal_violations`; their ``Resource`` and ``Condition`` ARNs are not
    validated by AWS)."""
    if isinstance(value, str):
        if _json_doc(value) is not None and _statements(_json_doc(value)):
            return
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_policy_strings(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_policy_strings(v, f"{path}[{i}]")


def role_reference_violations(rec: Recording) -> list[str]:
    """Resources that take a role of the same stack (``serviceRole``, ``roleArn``,
    ``executionRoleArn``, …) without depending on it: a race on the first ``up``."""
    own = _iam_principals(rec)
    problems = []
    for res in rec:
        if res.type in _IDENTITY_POLICY_TYPES:
            continue
        for path, text in _non_policy_strings(res.inputs, ""):
            for arn in _ROLE_ARN.findall(text):
                creator = own.get(arn)
                if creator is None or creator.urn == res.urn:
                    continue
                if creator.urn not in dependencies(rec, res):
                    problems.append(
                        f"{rec.stack}: {res.type} {res.name} {path.lstrip('.')}: {arn} is "
                        f"created by {creator.name} but {res.name} does not depend on it"
                    )
    return problems


# --------------------------------------------------------------------------------------
# The example stacks
# --------------------------------------------------------------------------------------
def _bring_up() -> list[Recording]:
    return [cached_render(stack) for stack in BRING_UP_ORDER]


def _single_account_tooling() -> Recording:
    text = (PROJECT_ROOT / "Pulumi.tooling.yaml").read_text(encoding="utf-8")
    for account in ACCOUNT_IDS[1:]:
        text = text.replace(f'"{account}"', f'"{ACCOUNT_IDS[0]}"')
    stack_file = parse_stack_file(text)
    assert set(stack_file.config["dotnet-delivery:accounts"]["environments"].values()) == {
        ACCOUNT_IDS[0]
    }
    return render("tooling", stack_file=stack_file)


@pytest.fixture(scope="module")
def bring_up() -> list[Recording]:
    return _bring_up()


@pytest.fixture(scope="module")
def single_account_tooling() -> Recording:
    return _single_account_tooling()


def test_bring_up_order_stacks_render_with_the_example_multi_account_ids(
    bring_up: list[Recording],
) -> None:
    assert [r.stack for r in bring_up] == list(BRING_UP_ORDER)
    for rec, account in zip(bring_up, ACCOUNT_IDS, strict=True):
        roles = rec.find("aws:iam/role:Role")
        assert roles, rec.stack
        assert {r.outputs["arn"].split(":")[4] for r in roles} == {account}, rec.stack


def test_every_validated_principal_exists_when_its_policy_is_written(
    bring_up: list[Recording],
) -> None:
    assert principal_violations(bring_up) == []


def test_the_checker_sees_the_principal_bearing_policies_of_the_example_stacks(
    bring_up: list[Recording],
) -> None:
    """Guards against a checker that passes because it looks at nothing."""
    seen = {
        (rec.stack, res.type, principal)
        for rec in bring_up
        for res in rec
        for _, principal in policy_principals(res)
    }
    tooling_deployer = "arn:aws:iam::111111111111:role/orders-api-tooling-deployer"
    for env in ("dev", "stage", "prod"):
        assert (env, "aws:iam/role:Role", tooling_deployer) in seen
    assert ("tooling", "aws:lambda/permission:Permission", "sns.amazonaws.com") in seen
    types = {t for _, t, _ in seen}
    assert {
        "aws:kms/keyPolicy:KeyPolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:kms/key:Key",
    } <= types


def test_environment_stacks_may_not_be_brought_up_before_tooling(
    bring_up: list[Recording],
) -> None:
    """The deploy roles trust the tooling deployer role: out of order, that is an error."""
    problems = principal_violations([bring_up[1], bring_up[0]])
    assert len(problems) == 1
    assert problems[0].startswith("dev: aws:iam/role:Role deploy-role assumeRolePolicy")
    assert "orders-api-tooling-deployer does not exist" in problems[0]


def test_same_stack_roles_are_dependencies_of_the_resources_that_take_them(
    bring_up: list[Recording],
) -> None:
    assert [p for rec in bring_up for p in role_reference_violations(rec)] == []


def test_single_account_tooling_has_valid_principals_and_ordering(
    single_account_tooling: Recording,
) -> None:
    assert principal_violations([single_account_tooling]) == []
    assert role_reference_violations(single_account_tooling) == []


def test_failure_notification_rule_waits_for_the_topic_and_key_policies(
    bring_up: list[Recording], single_account_tooling: Recording
) -> None:
    for rec in (bring_up[0], single_account_tooling):
        rule = rec.one("aws:codestarnotifications/notificationRule:NotificationRule")
        deps = dependencies(rec, rule)
        topic_arn = rule.inputs["targets"][0]["address"]
        topic_policy = rec.one("aws:sns/topicPolicy:TopicPolicy", {"arn": topic_arn})
        topic = next(r for r in rec.find("aws:sns/topic:Topic") if r.outputs["arn"] == topic_arn)
        key_id = topic.inputs["kmsMasterKeyId"]
        key = next(r for r in rec.find("aws:kms/key:Key") if r.outputs["arn"] == key_id)
        key_policy = rec.one("aws:kms/keyPolicy:KeyPolicy", {"keyId": key.outputs["keyId"]})
        assert topic_policy.urn in deps, rec.stack
        assert key_policy.urn in deps, rec.stack


# --------------------------------------------------------------------------------------
# The checker on hand-made recordings: it must catch a broken policy
# --------------------------------------------------------------------------------------
_STACK_URN = "urn:pulumi:{s}::p::pulumi:pulumi:Stack::p-{s}"


def _res(
    stack: str,
    type_: str,
    name: str,
    inputs: dict[str, Any],
    *,
    depends_on: Sequence[str] = (),
    parent: str | None = None,
    arn: str | None = None,
    custom: bool = True,
) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:pulumi:{stack}::p::{type_}::{name}",
        type=type_,
        name=name,
        parent=parent or _STACK_URN.format(s=stack),
        provider=None,
        custom=custom,
        id=name,
        inputs=inputs,
        outputs={"arn": arn} if arn else {},
        options={"dependsOn": list(depends_on)},
    )


def _role(stack: str, name: str, account: str, trust: dict[str, Any] | None = None) -> Any:
    doc = {"Statement": [{"Effect": "Allow", "Principal": trust or {"Service": "x"}}]}
    return _res(
        stack,
        "aws:iam/role:Role",
        name,
        {"name": name, "assumeRolePolicy": json.dumps(doc)},
        arn=f"arn:aws:iam::{account}:role/{name}",
    )


def _bucket_policy(stack: str, principal: Any, depends_on: Sequence[str] = ()) -> Any:
    doc = {"Statement": [{"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": principal}}]}
    return _res(
        stack,
        "aws:s3/bucketPolicy:BucketPolicy",
        "bp",
        {"policy": json.dumps(doc)},
        depends_on=depends_on,
    )


def _rec(stack: str, *resources: RecordedResource) -> Recording:
    return Recording(project="p", stack=stack, resources=list(resources))


def test_checker_flags_a_same_stack_role_principal_without_a_dependency() -> None:
    role = _role("t", "reader", "111111111111")
    problems = principal_violations(
        [_rec("t", role, _bucket_policy("t", "arn:aws:iam::111111111111:role/reader"))]
    )
    assert problems == [
        "t: aws:s3/bucketPolicy:BucketPolicy bp policy Read Principal.AWS: "
        "arn:aws:iam::111111111111:role/reader is created by reader in this stack, but bp "
        "does not depend on it (use the role's .arn Output or depends_on)"
    ]
    fixed = _bucket_policy("t", "arn:aws:iam::111111111111:role/reader", [role.urn])
    assert principal_violations([_rec("t", role, fixed)]) == []


def test_checker_flags_a_role_of_a_later_stack_and_accepts_an_earlier_one() -> None:
    tooling_role = _role("t", "deployer", "111111111111")
    tooling = _rec(
        "t", tooling_role, _bucket_policy("t", ["arn:aws:iam::222222222222:role/deploy"])
    )
    env = _rec(
        "env",
        _role("env", "deploy", "222222222222", {"AWS": "arn:aws:iam::111111111111:role/deployer"}),
    )
    problems = principal_violations([tooling, env])
    assert len(problems) == 1
    assert "arn:aws:iam::222222222222:role/deploy does not exist" in problems[0]
    assert problems[0].startswith("t: aws:s3/bucketPolicy:BucketPolicy bp policy Read")
    # The fix: the account root (and an aws:PrincipalArn condition, which AWS does not check).
    root = _rec("t", tooling_role, _bucket_policy("t", ["arn:aws:iam::222222222222:root"]))
    assert principal_violations([root, env]) == []


@pytest.mark.parametrize(
    "principal", ["*", "222222222222", "arn:aws:iam::222222222222:root", {"Service": "s3"}]
)
def test_checker_accepts_accounts_services_and_anyone(principal: Any) -> None:
    if isinstance(principal, dict):
        doc = {"Statement": [{"Effect": "Allow", "Principal": principal}]}
        res = _res("t", "aws:sns/topicPolicy:TopicPolicy", "tp", {"policy": json.dumps(doc)})
    else:
        res = _bucket_policy("t", principal)
    assert principal_violations([_rec("t", res)]) == []


def test_checker_follows_components_parents_and_lambda_permissions() -> None:
    component = _res("t", "my:index:Thing", "thing", {}, custom=False)
    role = _res(
        "t",
        "aws:iam/role:Role",
        "r",
        {"name": "r"},
        parent=component.urn,
        arn="arn:aws:iam::111111111111:role/r",
    )
    # Depending on the component waits for all its children, the role among them.
    via_component = _bucket_policy("t", "arn:aws:iam::111111111111:role/r", [component.urn])
    assert principal_violations([_rec("t", component, role, via_component)]) == []
    # A child of a component that depends on the role.
    holder = _res("t", "my:index:Holder", "holder", {}, custom=False, depends_on=[role.urn])
    child = _res(
        "t",
        _LAMBDA_PERMISSION,
        "perm",
        {"principal": "arn:aws:iam::111111111111:role/r"},
        parent=holder.urn,
    )
    assert principal_violations([_rec("t", component, role, holder, child)]) == []
    orphan = _res("t", _LAMBDA_PERMISSION, "perm", {"principal": role.outputs["arn"]})
    problems = principal_violations([_rec("t", component, role, orphan)])
    assert len(problems) == 1 and "perm principal" in problems[0]
    odd = _res("t", _LAMBDA_PERMISSION, "perm", {"principal": "arn:aws:sts::1:assumed-role/x"})
    assert "is not an account" in principal_violations([_rec("t", odd)])[0]


def test_role_reference_checker_flags_a_plain_string_role_arn() -> None:
    role = _role("t", "svc", "111111111111")
    project = _res(
        "t", "aws:codebuild/project:Project", "proj", {"serviceRole": role.outputs["arn"]}
    )
    assert role_reference_violations(_rec("t", role, project)) == [
        "t: aws:codebuild/project:Project proj serviceRole: "
        "arn:aws:iam::111111111111:role/svc is created by svc but proj does not depend on it"
    ]
    wired = _res(
        "t",
        "aws:codebuild/project:Project",
        "proj",
        {"serviceRole": role.outputs["arn"]},
        depends_on=[role.urn],
    )
    assert role_reference_violations(_rec("t", role, wired)) == []
    # Identity-policy Resource lists are not validated by AWS.
    grant = _res(
        "t",
        "aws:iam/rolePolicy:RolePolicy",
        "pass",
        {"policy": json.dumps({"Statement": [{"Resource": [role.outputs["arn"]]}]})},
    )
    assert role_reference_violations(_rec("t", role, grant)) == []
