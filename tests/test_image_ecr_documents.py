"""ECR documents: lifecycle policy (structure and simulated effect), pull policy, exclusions."""

from __future__ import annotations

import copy
import functools
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.render.buildspec import staging_tag
from components.render.ecr import (
    PULL_ACTIONS,
    STAGING_TAG_PREFIX,
    EcrDocumentError,
    lifecycle_policy,
    lifecycle_policy_problems,
    mutability_exclusion_filters,
    repository_pull_policy,
)
from components.render.iam import actions_of, to_json
from components.render.versioning import image_tag

DEV_ROLE = "arn:aws:iam::222222222222:role/orders-api-dev-task-execution"
STAGE_ROLE = "arn:aws:iam::333333333333:role/orders-api-stage-task-execution"
PROD_ROLE = "arn:aws:iam::444444444444:role/platform/orders-api-prod-task-execution"
# botocore ecr service-2: ImageTagMutabilityExclusionFilterValue
BOTOCORE_FILTER_RE = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")


# --------------------------------------------------------------------------- ECR model


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


def matches(pattern: str, tag: str) -> bool:
    """ECR tag pattern semantics: '*' matches any run of characters, nothing else is special."""
    return _pattern(pattern).fullmatch(tag) is not None


@dataclass(frozen=True)
class Image:
    digest: str
    pushed_day: int  # days before "now"; larger is older
    tags: tuple[str, ...]
    children: tuple[str, ...] = ()  # a manifest list: the digests of its platform images


def selected(rule: dict[str, Any], image: Image) -> bool:
    selection = rule["selection"]
    status = selection["tagStatus"]
    if status == "untagged":
        return not image.tags
    if status == "any":
        return True
    if not image.tags:
        return False
    if "tagPatternList" in selection:  # an image must match every pattern (AND)
        return all(any(matches(p, t) for t in image.tags) for p in selection["tagPatternList"])
    return all(any(t.startswith(p) for t in image.tags) for p in selection["tagPrefixList"])


def simulate(policy: dict[str, Any], images: list[Image]) -> dict[str, str]:
    """Which images a lifecycle policy expires (digest -> rule description).

    Documented evaluation: rules in rulePriority order; an image that matches the tag
    selection of a higher-priority rule is not evaluated by lower ones; imageCountMoreThan
    expires all but the newest N selected; sinceImagePushed expires those older than N days.
    """
    claimed: set[str] = set()
    expired: dict[str, str] = {}
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        candidates = [i for i in images if i.digest not in claimed and selected(rule, i)]
        claimed.update(i.digest for i in candidates)
        selection = rule["selection"]
        if selection["countType"] == "imageCountMoreThan":
            newest_first = sorted(candidates, key=lambda i: i.pushed_day)
            doomed = newest_first[selection["countNumber"] :]
        else:
            doomed = [i for i in candidates if i.pushed_day > selection["countNumber"]]
        for image in doomed:
            expired[image.digest] = rule["description"]
    # ECR refuses to delete an image that a manifest list still references
    # (BatchDeleteImage failure code ImageReferencedByManifestList): a platform image whose
    # index survives survives too, whatever rule selected it.
    referenced = {c for i in images if i.digest not in expired for c in i.children}
    return {digest: why for digest, why in expired.items() if digest not in referenced}


# --------------------------------------------------------------------------- lifecycle


def test_default_lifecycle_structure() -> None:
    policy = lifecycle_policy(keep_release_images=30, untagged_expiry_days=7)
    rules = policy["rules"]
    assert [r["rulePriority"] for r in rules] == list(range(1, 12))
    release, untagged = rules[:10], rules[10]
    assert [r["selection"]["tagPatternList"] for r in release] == [
        [f"{d}*build.*-git.*"] for d in "0123456789"
    ]
    for rule in release:
        assert rule["selection"]["tagStatus"] == "tagged"
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == 30
        assert "countUnit" not in rule["selection"]
        assert rule["action"] == {"type": "expire"}
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }
    assert all(r["selection"]["tagStatus"] != "any" for r in rules)
    assert lifecycle_policy_problems(policy) == []
    # stable text: re-rendering never shows a diff
    assert to_json(policy) == to_json(lifecycle_policy(30, 7))


def test_dev_rule_sits_between_release_and_untagged_rules() -> None:
    policy = lifecycle_policy(10, 3, dev_tag_prefix="dev-", dev_expiry_days=14)
    rules = policy["rules"]
    dev = rules[-2]
    assert dev["rulePriority"] == 11
    assert dev["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["dev-*"],
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 14,
    }
    assert rules[-1]["selection"]["tagStatus"] == "untagged"
    assert rules[-1]["selection"]["countNumber"] == 3
    assert (
        lifecycle_policy(10, 3, dev_tag_prefix="dev-")["rules"][-2]["selection"]["countNumber"] == 3
    )  # dev_expiry_days defaults to untagged_expiry_days
    assert lifecycle_policy_problems(policy) == []


