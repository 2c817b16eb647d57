"""KMS key policies (pure). No ``kms:*``: the owning account gets the named administrative
and cryptographic actions (which include ``kms:PutKeyPolicy``, so the key stays manageable),
and callers add grants for named principals (service principals with conditions, the
environment deploy roles for cross-account artifact decryption)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from components.render.iam import VERSION

ADMIN_ACTIONS: tuple[str, ...] = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
USE_ACTIONS: tuple[str, ...] = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
DECRYPT_ACTIONS: tuple[str, ...] = ("kms:Decrypt", "kms:DescribeKey")
DECRYPT_STATEMENT_SID = "DeployRolesDecrypt"

_ROLE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):"
    r"role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
)


class KmsDocumentError(ValueError):
    """Input that cannot make a valid key policy."""


def key_policy(
    account_id: str,
    *,
    service_principals: Sequence[str] = (),
    service_conditions: dict[str, dict[str, Any]] | None = None,
    decrypt_principals: Sequence[str] = (),
    partition: str = "aws",
) -> dict[str, Any]:
    """A key policy. In a key policy ``Resource: "*"`` means "this key" (AWS's only form).

    ``decrypt_principals`` are IAM role ARNs (the environment deploy roles) that may use
    ``kms:Decrypt`` / ``kms:DescribeKey``. They are **not** the statement's principals:
    KMS rejects a key policy whose principals do not exist yet (``CreateKey`` /
    ``PutKeyPolicy``: "The principals in the key policy must exist and be visible to KMS",
    ``MalformedPolicyDocumentException``), and the tooling stack comes up before the
    environment stacks create those roles. The statement's principals are the roles'
    distinct **account roots**, with an ``ArnEquals`` condition on ``aws:PrincipalArn``
    naming the exact role ARNs (condition values are not checked for existence), so only
    those roles are granted - and a role re-created under the same name still matches.
    A cross-account role also needs ``kms:Decrypt`` on this key in its identity policy.
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": sorted(set(ADMIN_ACTIONS) | set(USE_ACTIONS)),
            "Resource": "*",
        }
    ]
    if service_principals:
        statement: dict[str, Any] = {
            "Sid": "ServicesUseKey",
            "Effect": "Allow",
            "Principal": {"Service": sorted(service_principals)},
            "Action": sorted(USE_ACTIONS),
            "Resource": "*",
        }
        if service_conditions:
            statement["Condition"] = service_conditions
        statements.append(statement)
    if decrypt_principals:
        roots, role_arns = _roots_and_roles(decrypt_principals, partition=partition)
        statements.append(
            {
                "Sid": DECRYPT_STATEMENT_SID,
                "Effect": "Allow",
                "Principal": {"AWS": _one_or_list(roots)},
                "Action": sorted(DECRYPT_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": _one_or_list(role_arns)}},
            }
        )
    return {"Version": VERSION, "Statement": statements}


def _roots_and_roles(arns: Sequence[str], *, partition: str) -> tuple[list[str], list[str]]:
    """The distinct account roots and the sorted distinct role ARNs of ``arns``."""
    if isinstance(arns, str):
        raise KmsDocumentError(
            f"decrypt_principals: {arns!r} is a string; pass a list of IAM role ARNs"
        )
    accounts: set[str] = set()
    for index, arn in enumerate(arns):
        match = _ROLE_ARN_RE.match(arn) if isinstance(arn, str) else None
        if not match:
            raise KmsDocumentError(
                f"decrypt_principals[{index}]: {arn!r} is not an IAM role ARN; use "
                f"arn:{partition}:iam::<12-digit account>:role/<name> (no wildcards)"
            )
        if match.group("partition") != partition:
            raise KmsDocumentError(
                f"decrypt_principals[{index}]: {arn!r} is in partition "
                f"{match.group('partition')!r}; the key is in partition {partition!r}, and a "
                "key can only be used from its own partition"
            )
        accounts.add(match.group("account"))
    roots = [f"arn:{partition}:iam::{account}:root" for account in sorted(accounts)]
    return roots, sorted(set(arns))


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)
