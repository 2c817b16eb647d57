"""``iam-no-wildcard-actions``: no policy document allows ``*`` or ``service:*``.

Judged documents: IAM managed and inline policies (``aws:iam/policy``, ``rolePolicy``,
``userPolicy``, ``groupPolicy``, a role's ``inlinePolicies`` and trust policy) and the
resource policies of S3 buckets, KMS keys, ECR repositories and registries, SNS topics, SQS
queues and Secrets Manager secrets. An ``Allow`` statement fails when an action is ``*`` or
``<service>:*``, or when it uses ``NotAction`` (allow everything except…). ``Deny``
statements may use wildcards. Partial wildcards (``s3:Get*``) are allowed.
"""

from __future__ import annotations

import json
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
    "aws:kms/key:Key": ("policy",),
    "aws:kms/keyPolicy:KeyPolicy": ("policy",),
    "aws:ecr/repositoryPolicy:RepositoryPolicy": ("policy",),
    "aws:ecr/registryPolicy:RegistryPolicy": ("policy",),
    "aws:sns/topic:Topic": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:sqs/queue:Queue": ("policy",),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:secretsmanager/secretPolicy:SecretPolicy": ("policy",),
}
ROLE = "aws:iam/role:Role"

_FIX = (
    "Fix: name each action the principal needs (service:Action), scoped to named resources; "
    "a wildcard action grants every present and future action of the service."
)


def is_wildcard_action(action: str) -> bool:
    """``*`` or ``service:*`` (any case, surrounding spaces ignored)."""
    text = action.strip()
    return text == "*" or text.endswith(":*")


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
    document: Mapping[str, Any], allowed: frozenset[str], allow_not_action: bool
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
        wildcards = [
            a
            for a in actions
            if isinstance(a, str) and is_wildcard_action(a) and a.strip().lower() not in allowed
        ]
        if wildcards:
            yield f"{label} allows {', '.join(repr(w) for w in wildcards)}"
        if statement.get("NotAction") is not None and not allow_not_action:
            yield f"{label} allows NotAction (everything except the listed actions)"


def check_iam(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    allowed = frozenset(a.strip().lower() for a in settings.strings("allowedActions"))
    allow_not_action = bool(settings["allowNotAction"])
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
        for problem in document_problems(document, allowed, allow_not_action):
            yield f"{subject.label}: {where} {problem}. {_FIX}"


IAM_NO_WILDCARD_ACTIONS = GuardrailPolicy(
    name="iam-no-wildcard-actions",
    display_name="No wildcard actions in policy documents",
    description=(
        "IAM and resource policy documents never allow '*' or 'service:*' actions, nor "
        "NotAction: least privilege names every action."
    ),
    resource_types=tuple(DOCUMENT_PROPERTIES),
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
    },
)