def test_release_prefixes_get_one_rule_each_because_ecr_ands_a_pattern_list() -> None:
    policy = lifecycle_policy(5, 7, release_tag_prefixes=["v", "release-"], dev_tag_prefix="dev-")
    tagged = [r for r in policy["rules"] if r["selection"]["tagStatus"] == "tagged"]
    assert [r["selection"]["tagPatternList"] for r in tagged] == [["v*"], ["release-*"], ["dev-*"]]
    assert [r["rulePriority"] for r in policy["rules"]] == [1, 2, 3, 4]
    assert lifecycle_policy_problems(policy) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep_release_images": 0}, r"keep_release_images: 0 is not allowed"),
        ({"keep_release_images": True}, r"keep_release_images: True is not allowed"),
        ({"untagged_expiry_days": -1}, r"untagged_expiry_days: -1 is not allowed"),
        ({"dev_expiry_days": 0, "dev_tag_prefix": "dev-"}, r"dev_expiry_days: 0"),
        ({"dev_tag_prefix": "1dev-"}, r"dev_tag_prefix: '1dev-' starts with a digit"),
        ({"dev_tag_prefix": "dev-*"}, r"dev_tag_prefix: 'dev-\*' is not a tag prefix"),
        ({"dev_tag_prefix": ""}, r"dev_tag_prefix: '' is not a tag prefix"),
        ({"release_tag_prefixes": []}, r"release_tag_prefixes: \[\] selects no release image"),
        ({"release_tag_prefixes": ["v", "v"]}, r"has duplicates"),
        ({"release_tag_prefixes": ["v*"]}, r"release_tag_prefixes\[0\]: 'v\*'"),
        (
            {"release_tag_prefixes": ["v"], "dev_tag_prefix": "v-dev-"},
            r"dev_tag_prefix: 'v-dev-' overlaps release tag prefix 'v'",
        ),
    ],
)
def test_lifecycle_input_errors_name_the_argument(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"keep_release_images": 10, "untagged_expiry_days": 7, **kwargs}
    with pytest.raises(EcrDocumentError, match=message):
        lifecycle_policy(**arguments)


def test_problem_checker_rejects_what_ecr_rejects() -> None:
    good = lifecycle_policy(10, 7, dev_tag_prefix="dev-")
    assert lifecycle_policy_problems(good) == []

    def broken(change: Any) -> list[str]:
        document = copy.deepcopy(good)
        change(document["rules"])
        return lifecycle_policy_problems(document)

    def any_first(rules: list[dict[str, Any]]) -> None:
        rules[0]["selection"] = {
            "tagStatus": "any",
            "countType": "imageCountMoreThan",
            "countNumber": 5,
        }

    assert "highest rulePriority" in " ".join(broken(any_first))
    assert "not unique" in " ".join(broken(lambda r: r[1].update(rulePriority=1)))
    assert "takes no tagPatternList" in " ".join(
        broken(lambda r: r[-1]["selection"].update(tagPatternList=["x*"]))
    )
    assert "needs exactly one of" in " ".join(
        broken(lambda r: r[0]["selection"].pop("tagPatternList"))
    )
    assert "more than 4 wildcards" in " ".join(
        broken(lambda r: r[0]["selection"].update(tagPatternList=["*a*b*c*d*"]))
    )
    assert "takes no countUnit" in " ".join(
        broken(lambda r: r[0]["selection"].update(countUnit="days"))
    )
    assert "not a positive integer" in " ".join(
        broken(lambda r: r[-1]["selection"].update(countNumber=0))
    )
    assert lifecycle_policy_problems({"rules": []}) != []


