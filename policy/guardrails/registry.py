"""``ecr-scan-and-kms``: ECR repositories scan images on push and encrypt them with KMS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, Severity

from ._core import GuardrailPolicy, Settings, Subject, as_list, as_mapping, as_str, is_true
from .images import ECR_REPOSITORY

_FIX = (
    "Fix: set imageScanningConfiguration.scanOnPush = true (or enable ENHANCED registry "
    "scanning) and encryptionConfigurations = [{encryptionType: 'KMS', kmsKey: <key ARN>}]."
)


def check_ecr(props: Mapping[str, Any], settings: Settings, subject: Subject) -> Iterator[str]:
    scanning = as_mapping(props.get("imageScanningConfiguration"))
    scan_on_push = scanning is not None and is_true(scanning.get("scanOnPush"))
    registry_scan = str(settings["registryScanType"] or "BASIC").upper()
    if not scan_on_push and registry_scan != "ENHANCED":
        yield (
            f"{subject.label}: images are not scanned on push (scanOnPush is not true). Fix: set "
            "imageScanningConfiguration.scanOnPush = true, or, when the registry uses ENHANCED "
            "scanning (aws.ecr.RegistryScanningConfiguration), set registryScanType: ENHANCED "
            "in this policy's config."
        )
    configurations = [
        m for m in (as_mapping(c) for c in as_list(props.get("encryptionConfigurations"))) if m
    ]
    encryption = configurations[0] if configurations else None
    kind = (as_str(encryption.get("encryptionType")) if encryption else None) or "AES256"
    if kind.upper() not in ("KMS", "KMS_DSSE"):
        shown = "not set (AWS default AES256)" if encryption is None else kind
        yield (
            f"{subject.label}: encryption is {shown}, not KMS. Fix: set encryptionConfigurations "
            "= [{encryptionType: 'KMS', kmsKey: <customer managed key ARN>}] (changing it "
            "replaces the repository)."
        )
    elif settings["requireCustomerManagedKey"] and encryption is not None:
        key = as_str(encryption.get("kmsKey"))
        if not key or "alias/aws/" in key:
            yield (
                f"{subject.label}: KMS encryption uses the AWS managed key aws/ecr; this "
                "organisation requires a customer managed key. Fix: set "
                "encryptionConfigurations[0].kmsKey to your key's ARN."
            )


ECR_SCAN_AND_KMS = GuardrailPolicy(
    name="ecr-scan-and-kms",
    display_name="ECR repositories scan on push and use KMS",
    description=(
        "ECR repositories scan every pushed image (scan on push, or ENHANCED registry "
        "scanning) and encrypt images with KMS."
    ),
    resource_types=(ECR_REPOSITORY,),
    check=check_ecr,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps=_FIX,
    config_properties={
        "registryScanType": {
            "type": "string",
            "enum": ["BASIC", "ENHANCED"],
            "description": (
                "The registry's scanning type. With ENHANCED (Inspector) scanning configured "
                "for the registry, repositories need not set scanOnPush."
            ),
            "default": "BASIC",
        },
        "requireCustomerManagedKey": {
            "type": "boolean",
            "description": "Refuse the AWS managed aws/ecr key; require kmsKey to be set.",
            "default": False,
        },
    },
)
