"""DotnetServiceImage under the offline engine: the hardened repository and the image build.

Renders are cached at module scope (each takes about a second); every variant is the real
``Pulumi.tooling.yaml`` with one section changed.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import config as config_mod
from components import image as image_mod
from components import migration, naming
from components.render import ecr, versioning
from components.render.buildspec import staging_tag
from components.testing import Recording, cached_render, parse_stack_file
from components.testing.engine import PROJECT_ROOT
from components.testing.engine import render as render_with

REPO = "aws:ecr/repository:Repository"
IMAGE = "docker-build:index:Image"
INDEX = "docker-build:index:Index"
URL = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/orders-api"
RELEASE_TAG = "1.8.0-build.0-git.0123456789ab"  # examples/orders-api/VERSION + the stack's sha
IMAGE_REF_RE = re.compile(r"^[^@]+@sha256:[0-9a-f]{64}$")
ENV_ACCOUNTS = {"dev": "222222222222", "stage": "333333333333", "prod": "444444444444"}
TOOLING_YAML = (PROJECT_ROOT / "Pulumi.tooling.yaml").read_text(encoding="utf-8")


def _variant_text(**image_changes: Any) -> str:
    doc = yaml.safe_load(TOOLING_YAML)
    section = doc["config"]["dotnet-delivery:image"]
    for key, value in image_changes.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    return yaml.safe_dump(doc, sort_keys=False)


@functools.cache
def base() -> Recording:
    return cached_render("tooling")  # shared with other modules


@functools.cache
def native() -> Recording:
    text = _variant_text(
        nativeBuilders={
            "linux/amd64": "amd64-native",
            "linux/arm64": "tcp://arm64-buildkit.internal:2376",
        }
    )
    return render_with("tooling", stack_file=parse_stack_file(text))


@functools.cache
def private_feed() -> Recording:
    text = _variant_text(
        nugetFeedSecret={"secure": "AAABAExampleNuGetConfigCipherText=="},
        enhancedScanning=True,
        devTagPrefix=None,
    )
    return render_with("tooling", stack_file=parse_stack_file(text))


# --------------------------------------------------------------------------- repository
def test_repository_tags_are_immutable_except_cache_staging_and_dev_prefixes() -> None:
    repo = base().one(REPO)
    assert repo.inputs["name"] == "orders-api"
    assert repo.inputs["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    filters = [f["filter"] for f in repo.inputs["imageTagMutabilityExclusionFilters"]]
    assert filters == ["cache-*", "staging-*", "dev-*"]
    assert {f["filterType"] for f in repo.inputs["imageTagMutabilityExclusionFilters"]} == {
        "WILDCARD"
    }
    # No exclusion filter may cover a release tag; the batch's staging tags are covered.
    for tag in (RELEASE_TAG, versioning.image_tag("2.0.0-rc.1", 5, "a" * 40)):
        assert not any(fnmatch.fnmatchcase(tag, f) for f in filters), tag
    assert fnmatch.fnmatchcase(staging_tag(42, "a" * 40, "linux/arm64"), "staging-*")


def test_repository_without_dev_prefix_excludes_only_the_cache_and_staging_tags() -> None:
    repo = private_feed().one(REPO)
    assert [f["filter"] for f in repo.inputs["imageTagMutabilityExclusionFilters"]] == [
        "cache-*",
        "staging-*",
    ]


def test_repository_scans_on_push_encrypts_with_the_artifact_key_and_is_never_force_deleted() -> (
    None
):
    rec = base()
    repo = rec.one(REPO)
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo.inputs["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": rec.exports["artifactKeyArn"]}
    ]
    assert repo.inputs["forceDelete"] is False
    assert repo.inputs["tags"]["Environment"] == "tooling"
    assert repo.inputs["tags"]["Application"] == "orders-api"


def test_lifecycle_policy_keeps_release_images_and_expires_dev_and_untagged() -> None:
    policy = base().one("aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert policy.inputs["repository"] == "orders-api"
    document = policy.json_input("policy")
    assert document == ecr.lifecycle_policy(50, 7, dev_tag_prefix="dev-")
    *releases, dev, untagged = document["rules"]
    assert releases, "no release rule"
    for rule in releases:
        assert rule["selection"]["tagStatus"] == "tagged"
        assert rule["selection"]["countType"] == "imageCountMoreThan"
        assert rule["selection"]["countNumber"] == 50
    patterns = [p for r in releases for p in r["selection"]["tagPatternList"]]
    # Every release tag is kept by some rule; no dev tag is counted as a release.
    assert any(fnmatch.fnmatchcase(RELEASE_TAG, p) for p in patterns)
    assert not any(fnmatch.fnmatchcase("dev-build.1-git.abc", p) for p in patterns)
    assert not any(
        fnmatch.fnmatchcase(staging_tag(7, "b" * 40, "linux/amd64"), p) for p in patterns
    )
    # No rule ever selects the per-architecture staging images a release references.
    for rule in document["rules"]:
        selected = rule["selection"].get("tagPatternList", [])
        assert not any(
            fnmatch.fnmatchcase(staging_tag(7, "b" * 40, "linux/amd64"), p) for p in selected
        )
    assert dev["selection"]["tagPatternList"] == ["dev-*"]
    assert untagged["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 7,
    }


def test_repository_policy_lets_only_the_environment_execution_roles_pull() -> None:
    policy = base().one("aws:ecr/repositoryPolicy:RepositoryPolicy")
    assert policy.inputs["repository"] == "orders-api"
    document = policy.json_input("policy")
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(ecr.PULL_ACTIONS)
    # Account roots as principals (valid before the roles exist) ...
    assert statement["Principal"] == {
        "AWS": [f"arn:aws:iam::{a}:root" for a in sorted(ENV_ACCOUNTS.values())]
    }
    # ... narrowed to the exact execution-role ARNs: the service's and the migration task's.
    expected = sorted(
        f"arn:aws:iam::{account}:role/{role}"
        for env, account in ENV_ACCOUNTS.items()
        for role in (
            naming.Names("orders-api", env).execution_role,
            naming.Names("orders-api", env).role("migrate-exec"),
        )
    )
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": expected}}
    assert "arn:aws:iam::444444444444:role/orders-api-prod-exec" in expected
    assert len(expected) == 6


def test_every_environments_migration_execution_role_may_pull() -> None:
    """The EF Core migration task runs with its own execution role; it must pull too."""
    document = base().one("aws:ecr/repositoryPolicy:RepositoryPolicy").json_input("policy")
    allowed = document["Statement"][0]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    for env, account in ENV_ACCOUNTS.items():
        names = naming.Names("orders-api", env)
        # The very ARN the migration component gives its task definition's execution role.
        migrate = naming.role_arn(migration.execution_role_name(names), account_id=account)
        assert migrate in allowed, (env, migrate)
        assert migrate.endswith(f":role/{names.role('migrate-exec')}")


def test_enhanced_scanning_is_off_by_default_and_scans_this_repository_on_push_when_on() -> None:
    assert base().count("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration") == 0
    scanning = private_feed().one(
        "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"
    )
    assert scanning.inputs["scanType"] == "ENHANCED"
    assert scanning.inputs["rules"] == [
        {
            "scanFrequency": "SCAN_ON_PUSH",
            "repositoryFilters": [{"filter": "orders-api", "filterType": "WILDCARD"}],
        }
    ]


# --------------------------------------------------------------------------- image
def test_one_multi_platform_image_is_pushed_with_the_release_tag_only() -> None:
    rec = base()
    assert rec.count(INDEX) == 0
    image = rec.one(IMAGE)
    assert image.inputs["platforms"] == ["linux/amd64", "linux/arm64"]
    assert image.inputs["push"] is True
    assert image.inputs["tags"] == [f"{URL}:{RELEASE_TAG}"]
    assert not any(t.endswith(":latest") for t in image.inputs["tags"])
    assert image.inputs["buildOnPreview"] is False
    assert image.inputs["context"] == {"location": "examples/orders-api"}
    assert image.inputs["registries"] == "[secret]"  # the ECR token never shows


def test_image_caches_to_ecr_with_image_manifest_oci_and_mode_max() -> None:
    image = base().one(IMAGE)
    ref = f"{URL}:cache-amd64-arm64"
    assert image.inputs["cacheFrom"] == [{"registry": {"ref": ref}}]
    (cache_to,) = image.inputs["cacheTo"]
    registry = cache_to["registry"]
    assert registry["ref"] == ref
    assert registry["imageManifest"] is True
    assert registry["ociMediaTypes"] is True
    assert registry["mode"] == "max"


def test_sample_without_dockerfile_builds_the_rendered_one() -> None:
    dockerfile = base().one(IMAGE).inputs["dockerfile"]
    assert set(dockerfile) == {"inline"}
    text = dockerfile["inline"]
    assert "FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble-chiseled AS final" in text
    assert "USER $APP_UID" in text
    assert "--mount=type=secret" not in text  # no private feed configured


def test_nuget_feed_credentials_are_a_buildkit_secret_never_a_build_arg() -> None:
    image = private_feed().one(IMAGE)
    # The whole map is a secret (the recorder masks it); the Dockerfile mounts its id.
    assert image.inputs["secrets"] == "[secret]"
    assert "buildArgs" not in image.inputs
    text = image.inputs["dockerfile"]["inline"]
    assert "--mount=type=secret,id=nuget_config," in text
    assert "ARG NUGET" not in text and "ENV NUGET" not in text
    assert "buildArgs" not in base().one(IMAGE).inputs
    assert "secrets" not in base().one(IMAGE).inputs


def test_native_builders_fan_out_one_image_per_platform_joined_by_an_index() -> None:
    rec = native()
    images = {r.name: r for r in rec.find(IMAGE)}
    assert set(images) == {"image-amd64", "image-arm64"}
    amd64, arm64 = images["image-amd64"], images["image-arm64"]
    assert amd64.inputs["platforms"] == ["linux/amd64"]
    assert arm64.inputs["platforms"] == ["linux/arm64"]
    assert amd64.inputs["tags"] == [f"{URL}:{RELEASE_TAG}-amd64"]
    assert arm64.inputs["tags"] == [f"{URL}:{RELEASE_TAG}-arm64"]
    for arch, image in (("amd64", amd64), ("arm64", arm64)):
        assert image.inputs["push"] is True
        assert image.inputs["cacheTo"][0]["registry"]["ref"] == f"{URL}:cache-{arch}"
        assert image.inputs["cacheFrom"] == [{"registry": {"ref": f"{URL}:cache-{arch}"}}]
    # A builder name goes to buildx --builder; a daemon address gets its own provider.
    assert amd64.inputs["builder"] == {"name": "amd64-native"}
    assert "builder" not in arm64.inputs
    (daemon,) = rec.find("pulumi:providers:docker-build")
    assert daemon.inputs["host"] == "tcp://arm64-buildkit.internal:2376"
    assert arm64.provider is not None and arm64.provider.startswith(daemon.urn)

    index = rec.one(INDEX)
    assert index.inputs["tag"] == f"{URL}:{RELEASE_TAG}"
    assert index.inputs["push"] is True
    assert index.inputs["sources"] == [amd64.outputs["ref"], arm64.outputs["ref"]]
    digest = index.outputs["ref"].split("@", 1)[1]
    assert rec.exports["imageRef"] == f"{URL}@{digest}"
    assert IMAGE_REF_RE.match(rec.exports["imageRef"])


def test_tooling_stack_exports_a_digest_pinned_image_ref() -> None:
    rec = base()
    image = rec.one(IMAGE)
    assert IMAGE_REF_RE.match(rec.exports["imageRef"])
    assert rec.exports["imageRef"] == f"{URL}@{image.outputs['digest']}"
    assert rec.exports["repositoryUrl"] == URL
    assert (
        rec.exports["repositoryArn"] == "arn:aws:ecr:eu-west-1:111111111111:repository/orders-api"
    )
    assert rec.exports["platforms"] == ["linux/amd64", "linux/arm64"]
    # The component's own recorded outputs (register_outputs), as the issue asks.
    component = rec.one("dotnet-delivery:index:DotnetServiceImage")
    assert IMAGE_REF_RE.match(component.outputs["imageRef"])
    assert component.outputs["imageRef"] == rec.exports["imageRef"]
    assert component.outputs["platforms"] == ["linux/amd64", "linux/arm64"]


# --------------------------------------------------------------------------- config errors
def _preview(config_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "Pulumi.tooling.yaml"
    path.write_text(config_text, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "components.preview", "--stack", "tooling", "--config", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_preview_process_exits_2_naming_the_key_for_version_latest(tmp_path: Path) -> None:
    done = _preview(_variant_text(version="latest"), tmp_path)
    assert done.returncode == 2, done.stderr
    assert "dotnet-delivery:image.version" in done.stderr
    assert "never 'latest'" in done.stderr
    assert "Traceback" not in done.stderr


def _preview_in_process(
    config_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """The same CLI entry point in this process (a subprocess costs seconds per call)."""
    from components import preview

    path = tmp_path / "Pulumi.tooling.yaml"
    path.write_text(config_text, encoding="utf-8")
    code = preview.main(["--stack", "tooling", "--config", str(path), "--quiet"])
    return code, capsys.readouterr().err


def test_preview_exits_2_naming_the_key_for_a_malformed_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _preview_in_process(_variant_text(version="1.8"), tmp_path, capsys)
    assert code == 2
    assert "dotnet-delivery:image.version" in err
    assert "not a SemVer 2.0 version" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("latest\n", "never 'latest'"), ("1.8\n", "not a SemVer 2.0 version")],
)
def test_preview_exits_2_naming_the_key_for_a_bad_version_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    context = tmp_path / "svc"
    context.mkdir()
    (context / "VERSION").write_text(content, encoding="utf-8")
    code, err = _preview_in_process(_variant_text(context=str(context)), tmp_path, capsys)
    assert code == 2
    assert "dotnet-delivery:image.version" in err
    assert expected in err
    assert "VERSION" in err


# --------------------------------------------------------------------------- helpers
def _tooling_config(**image_changes: Any) -> config_mod.ToolingConfig:
    stack_file = parse_stack_file(_variant_text(**image_changes))
    cfg = config_mod.parse(stack_file.runtime_config())
    assert isinstance(cfg, config_mod.ToolingConfig)
    return cfg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.8.0\n", None),
        ("  2.0.0-rc.1  \n\n", None),
        ("v1.8.0\n", "not a SemVer 2.0 version"),
        ("1.8.0+meta\n", "build metadata"),
        ("LATEST\n", "never 'latest'"),
        ("", "0 non-empty lines"),
        ("1.0.0\n2.0.0\n", "2 non-empty lines"),
    ],
)
def test_version_file_must_hold_one_semver(text: str, message: str | None) -> None:
    if message is None:
        assert image_mod.parse_version_file(text, "VERSION") == text.strip()
        return
    with pytest.raises(config_mod.ConfigError) as caught:
        image_mod.parse_version_file(text, "VERSION")
    (problem,) = caught.value.problems
    assert problem.startswith("dotnet-delivery:image.version: ")
    assert message in problem


def test_missing_version_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        image_mod.resolve_version(tmp_path, None)
    assert caught.value.problems[0].startswith("dotnet-delivery:image.version: not set")


def test_without_git_sha_and_git_repository_the_error_names_gitsha(tmp_path: Path) -> None:
    with pytest.raises(config_mod.ConfigError) as caught:
        image_mod.resolve_git_sha(tmp_path, None)
    assert caught.value.problems[0].startswith("dotnet-delivery:image.gitSha: not set")


def test_git_sha_defaults_to_head_of_the_context() -> None:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip("the project is not a git checkout here (e.g. an exported tarball)")
    head = done.stdout.strip()
    assert image_mod.resolve_git_sha(PROJECT_ROOT / "examples" / "orders-api", None) == head


def test_a_service_dockerfile_in_the_context_is_used_as_is(tmp_path: Path) -> None:
    (tmp_path / "VERSION").write_text("3.1.4\n", encoding="utf-8")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    cfg = _tooling_config(context=str(tmp_path))
    args = image_mod.args_from_config(cfg, kms_key_arn="arn:aws:kms:eu-west-1:1:key/k", tags={})
    assert args.dockerfile_inline is None
    assert args.dockerfile_location == f"{tmp_path}/Dockerfile"
    assert args.tag == "3.1.4-build.0-git.0123456789ab"


def test_an_unrenderable_context_names_the_project_path(tmp_path: Path) -> None:
    (tmp_path / "VERSION").write_text("1.0.0\n", encoding="utf-8")
    cfg = _tooling_config(context=str(tmp_path))
    with pytest.raises(config_mod.ConfigError) as caught:
        image_mod.args_from_config(cfg, kms_key_arn="arn:aws:kms:eu-west-1:1:key/k", tags={})
    assert caught.value.problems[0].startswith("dotnet-delivery:image.projectPath: ")
    assert "does not exist" in caught.value.problems[0]


def test_cache_refs_name_the_architectures() -> None:
    assert image_mod.cache_ref("r/x", ["linux/arm64"]) == "r/x:cache-arm64"
    assert image_mod.cache_ref("r/x", ["linux/amd64", "linux/arm64"]) == "r/x:cache-amd64-arm64"
    with pytest.raises(ValueError, match="platforms"):
        image_mod.cache_ref("r/x", [])


def test_repository_policy_principals_come_from_naming() -> None:
    arns = image_mod.execution_role_arns("orders-api", ENV_ACCOUNTS)
    assert arns[0] == naming.role_arn("orders-api-dev-exec", account_id="222222222222")
    assert json.dumps(arns).count(":root") == 0


def test_pull_roles_are_each_environments_service_and_migration_execution_roles() -> None:
    arns = image_mod.pull_role_arns("orders-api", ENV_ACCOUNTS)
    assert len(arns) == 2 * len(ENV_ACCOUNTS)
    for env, account in ENV_ACCOUNTS.items():
        names = naming.Names("orders-api", env)
        assert naming.role_arn(names.execution_role, account_id=account) in arns
        assert naming.role_arn(names.role("migrate-exec"), account_id=account) in arns
    assert json.dumps(arns).count(":root") == 0


@pytest.mark.parametrize(
    "ref",
    [
        f"{URL}@sha256:{'a' * 64}",
        f"{URL}:{RELEASE_TAG}@sha256:{'0123456789abcdef' * 4}",
    ],
)
def test_digest_of_a_pushed_reference(ref: str) -> None:
    digest = image_mod.digest_of(ref)
    assert digest == ref.rsplit("@", 1)[1]
    assert IMAGE_REF_RE.match(f"{URL}@{digest}")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (f"{URL}:{RELEASE_TAG}", "has no digest"),  # an Index that was not pushed
        (f"{URL}@sha256:abc", "is not sha256:<64 lowercase hex>"),
        (f"{URL}@md5:{'a' * 64}", "is not sha256:<64 lowercase hex>"),
        (f"{URL}@sha256:{'A' * 64}", "is not sha256:<64 lowercase hex>"),
    ],
)
def test_digest_of_a_reference_without_a_sha256_digest_is_refused(ref: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        image_mod.digest_of(ref)
    assert message in str(caught.value)
    assert repr(ref) in str(caught.value)


def test_builds_are_retained_on_delete_and_a_frozen_digest_stops_building() -> None:
    rec = base()
    assert rec.one(IMAGE).options["retainOnDelete"] is True
    frozen = "sha256:" + "c" * 64
    rec2 = render_with("tooling", stack_file=parse_stack_file(_variant_text(initialDigest=frozen)))
    assert rec2.find("docker-build:*") == []
    assert rec2.exports["imageRef"] == f"{URL}@{frozen}"
    assert (
        rec2.one("dotnet-delivery:index:DotnetServiceImage").outputs["imageRef"]
        == f"{URL}@{frozen}"
    )
    # The repository and its policies are untouched by the freeze.
    assert [r.urn for r in rec2.find("aws:ecr/*")] == [r.urn for r in rec.find("aws:ecr/*")]