_VERSION = st.builds(
    lambda major, minor, patch, pre: f"{major}.{minor}.{patch}{pre}",
    st.integers(0, 120),
    st.integers(0, 30),
    st.integers(0, 30),
    st.sampled_from(["", "-rc.1", "-beta.2", "-alpha"]),
)
_SHA = st.binary(min_size=20, max_size=20).map(bytes.hex)
_RELEASE_TAG = st.builds(image_tag, _VERSION, st.integers(0, 10**6), _SHA)
_DEV_PREFIX = st.from_regex(r"[A-Za-z_][A-Za-z0-9._-]{0,10}", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(tag=_RELEASE_TAG, dev_prefix=_DEV_PREFIX, suffix=_RELEASE_TAG)
def test_property_release_tags_match_exactly_one_release_rule_and_dev_tags_none(
    tag: str, dev_prefix: str, suffix: str
) -> None:
    policy = lifecycle_policy(10, 7, dev_tag_prefix=dev_prefix)
    release_rules = [
        r for r in policy["rules"] if r["selection"].get("countType") == ("imageCountMoreThan")
    ]
    hits = [r for r in release_rules if matches(r["selection"]["tagPatternList"][0], tag)]
    assert len(hits) == 1
    assert hits[0]["selection"]["tagPatternList"][0].startswith(tag[0])
    # a dev tag that embeds a whole release tag still never counts as a release image
    dev_tag = f"{dev_prefix}{suffix}"[:128]
    assert not [r for r in release_rules if matches(r["selection"]["tagPatternList"][0], dev_tag)]
    assert matches(f"{dev_prefix}*", dev_tag)


@st.composite
def repositories(draw: st.DrawFn) -> list[Image]:
    images: list[Image] = []
    for index in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["release", "release", "dev", "untagged", "cache", "both"]))
        day = draw(st.integers(0, 60))
        tags: tuple[str, ...]
        if kind == "release":
            tags = (draw(_RELEASE_TAG),)
        elif kind == "dev":
            tags = (f"dev-{draw(_RELEASE_TAG)}",)
        elif kind == "cache":
            tags = ("buildcache-amd64",)
        elif kind == "both":  # a release digest someone also tagged dev-…
            tags = (draw(_RELEASE_TAG), "dev-hotfix")
        else:
            tags = ()
        images.append(Image(f"sha256:{index:064x}", day, tags))
    return images


@settings(max_examples=80, deadline=None)
@given(
    images=repositories(),
    keep=st.integers(1, 8),
    untagged_days=st.integers(1, 30),
    dev_days=st.integers(1, 30),
)
def test_property_simulated_policy_keeps_newest_releases_and_expires_only_what_it_should(
    images: list[Image], keep: int, untagged_days: int, dev_days: int
) -> None:
    policy = lifecycle_policy(keep, untagged_days, dev_tag_prefix="dev-", dev_expiry_days=dev_days)
    expired = simulate(policy, images)

    def is_release(image: Image) -> bool:
        return any(t[0].isdigit() for t in image.tags)

    releases = sorted((i for i in images if is_release(i)), key=lambda i: i.pushed_day)
    newest = releases[:keep]
    assert not {i.digest for i in newest} & expired.keys(), "a newest release image expired"
    for image in images:
        reason = expired.get(image.digest)
        if is_release(image):
            # only ever by a release rule, never by the dev or untagged rule
            assert reason is None or reason.startswith("Keep the newest")
        elif image.tags and image.tags[0].startswith("dev-"):
            assert (reason is not None) == (image.pushed_day > dev_days)
        elif not image.tags:
            assert (reason is not None) == (image.pushed_day > untagged_days)
        else:
            assert reason is None, "an unknown tag (build cache) must be kept"
    # per leading digit, exactly the newest `keep` release images survive
    for digit in "0123456789":
        group = [i for i in releases if next(t for t in i.tags if t[0].isdigit())[0] == digit]
        kept = [i for i in group if i.digest not in expired]
        assert kept == group[:keep]


# --------------------------------------------------------------------------- staging


def test_staging_rule_sits_after_the_release_rules_and_expires_after_one_day() -> None:
    policy = lifecycle_policy(10, 7, dev_tag_prefix="dev-", staging_tag_prefix=STAGING_TAG_PREFIX)
    rules = policy["rules"]
    assert [r["rulePriority"] for r in rules] == list(range(1, 14))
    staging, dev, untagged = rules[10:]
    assert staging["selection"] == {
        "tagStatus": "tagged",
        "tagPatternList": ["staging-*"],
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    }
    assert staging["description"] == "Expire staging images (staging-*) 1 days after push"
    assert dev["selection"]["tagPatternList"] == ["dev-*"]
    assert untagged["selection"]["tagStatus"] == "untagged"
    assert lifecycle_policy_problems(policy) == []
    # without a staging prefix the policy is unchanged (no rule for it)
    assert "staging" not in to_json(lifecycle_policy(10, 7, dev_tag_prefix="dev-"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"staging_tag_prefix": "1staging-"},
            "staging_tag_prefix: '1staging-' starts with a digit",
        ),
        ({"staging_tag_prefix": "stag*"}, "staging_tag_prefix: 'stag*' is not a tag prefix"),
        ({"staging_tag_prefix": "staging-", "staging_expiry_days": 0}, "staging_expiry_days: 0"),
        (
            {"staging_tag_prefix": "staging-", "dev_tag_prefix": "staging-dev-"},
            "dev_tag_prefix: 'staging-dev-' overlaps staging_tag_prefix 'staging-'",
        ),
        (
            {"staging_tag_prefix": "staging-", "release_tag_prefixes": ["stag"]},
            "staging_tag_prefix: 'staging-' overlaps release tag prefix 'stag'",
        ),
    ],
)
def test_staging_prefix_errors_name_the_argument(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EcrDocumentError, match=re.escape(message)):
        lifecycle_policy(10, 7, **kwargs)


