"""KMS key policies (pure). No ``kms:*``: the owning account gets the named administrative
and cryptographic actions (which include ``kms:PutKeyPolicy``, so the key stays manageable),
and callers add grants for named principals (service principals with conditions, the
environment deploy roles for cross-account artifact decryption)."""

from __future__ import annotations

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


def key_policy(
    account_id: str,
    *,
    service_principals: Sequence[str] = (),
    service_conditions: dict[str, dict[str, Any]] | None = None,
    decrypt_principals: Sequence[str] = (),
    partition: str = "aws",
) -> dict[str, Any]:
    """A key policy. In a key policy ``Resource: "*"`` means "this key" (AWS's only form)."""
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
        statements.append(
            {
                "Sid": "DeployRolesDecrypt",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(decrypt_principals)},
                "Action": sorted(DECRYPT_ACTIONS),
                "Resource": "*",
            }
        )
    return {"Version": VERSION, "Statement": statements}
