"""ECR repository documents (pure): lifecycle policy, pull policy, tag-mutability exclusions.

Plain ``dict`` / ``list`` values ready for ``json.dumps`` (use :func:`components.render.iam.to_json`
for stable text). Each function validates its input and raises :class:`EcrDocumentError` with a
message naming the argument, the value and what is allowed.

Release tags are the tag scheme of :mod:`components.render.versioning`
(``1.8.0-build.247-git.a1b2c3d4e5f6``, or ``2.0.0-rc.1.build.5-git.…`` for a pre-release):
they start with a digit and always contain ``build.<n>-git.``, which
:data:`RELEASE_TAG_PATTERN` matches. Dev and cache tag prefixes may never start with a digit,
so no pattern for them can reach a release tag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Matches every tag versioning.image_tag() produces: "<SemVer>-build.<n>-git.<sha>" and
# "<SemVer-pre>.build.<n>-git.<sha>". The lifecycle rules prefix it with the leading digit
# ("1*build.*-git.*": three wildcards; ECR allows four per pattern).
RELEASE_TAG_PATTERN = "*build.*-git.*"
# Per-platform images of a multi-arch release are pushed under "staging-<build>-<sha12>-<arch>"
# (components.render.buildspec.staging_tag) until the join publishes the manifest list with
# the release tag; they stay mutable. This project never expires them (components/image.py
# passes staging_tag_prefix=None: they are the images every release's manifest list
# references); lifecycle_policy can still add the rule for a team that wants it.
STAGING_TAG_PREFIX = "staging-"
STAGING_EXPIRY_DAYS = 1
PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
PULL_STATEMENT_SID = "PullFromEnvironmentTaskExecutionRoles"
# ECR limits (botocore ecr service-2: ImageTagMutabilityExclusionFilters max 5, filter
# value ^[0-9a-zA-Z._*-]{1,128}$ with at most 2 wildcards; lifecycle tagPatternList entries
# at most 4 wildcards).
MAX_EXCLUSION_FILTERS = 5
MAX_EXCLUSION_FILTER_LENGTH = 128
MAX_PATTERN_WILDCARDS = 4

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,126}$")
_ROLE_ARN_RE = re.compile(
    r"^arn:(?P<partition>aws|aws-cn|aws-us-gov):iam::(?P<account>\d{12}):"
    r"role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}$"
)


class EcrDocumentError(ValueError):
    """Input that cannot make a valid, safe ECR document."""


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EcrDocumentError(f"{name}: {value!r} is not allowed; use a whole number of 1 or more")
    return value


def _prefix(name: str, value: object) -> str:
    if not isinstance(value, str) or not _PREFIX_RE.match(value):
        raise EcrDocumentError(
            f"{name}: {value!r} is not a tag prefix; use 1-127 characters from "
            "[A-Za-z0-9._-], starting with a letter, digit or '_' (no wildcards)"
        )
    return value


def _non_release_prefix(name: str, value: object) -> str:
    prefix = _prefix(name, value)
    if prefix[0].isdigit():
        raise EcrDocumentError(
            f"{name}: {prefix!r} starts with a digit, so '{prefix}*' could match release tags "
            "(SemVer, e.g. 1.8.0-build.247-git.a1b2c3d4e5f6); use a prefix that starts with a "
            "letter or '_', such as 'dev-'"
        )
    return prefix


# --------------------------------------------------------------------------- lifecycle


def lifecycle_policy(
    keep_release_images: int,
    untagged_expiry_days: int,
    release_tag_prefixes: list[str] | None = None,
    dev_tag_prefix: str | None = None,
    *,
    dev_expiry_days: int | None = None,
    staging_tag_prefix: str | None = None,
    staging_expiry_days: int = STAGING_EXPIRY_DAYS,
) -> dict[str, Any]:
    """An ECR lifecycle policy: keep the newest release images, expire dev and untagged ones.

    Rules, in priority order:

    1. release images: expire all but the newest ``keep_release_images``. By default there is
       one rule per leading digit ``d`` with the pattern ``d*build.*-git.*``: every release
       tag starts with a digit (SemVer) and no dev tag can (the dev prefix may not), so a dev
       image can never be counted as a release and push real releases out of the window.
       The cost is that the count applies per leading digit of the major version: the newest
       N release images are always kept, plus up to N of an older major line (handy for a
       rollback across a major bump). With ``release_tag_prefixes``, each prefix gets its own
       rule: ECR ANDs the entries of one ``tagPatternList`` (an image must match all of
       them), so several prefixes in one rule would select almost nothing.
    2. staging images (``staging_tag_prefix``, normally :data:`STAGING_TAG_PREFIX`): the
       per-platform images a batch build pushes before its join; expire
       ``staging_expiry_days`` (default 1) after push. Like the dev prefix it may not start
       with a digit, so the rule never selects a release tag. A platform image that a
       published manifest list references is not deleted: ECR refuses to delete an image a
       manifest list references (``ImageReferencedByManifestList``), so only the images of
       batches that never published (a failed gate, a failed join) go away.
    3. dev images (``dev_tag_prefix``): expire ``dev_expiry_days`` (default
       ``untagged_expiry_days``) after push.
    4. untagged images: expire ``untagged_expiry_days`` after push.

    Release rules come first because an image that matches a higher-priority rule's tag
    selection is never expired by a lower one: a release digest that someone also tagged
    ``dev-…`` is not expired by the dev rule while it is among the newest N. The per-platform
    manifests of a multi-arch image are untagged children of the tagged index; ECR refuses
    to delete an image a manifest list still references (``ImageReferencedByManifestList``),
    so rule 3 reclaims them once their index is gone. No rule uses ``tagStatus: any``, so
    tags the policy does not know (build-cache refs) are kept.
    """
    keep = _positive_int("keep_release_images", keep_release_images)
    untagged_days = _positive_int("untagged_expiry_days", untagged_expiry_days)
    dev_days = (
        untagged_days
        if dev_expiry_days is None
        else _positive_int("dev_expiry_days", dev_expiry_days)
    )

    release_selections: list[tuple[str, str]] = []
    if release_tag_prefixes is None:
        for digit in "0123456789":
            release_selections.append(
                (
                    f"{digit}{RELEASE_TAG_PATTERN}",
                    f"Keep the newest {keep} release images of majors starting with {digit}",
                )
            )
    else:
        if not release_tag_prefixes:
            raise EcrDocumentError(
                "release_tag_prefixes: [] selects no release image; leave it out to use the "
                f"release tag scheme ({RELEASE_TAG_PATTERN!r}) or name at least one prefix"
            )
        prefixes = [
            _prefix(f"release_tag_prefixes[{i}]", p) for i, p in enumerate(release_tag_prefixes)
        ]
        if len(set(prefixes)) != len(prefixes):
            raise EcrDocumentError(f"release_tag_prefixes: {prefixes!r} has duplicates")
        for prefix in prefixes:
            release_selections.append(
                (f"{prefix}*", f"Keep the newest {keep} release images tagged {prefix}*")
            )

    staging_days = _positive_int("staging_expiry_days", staging_expiry_days)
    staging_prefix: str | None = None
    if staging_tag_prefix is not None:
        staging_prefix = _non_release_prefix("staging_tag_prefix", staging_tag_prefix)
        for pattern, _ in release_selections if release_tag_prefixes is not None else []:
            release_prefix = pattern[:-1]
            if release_prefix.startswith(staging_prefix) or staging_prefix.startswith(
                release_prefix
            ):
                raise EcrDocumentError(
                    f"staging_tag_prefix: {staging_prefix!r} overlaps release tag prefix "
                    f"{release_prefix!r}; a tag could be both a staging and a release image"
                )

    dev_prefix: str | None = None
    if dev_tag_prefix is not None:
        dev_prefix = _non_release_prefix("dev_tag_prefix", dev_tag_prefix)
        for pattern, _ in release_selections if release_tag_prefixes is not None else []:
            release_prefix = pattern[:-1]
            if release_prefix.startswith(dev_prefix) or dev_prefix.startswith(release_prefix):
                raise EcrDocumentError(
                    f"dev_tag_prefix: {dev_prefix!r} overlaps release tag prefix "
                    f"{release_prefix!r}; a tag could be both a dev and a release image"
                )
        if staging_prefix is not None and (
            dev_prefix.startswith(staging_prefix) or staging_prefix.startswith(dev_prefix)
        ):
            raise EcrDocumentError(
                f"dev_tag_prefix: {dev_prefix!r} overlaps staging_tag_prefix "
                f"{staging_prefix!r}; dev and staging images need different expiry rules"
            )

    rules: list[dict[str, Any]] = []
    for pattern, description in release_selections:
        rules.append(
            {
                "rulePriority": len(rules) + 1,
                "description": description,
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [pattern],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep,
                },
                "action": {"type": "expire"},
            }
        )
    if staging_prefix is not None:
        rules.append(
            {
                "rulePriority": len(rules) + 1,
                "description": (
                    f"Expire staging images ({staging_prefix}*) {staging_days} days after push"
                ),
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [f"{staging_prefix}*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": staging_days,
                },
                "action": {"type": "expire"},
            }
        )
    if dev_prefix is not None:
        rules.append(
            {
                "rulePriority": len(rules) + 1,
                "description": f"Expire dev images ({dev_prefix}*) {dev_days} days after push",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [f"{dev_prefix}*"],
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": dev_days,
                },
                "action": {"type": "expire"},
            }
        )
    rules.append(
        {
            "rulePriority": len(rules) + 1,
            "description": f"Expire untagged images {untagged_days} days after push",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_days,
            },
            "action": {"type": "expire"},
        }
    )
    document = {"rules": rules}
    problems = lifecycle_policy_problems(document)
    if problems:  # pragma: no cover - the builder above only makes valid rules
        raise EcrDocumentError("; ".join(problems))
    return document


def lifecycle_policy_problems(document: Mapping[str, Any]) -> list[str]:
    """Why ECR would reject ``document`` (empty when it is a valid lifecycle policy).

    Checks the documented rules: unique ``rulePriority`` values; ``tagStatus`` one of
    tagged/untagged/any; ``tagged`` needs ``tagPatternList`` or ``tagPrefixList`` (not both),
    ``untagged``/``any`` take neither; at most one ``any`` rule and it has the highest priority;
    at most four wildcards per pattern; ``countType`` imageCountMoreThan (no countUnit) or
    sinceImagePushed (countUnit days); ``countNumber`` a positive integer; action expire.
    """
    problems: list[str] = []
    rules = document.get("rules")
    if not isinstance(rules, list) or not rules:
        return ["rules: a lifecycle policy needs a non-empty list of rules"]
    priorities: list[int] = []
    any_priorities: list[int] = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        priority = rule.get("rulePriority")
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
            problems.append(f"{where}.rulePriority: {priority!r} is not a positive integer")
            continue
        priorities.append(priority)
        selection = rule.get("selection", {})
        status = selection.get("tagStatus")
        patterns = selection.get("tagPatternList")
        prefixes = selection.get("tagPrefixList")
        if status not in ("tagged", "untagged", "any"):
            problems.append(f"{where}.selection.tagStatus: {status!r} is not tagged/untagged/any")
        if status == "tagged":
            if (patterns is None) == (prefixes is None):
                problems.append(
                    f"{where}: tagStatus tagged needs exactly one of tagPatternList, tagPrefixList"
                )
            for pattern in patterns or []:
                if pattern.count("*") > MAX_PATTERN_WILDCARDS:
                    problems.append(
                        f"{where}: pattern {pattern!r} has more than "
                        f"{MAX_PATTERN_WILDCARDS} wildcards"
                    )
            for entry in [*(patterns or []), *(prefixes or [])]:
                if not entry:
                    problems.append(f"{where}: empty tag pattern or prefix")
        elif patterns is not None or prefixes is not None:
            problems.append(f"{where}: tagStatus {status} takes no tagPatternList/tagPrefixList")
        if status == "any":
            any_priorities.append(priority)
        count_type = selection.get("countType")
        unit = selection.get("countUnit")
        if count_type == "imageCountMoreThan":
            if unit is not None:
                problems.append(f"{where}: imageCountMoreThan takes no countUnit")
        elif count_type == "sinceImagePushed":
            if unit != "days":
                problems.append(f"{where}: sinceImagePushed needs countUnit 'days'")
        else:
            problems.append(f"{where}.selection.countType: {count_type!r} is not supported")
        number = selection.get("countNumber")
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            problems.append(f"{where}.selection.countNumber: {number!r} is not a positive integer")
        if rule.get("action") != {"type": "expire"}:
            problems.append(f"{where}.action: {rule.get('action')!r} is not {{'type': 'expire'}}")
    if len(set(priorities)) != len(priorities):
        problems.append(f"rulePriority values are not unique: {priorities}")
    if len(any_priorities) > 1:
        problems.append("more than one rule has tagStatus any")
    if any_priorities and priorities and any_priorities[0] != max(priorities):
        problems.append("the tagStatus any rule must have the highest rulePriority")
    return problems


# --------------------------------------------------------------------------- pull policy


def repository_pull_policy(pull_principal_arns: list[str]) -> dict[str, Any]:
    """A repository policy that lets exactly these IAM roles pull, and grants nothing else.

    ``pull_principal_arns`` are the environment stacks' ECS task execution role ARNs - the
    service's and the migration task's (their names come from ``naming.py``, so the tooling
    stack knows them without reading the environment stacks). The statement allows only the
    three pull actions, for the principals' **account roots**, with an ``ArnEquals``
    condition on ``aws:PrincipalArn`` listing the exact role ARNs.
    Why not the role ARNs as principals:

    * ECR validates principals when the policy is set ("Principal not found"), and the
      tooling stack comes up before the environment stacks create those roles;
    * a role deleted and re-created under the same name would silently no longer match a
      principal that IAM had resolved to the old role's unique id.

    The condition keeps the grant to exactly those roles: no other principal of those
    accounts (and no other account) is allowed by this policy. Principals of the
    repository's own account are governed by their identity policies as usual. Pulling also
    needs ``ecr:GetAuthorizationToken`` in the role's identity policy (AWS offers no
    resource-level permission for it, so it cannot live here).
    """
    if not isinstance(pull_principal_arns, (list, tuple)) or not pull_principal_arns:
        raise EcrDocumentError(
            "pull_principal_arns: empty; a repository policy needs at least one task "
            "execution role ARN (create no repository policy when nothing pulls cross-account)"
        )
    partitions: set[str] = set()
    accounts: set[str] = set()
    arns: list[str] = []
    for index, arn in enumerate(pull_principal_arns):
        match = _ROLE_ARN_RE.match(arn) if isinstance(arn, str) else None
        if not match:
            raise EcrDocumentError(
                f"pull_principal_arns[{index}]: {arn!r} is not an IAM role ARN; use "
                "arn:aws:iam::<12-digit account>:role/<name> (no wildcards)"
            )
        partitions.add(match.group("partition"))
        accounts.add(match.group("account"))
        arns.append(arn)
    if len(partitions) != 1:
        raise EcrDocumentError(
            f"pull_principal_arns: roles span partitions {sorted(partitions)}; an ECR "
            "repository can only be pulled from within its own partition"
        )
    partition = partitions.pop()
    roots = [f"arn:{partition}:iam::{account}:root" for account in sorted(accounts)]
    role_arns = sorted(set(arns))
    statement: dict[str, Any] = {
        "Sid": PULL_STATEMENT_SID,
        "Effect": "Allow",
        "Principal": {"AWS": _one_or_list(roots)},
        "Action": list(PULL_ACTIONS),
        "Condition": {"ArnEquals": {"aws:PrincipalArn": _one_or_list(role_arns)}},
    }
    return {"Version": "2012-10-17", "Statement": [statement]}


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


# --------------------------------------------------------------------------- mutability


def mutability_exclusion_filters(
    dev_prefix: str, extra_prefixes: Sequence[str] = ()
) -> list[dict[str, str]]:
    """Exclusion filters for ``image_tag_mutability="IMMUTABLE_WITH_EXCLUSION"``.

    Tags matching ``<dev_prefix>*`` (and ``<prefix>*`` for each of ``extra_prefixes``, e.g. a
    build-cache ref such as ``buildcache-`` that is overwritten on every build) stay mutable;
    every other tag, release tags included, is immutable. A prefix that starts with a digit
    could cover a release tag (SemVer) and is refused. The items use pulumi_aws v7's
    ``RepositoryImageTagMutabilityExclusionFilterArgs`` keys (``filter``, ``filter_type``).
    """
    prefixes = [_non_release_prefix("dev_prefix", dev_prefix)]
    prefixes += [
        _non_release_prefix(f"extra_prefixes[{i}]", p) for i, p in enumerate(extra_prefixes)
    ]
    if len(set(prefixes)) != len(prefixes):
        raise EcrDocumentError(f"mutability exclusion prefixes {prefixes!r} have duplicates")
    if len(prefixes) > MAX_EXCLUSION_FILTERS:
        raise EcrDocumentError(
            f"mutability exclusion prefixes: {len(prefixes)} given; ECR allows at most "
            f"{MAX_EXCLUSION_FILTERS} exclusion filters per repository"
        )
    return [{"filter": f"{prefix}*", "filter_type": "WILDCARD"} for prefix in prefixes]


__all__ = [
    "PULL_ACTIONS",
    "RELEASE_TAG_PATTERN",
    "STAGING_EXPIRY_DAYS",
    "STAGING_TAG_PREFIX",
    "EcrDocumentError",
    "lifecycle_policy",
    "lifecycle_policy_problems",
    "mutability_exclusion_filters",
    "repository_pull_policy",
]