_BUILD = st.integers(0, 10**9 - 1)
_PLATFORM = st.sampled_from(["linux/amd64", "linux/arm64"])


@settings(max_examples=80, deadline=None)
@given(build=_BUILD, sha=_SHA, platform=_PLATFORM, release=_RELEASE_TAG)
def test_property_staging_tags_are_short_never_release_tags_and_only_staging_rule_selects_them(
    build: int, sha: str, platform: str, release: str
) -> None:
    tag = staging_tag(build, sha, platform)
    assert len(tag) <= 36 and tag.startswith(STAGING_TAG_PREFIX) and not tag[0].isdigit()
    policy = lifecycle_policy(10, 7, dev_tag_prefix="dev-", staging_tag_prefix=STAGING_TAG_PREFIX)
    hits = [
        r["description"]
        for r in policy["rules"]
        if r["selection"]["tagStatus"] == "tagged"
        and matches(r["selection"]["tagPatternList"][0], tag)
    ]
    assert hits == ["Expire staging images (staging-*) 1 days after push"]
    # and the staging rule never selects a release tag
    assert not matches(f"{STAGING_TAG_PREFIX}*", release)
    filters = [f["filter"] for f in mutability_exclusion_filters("cache-", [STAGING_TAG_PREFIX])]
    assert any(matches(f, tag) for f in filters)
    assert not any(matches(f, release) for f in filters)


@st.composite
def batch_repositories(draw: st.DrawFn) -> list[Image]:
    """Releases published by a batch join (a manifest list over two staging-tagged platform
    images), batches that failed a gate (staging images, no manifest list), dev and untagged
    images."""
    images: list[Image] = []
    for build in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["published", "published", "failed", "dev", "untagged"]))
        day = draw(st.integers(0, 40))
        sha = draw(_SHA)
        digest = f"sha256:{build:060x}"
        children = tuple(
            Image(f"{digest}{arch:04x}", day, (staging_tag(build, sha, platform),))
            for arch, platform in enumerate(("linux/amd64", "linux/arm64"))
        )
        if kind == "published":
            images += children
            index_tag = image_tag("1.8.0", build, sha)
            images.append(
                Image(f"{digest}ffff", day, (index_tag,), tuple(c.digest for c in children))
            )
        elif kind == "failed":
            images += children[: draw(st.integers(1, 2))]  # the other platform failed a gate
        elif kind == "dev":
            images.append(Image(f"{digest}eeee", day, (f"dev-{build}",)))
        else:
            images.append(Image(f"{digest}dddd", day, ()))
    return images


@settings(max_examples=80, deadline=None)
@given(images=batch_repositories(), keep=st.integers(1, 6), untagged_days=st.integers(1, 30))
def test_property_staging_images_expire_unless_a_release_references_them(
    images: list[Image], keep: int, untagged_days: int
) -> None:
    policy = lifecycle_policy(
        keep, untagged_days, dev_tag_prefix="dev-", staging_tag_prefix=STAGING_TAG_PREFIX
    )
    expired = simulate(policy, images)
    by_digest = {i.digest: i for i in images}
    indexes = sorted((i for i in images if i.children), key=lambda i: i.pushed_day)
    for index in indexes[:keep]:  # the newest releases and every platform image they name
        assert index.digest not in expired
        assert not set(index.children) & expired.keys(), "a kept release lost a platform image"
    for index in indexes:
        if index.digest not in expired:
            assert all(c in by_digest and c not in expired for c in index.children)
    referenced = {c for i in indexes for c in i.children}
    for image in images:
        reason = expired.get(image.digest)
        if image.children:
            assert reason is None or reason.startswith("Keep the newest")
        elif image.tags and image.tags[0].startswith(STAGING_TAG_PREFIX):
            if image.digest not in referenced:  # a failed batch: gone after a day
                assert (reason is not None) == (image.pushed_day > 1), image
            else:
                assert reason is None or reason.startswith("Expire staging")


