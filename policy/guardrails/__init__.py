"""The delivery guardrails: every policy of the ``dotnet-delivery-guardrails`` pack.

``POLICIES`` is the list of ``pulumi_policy`` policy objects. Importing this package (or any
module in it) only builds policy objects; it never starts the policy server, which only
``policy/__main__.py`` does. Imports inside the package are relative so it works both as
``policy.guardrails`` (tests, the offline runner) and as ``guardrails`` (the Pulumi CLI runs
``policy/__main__.py`` from inside ``policy/``).
"""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Policy

from .build import CODEBUILD_PRIVILEGED_ONLY_FOR_IMAGE_BUILDS, CODEPIPELINE_ARTIFACTS_KMS
from .deploy import (
    CODEDEPLOY_ECS_AUTO_ROLLBACK,
    CODEDEPLOY_SERVICE_HAS_DEPLOYMENT_GROUP,
    ECS_BLUE_GREEN_ROLLBACK_ALARMS,
)
from .iam import IAM_NO_WILDCARD_ACTIONS
from .images import ECS_IMAGE_DIGEST_PINNED, NO_LATEST_IMAGE_TAG
from .network import ALB_ACCESS_LOGS_DROP_INVALID_HEADERS, LB_LISTENER_HTTPS_TLS
from .registry import ECR_SCAN_AND_KMS
from .secrets import ACCOUNT_LOCAL_SECRETS
from .workload import ECS_TASK_NON_ROOT_READ_ONLY, LOG_GROUP_RETENTION

PACK_NAME = "dotnet-delivery-guardrails"
# Fallback level for a policy that sets none (every policy here sets its own).
PACK_ENFORCEMENT_LEVEL = EnforcementLevel.ADVISORY

POLICIES: list[Policy] = [
    ECS_IMAGE_DIGEST_PINNED,
    NO_LATEST_IMAGE_TAG,
    ACCOUNT_LOCAL_SECRETS,
    ECR_SCAN_AND_KMS,
    LB_LISTENER_HTTPS_TLS,
    ALB_ACCESS_LOGS_DROP_INVALID_HEADERS,
    CODEDEPLOY_ECS_AUTO_ROLLBACK,
    ECS_BLUE_GREEN_ROLLBACK_ALARMS,
    CODEPIPELINE_ARTIFACTS_KMS,
    CODEBUILD_PRIVILEGED_ONLY_FOR_IMAGE_BUILDS,
    IAM_NO_WILDCARD_ACTIONS,
    ECS_TASK_NON_ROOT_READ_ONLY,
    LOG_GROUP_RETENTION,
    CODEDEPLOY_SERVICE_HAS_DEPLOYMENT_GROUP,
]

__all__ = ["PACK_ENFORCEMENT_LEVEL", "PACK_NAME", "POLICIES"]
