"""``iam-no-wildcard-actions``: no policy document allows a whole service or every service.

Judged documents: IAM managed and inline policies (``aws:iam/policy``, ``rolePolicy``,
``userPolicy``, ``groupPolicy``, a role's ``inlinePolicies`` and trust policy) and the
resource policies of S3 buckets (``BucketPolicy`` and a ``Bucket``/``BucketV2``'s own
``policy``), KMS keys, ECR repositories and registries, SNS topics, SQS queues and Secrets
Manager secrets (``SecretPolicy`` and a ``Secret``'s own ``policy``).

An ``Allow`` statement fails when an action

* matches every action of a service: the part after ``service:`` is made only of wildcards
  (``*``, ``**``, ``?*``, ``*?``: ``s3:*``, ``s3:**``, ``s3:?*``), or the action is only
  wildcards (``*``, ``**``);
* can match more than one service: the service prefix holds a wildcard (``*:*``,
  ``*:Get*``, ``s*:GetObject``) or there is no ``service:`` prefix at all but a wildcard;
* starts its action name with a wildcard (``iam:*Policy*``, ``s3:*Object``): such a pattern
  cuts across verbs (``iam:*Policy*`` is ``iam:PutRolePolicy``, ``iam:AttachUserPolicy`` …,
  i.e. privilege escalation), so it is not the read-only family a prefix names;

or when the statement uses ``NotAction`` (allow everything except…), unless
``allowNotAction``. ``Deny`` statements may use wildcards. Prefix patterns (``s3:Get*``,
``ecr:Describe*``) are allowed unless ``forbidPartialWildcards`` is ``true``.
``allowedActions`` lists exact patterns accepted anyway (e.g. ``kms:*``).

Attaching an AWS managed policy that grants administrator or full access is the same thing
by other means: ``RolePolicyAttachment`` / ``UserPolicyAttachment`` / ``GroupPolicyAttachment``
/ ``PolicyAttachment`` (``policyArn``), the ``*PolicyAttachmentsExclusive`` resources
(``policyArns``) and a role's ``managedPolicyArns`` fail when they name
``arn:<partition>:iam::aws:policy/[<path>/]<name>`` with ``<name>`` matching
``forbiddenManagedPolicies`` (globs, case-insensitive; default ``AdministratorAccess``,
``PowerUserAccess``, ``IAMFullAccess``; add ``*FullAccess`` to forbid every full-access
policy). Customer managed policies are judged where they are defined (``aws:iam/policy``).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import GuardrailPolicy, Settings, Subject, as_list, as_mapping, as_str

DOCUMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:s3/bucket:Bucket": ("policy",),
    "aws:s3/bucketV2:BucketV2": ("policy",),
    "aws:kms/key:Key": ("policy",),
    "aws:kms/keyPolicy:KeyPolicy": ("policy",),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": ("policy",),
    "aws:ecr/registryPolicy:RegistryPolicy": ("policy",),
    "aws:sns/topic:Topic": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:sqs/queue:Queue": ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:secretsmanager/secret:Secret": ("policy",),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("policy",),
}
# Resources that attach managed policies, and the property naming them (one ARN or a list).
ATTACHMENT_PROPERTIES: dict[str, str] = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "policyArn",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "policyArn",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "policyArn",
    "aws:iam/policyAttachment:PolicyAttachment": "policyArn",
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": "policyArns",
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": "policyArns",
    "aws:iam/role:Role": "managedPolicyArns",
}
ROLE = "aws:iam/role:Role"
DEFAULT_FORBIDDEN_MANAGED_POLICIES = ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess"]

_WILDCARDS = frozenset("*?")
PARTIAL = "partial"
_AWS_MANAGED_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:[^\s]*/)?([^/\s]+)$")

_FIX = (
    "Fix: name each action the principal needs (service:Action), scoped to named resources; "
    "a wildcard action grants every present and future action of the service."
)
_FIX_MANAGED = (
    "Fix: attach a customer managed policy that names the actions the principal needs "
    "instead of an AWS managed administrator / full-access policy."
)


def action_breadth(action: str) -> str | None:
    """How far an action pattern reaches beyond named actions.

    ``None`` for an exact action, :data:`PARTIAL` for a prefix pattern (``s3:Get*``),
    otherwise why it is too broad (every service, several services, a whole service, or a
    pattern that starts with a wildcard and so cuts across verbs).
    """
    text = action.strip()
    if not any(c in _WILDCARDS for c in text):
        return None
    service, colon, name = text.partition(":")
    if not colon:
        if set(text) <= _WILDCARDS:
            return "every action of every service"
        return "actions of any service (no 'service:' prefix)"
    if any(c in _WILDCARDS for c in service):
        if set(service) <= _WILDCARDS:
            return "actions of every service"
        return "actions of more than one service"
    if not name or set(name) <= _WILDCARDS:
        return f"every action of {service}"
    if name[0] in _WILDCARDS:
        return f"{service} actions of every verb (the pattern starts with a wildcard)"
    return PARTIAL


def forbidden_managed_policy(arn: str, patterns: list[str]) -> str | None:
    """The name of the AWS managed policy ``arn`` when it matches a forbidden glob."""
    match = _AWS_MANAGED_ARN_RE.match(arn.strip())
    if match is None:
        return None
    name = match.group(1)
    lowered = name.lower()
    if any(fnmatch.fnmatchcase(lowered, p.strip().lower()) for p in patterns):
        return name
    return None


def _document(raw: Any) -> Mapping[str, Any] | str | None:
    """The parsed document, an error message, or ``None`` when there is none."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            return f"is not valid JSON ({exc})"
        return doc if isinstance(doc, Mapping) else "is not a JSON object"
    mapping = as_mapping(raw)
    return mapping if mapping is not None else "is not a policy document"


