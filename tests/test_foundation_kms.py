"""KMS key policies (components/render/kms.py): cross-account decrypt grants that KMS accepts
before the granted roles exist, no ``kms:*``, every action named."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render import kms
from components.render.iam import to_json

TOOLING = "111111111111"
DEV_ROLE = "arn:aws:iam::222222222222:role/orders-api-dev-deploy"
STAGE_ROLE = "arn:aws:iam::333333333333:role/orders-api-stage-deploy"
PROD_ROLE = "arn:aws:iam::444444444444:role/orders-api-prod-deploy"
# Every action a KMS key policy may name (botocore kms service-2 operations, "kms:" prefixed,
# limited to the ones this module uses - an unknown or misspelt name fails the check below).
KNOWN_ACTIONS = {
    *(f"kms:{op}" for op in ("Decrypt", "DescribeKey", "Encrypt", "GenerateDataKey")),
    *(f"kms:{op}" for op in ("GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo")),
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
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
}


def _policy(decrypt: list[str]) -> dict[str, Any]:
    return kms.key_policy(
        TOOLING,
        service_principals=["codestar-notifications.amazonaws.com"],
        service_conditions={"StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}},
        decrypt_principals=decrypt,
    )


def _statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in policy["Statement"] if s["Sid"] == sid]
    assert len(found) == 1, policy
    return found[0]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _aws_principals(policy: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for s in policy["Statement"]:
        out += _as_list(s.get("Principal", {}).get("AWS", []))
    return out


def test_decrypt_statement_grants_account_roots_conditioned_on_exact_role_arns() -> None:
    policy = _policy([PROD_ROLE, DEV_ROLE, STAGE_ROLE])
    decrypt = _statement(policy, kms.DECRYPT_STATEMENT_SID)
    assert decrypt == {
        "Sid": "DeployRolesDecrypt",
        "Effect": "Allow",
        "Principal": {
            "AWS": [
                "arn:aws:iam::222222222222:root",
                "arn:aws:iam::333333333333:root",
                "arn:aws:iam::444444444444:root",
            ]
        },
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"ArnEquals": {"aws:PrincipalArn": [DEV_ROLE, STAGE_ROLE, PROD_ROLE]}},
    }


def test_one_role_and_shared_account_roots_are_deduplicated() -> None:
    one = _statement(_policy([DEV_ROLE]), kms.DECRYPT_STATEMENT_SID)
    assert one["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert one["Condition"] == {"ArnEquals": {"aws:PrincipalArn": DEV_ROLE}}
    other = "arn:aws:iam::222222222222:role/path/orders-api-dev-other"
    two = _statement(_policy([DEV_ROLE, other, DEV_ROLE]), kms.DECRYPT_STATEMENT_SID)
    assert two["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert two["Condition"]["ArnEquals"]["aws:PrincipalArn"] == sorted([DEV_ROLE, other])


def test_no_role_arn_is_ever_a_principal() -> None:
    roles = [DEV_ROLE, STAGE_ROLE, PROD_ROLE]
    principals = _aws_principals(_policy(roles))
    assert principals, "the policy names AWS principals"
    assert all(p.endswith(":root") for p in principals), principals
    assert not set(principals) & set(roles)


def test_no_decrypt_statement_without_decrypt_principals() -> None:
    policy = _policy([])
    assert [s["Sid"] for s in policy["Statement"]] == ["AccountAdministersKey", "ServicesUseKey"]


def test_admin_statement_names_actions_and_never_kms_star() -> None:
    admin = _statement(_policy([DEV_ROLE]), "AccountAdministersKey")
    assert admin["Principal"] == {"AWS": f"arn:aws:iam::{TOOLING}:root"}
    assert "kms:*" not in admin["Action"]
    # the key stays manageable (KMS's lockout safety check) and usable by the account
    assert {"kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:Decrypt"} <= set(admin["Action"])


def test_every_action_is_named_and_known() -> None:
    for statement in _policy([DEV_ROLE, STAGE_ROLE])["Statement"]:
        actions = _as_list(statement["Action"])
        assert actions
        for action in actions:
            assert "*" not in action, statement
            assert action in KNOWN_ACTIONS, action


def test_service_statement_keeps_its_conditions() -> None:
    services = _statement(_policy([]), "ServicesUseKey")
    assert services["Principal"] == {"Service": ["codestar-notifications.amazonaws.com"]}
    assert services["Condition"] == {
        "StringEquals": {"kms:ViaService": "sns.eu-west-1.amazonaws.com"}
    }


@pytest.mark.parametrize(
    ("arns", "message"),
    [
        (["arn:aws:iam::22222222222:role/x"], "decrypt_principals[0]: 'arn:aws:iam::2222"),
        ([DEV_ROLE, "arn:aws:iam::333333333333:user/bob"], "decrypt_principals[1]"),
        (["arn:aws:iam::333333333333:role/*"], "no wildcards"),
        (["arn:aws-cn:iam::333333333333:role/x"], "partition 'aws-cn'"),
    ],
)
def test_bad_decrypt_principals_are_refused_with_the_value(arns: list[str], message: str) -> None:
    with pytest.raises(kms.KmsDocumentError, match=re.escape(message)):
        _policy(arns)


def test_a_single_string_is_refused_not_split_into_characters() -> None:
    with pytest.raises(kms.KmsDocumentError, match=r"decrypt_principals: .* is a string"):
        kms.key_policy(TOOLING, decrypt_principals=DEV_ROLE)


_accounts = st.from_regex(r"\A[0-9]{12}\Z")
_names = st.from_regex(r"\A[A-Za-z0-9+=,.@_-]{1,20}\Z")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_accounts, _names), min_size=1, max_size=6))
def test_roundtrip_and_grant_match_exactly_the_given_roles(pairs: list[tuple[str, str]]) -> None:
    roles = [f"arn:aws:iam::{a}:role/{n}" for a, n in pairs]
    policy = _policy(roles)
    assert json.loads(to_json(policy)) == policy
    assert json.loads(json.dumps(policy)) == policy
    decrypt = _statement(policy, kms.DECRYPT_STATEMENT_SID)
    roots = _as_list(decrypt["Principal"]["AWS"])
    assert roots == sorted({f"arn:aws:iam::{a}:root" for a, _ in pairs})
    assert _as_list(decrypt["Condition"]["ArnEquals"]["aws:PrincipalArn"]) == sorted(set(roles))
    assert not set(_aws_principals(policy)) & set(roles)