# --------------------------------------------------------------------------- pull policy


def test_pull_policy_grants_only_pull_actions_to_exactly_the_roles() -> None:
    policy = repository_pull_policy([PROD_ROLE, DEV_ROLE, STAGE_ROLE, DEV_ROLE])
    assert policy["Version"] == "2012-10-17"
    [statement] = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(actions_of(policy)) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert tuple(sorted(PULL_ACTIONS)) == tuple(sorted(actions_of(policy)))
    assert not any("*" in action for action in actions_of(policy))
    assert statement["Principal"] == {
        "AWS": [
            "arn:aws:iam::222222222222:root",
            "arn:aws:iam::333333333333:root",
            "arn:aws:iam::444444444444:root",
        ]
    }
    assert statement["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": sorted([DEV_ROLE, STAGE_ROLE, PROD_ROLE])}
    }
    assert "Resource" not in statement  # a repository policy applies to its repository
    assert "NotPrincipal" not in statement and "NotAction" not in statement
    # order of the input does not change the document
    assert to_json(policy) == to_json(repository_pull_policy([STAGE_ROLE, PROD_ROLE, DEV_ROLE]))


def test_pull_policy_for_one_account_uses_plain_strings() -> None:
    policy = repository_pull_policy([DEV_ROLE])
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::222222222222:root"}
    assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == DEV_ROLE
    json.dumps(policy)  # plain JSON data


@pytest.mark.parametrize(
    ("arns", "message"),
    [
        ([], r"pull_principal_arns: empty"),
        (["arn:aws:iam::222222222222:role/*"], r"pull_principal_arns\[0\]: .* not an IAM role ARN"),
        (["arn:aws:iam::222222222222:root"], r"not an IAM role ARN"),
        (["arn:aws:iam::222222222222:user/deploy"], r"not an IAM role ARN"),
        (["*"], r"pull_principal_arns\[0\]: '\*'"),
        ([DEV_ROLE, "arn:aws:iam::12345:role/short"], r"pull_principal_arns\[1\]"),
        (
            [DEV_ROLE, "arn:aws-cn:iam::555555555555:role/x"],
            r"roles span partitions \['aws', 'aws-cn'\]",
        ),
    ],
)
def test_pull_policy_refuses_anything_but_exact_role_arns(arns: list[str], message: str) -> None:
    with pytest.raises(EcrDocumentError, match=message):
        repository_pull_policy(arns)


# --------------------------------------------------------------------------- mutability


def test_exclusion_filters_match_pulumi_aws_args() -> None:
    from pulumi_aws.ecr import RepositoryImageTagMutabilityExclusionFilterArgs

    filters = mutability_exclusion_filters("dev-", ["buildcache-"])
    assert filters == [
        {"filter": "dev-*", "filter_type": "WILDCARD"},
        {"filter": "buildcache-*", "filter_type": "WILDCARD"},
    ]
    parameters = set(inspect.signature(RepositoryImageTagMutabilityExclusionFilterArgs).parameters)
    for item in filters:
        assert set(item) == parameters
        RepositoryImageTagMutabilityExclusionFilterArgs(**item)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("1.",), r"dev_prefix: '1\.' starts with a digit, so '1\.\*' could match release"),
        (("0",), r"starts with a digit"),
        (("*",), r"dev_prefix: '\*' is not a tag prefix"),
        (("dev*",), r"is not a tag prefix"),
        (("",), r"is not a tag prefix"),
        (("-dev",), r"is not a tag prefix"),
        (("dev-", ["9x"]), r"extra_prefixes\[0\]: '9x' starts with a digit"),
        (("dev-", ["dev-"]), r"have duplicates"),
        (("a", ["b", "c", "d", "e", "f"]), r"ECR allows at most 5"),
    ],
)
def test_exclusion_filters_refuse_prefixes_that_could_cover_release_tags(
    args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(EcrDocumentError, match=message):
        mutability_exclusion_filters(*args)


@settings(max_examples=80, deadline=None)
@given(prefix=st.from_regex(r"[0-9A-Za-z_][0-9A-Za-z._-]{0,20}", fullmatch=True), tag=_RELEASE_TAG)
def test_property_an_accepted_exclusion_never_covers_a_release_tag(prefix: str, tag: str) -> None:
    try:
        [item] = mutability_exclusion_filters(prefix)
    except EcrDocumentError as err:
        assert prefix[0].isdigit()
        assert "starts with a digit" in str(err)
        return
    assert BOTOCORE_FILTER_RE.match(item["filter"])
    assert item["filter"].count("*") <= 2
    assert not matches(item["filter"], tag)