def document_problems(
    document: Mapping[str, Any],
    allowed: frozenset[str],
    allow_not_action: bool,
    forbid_partial: bool = False,
) -> Iterator[str]:
    """One message per ``Allow`` statement problem in ``document``."""
    statements = document.get("Statement")
    items = [statements] if isinstance(statements, Mapping) else as_list(statements)
    for index, raw in enumerate(items):
        statement = as_mapping(raw)
        if statement is None or as_str(statement.get("Effect")) != "Allow":
            continue
        sid = as_str(statement.get("Sid"))
        label = f"statement '{sid}'" if sid else f"statement #{index + 1}"
        action = statement.get("Action")
        actions = [action] if isinstance(action, str) else as_list(action)
        wildcards: list[str] = []
        for a in actions:
            if not isinstance(a, str) or a.strip().lower() in allowed:
                continue
            breadth = action_breadth(a)
            if breadth == PARTIAL and forbid_partial:
                wildcards.append(f"{a!r} (a partial wildcard; forbidPartialWildcards is on)")
            elif breadth is not None and breadth != PARTIAL:
                wildcards.append(f"{a!r} ({breadth})")
        if wildcards:
            yield f"{label} allows {', '.join(wildcards)}"
        if statement.get("NotAction") is not None and not allow_not_action:
            yield f"{label} allows NotAction (everything except the listed actions)"


def _managed_policies(
    props: Mapping[str, Any], settings: Settings, subject: Subject
) -> Iterator[str]:
    prop = ATTACHMENT_PROPERTIES.get(subject.type)
    if prop is None:
        return
    raw = props.get(prop)
    arns = [raw] if isinstance(raw, str) else as_list(raw)
    patterns = settings.strings("forbiddenManagedPolicies")
    for arn in arns:
        if not isinstance(arn, str):
            continue
        name = forbidden_managed_policy(arn, patterns)
        if name is not None:
            yield (
                f"{subject.label}: {prop} attaches the AWS managed policy '{name}' ({arn}), "
                f"which grants administrator or full access. {_FIX_MANAGED}"
            )


def check_iam(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    allowed = frozenset(a.strip().lower() for a in settings.strings("allowedActions"))
    allow_not_action = bool(settings["allowNotAction"])
    forbid_partial = bool(settings["forbidPartialWildcards"])
    documents: list[tuple[str, Any]] = [
        (prop, props.get(prop)) for prop in DOCUMENT_PROPERTIES.get(subject.type, ())
    ]
    if subject.type == ROLE:
        for inline in (as_mapping(p) for p in as_list(props.get("inlinePolicies"))):
            if inline is not None:
                name = as_str(inline.get("name")) or "?"
                documents.append((f"inlinePolicies['{name}']", inline.get("policy")))
    for where, raw in documents:
        document = _document(raw)
        if document is None:
            continue
        if isinstance(document, str):
            yield f"{subject.label}: {where} {document}. Fix: pass json.dumps(<document>)."
            continue
        for problem in document_problems(document, allowed, allow_not_action, forbid_partial):
            yield f"{subject.label}: {where} {problem}. {_FIX}"
    yield from _managed_policies(props, settings, subject)


IAM_NO_WILDCARD_ACTIONS = GuardrailPolicy(
    name="iam-no-wildcard-actions",
    display_name="No wildcard actions in policy documents",
    description=(
        "IAM and resource policy documents never allow a whole service or every service "
        "('*', 'service:*', '*:Get*', 'iam:*Policy*' …), nor NotAction, and no principal gets "
        "an AWS managed administrator / full-access policy: least privilege names every action."
    ),
    resource_types=tuple(dict.fromkeys([*DOCUMENT_PROPERTIES, *ATTACHMENT_PROPERTIES])),
    check=check_iam,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    remediation_steps=_FIX,
    config_properties={
        "allowedActions": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": (
                "Wildcard actions accepted anyway (e.g. 'kms:*' for a key's account-root "
                "administration statement); compared case-insensitively."
            ),
            "default": [],
        },
        "allowNotAction": {
            "type": "boolean",
            "description": "Accept Allow statements that use NotAction.",
            "default": False,
        },
        "forbidPartialWildcards": {
            "type": "boolean",
            "description": (
                "Also refuse prefix patterns such as 's3:Get*' (by default only patterns that "
                "reach a whole service, several services or every verb are refused)."
            ),
            "default": False,
        },
        "forbiddenManagedPolicies": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": (
                "Globs on the names of AWS managed policies (arn:aws:iam::aws:policy/...) that "
                "must not be attached; case-insensitive. Replaces the default list, e.g. "
                "['AdministratorAccess', 'PowerUserAccess', 'IAMFullAccess', '*FullAccess']."
            ),
            "default": DEFAULT_FORBIDDEN_MANAGED_POLICIES,
        },
    },
)
